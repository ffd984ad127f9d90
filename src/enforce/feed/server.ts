// The feed listener: GET /feed/v1/<name>.txt (one CIDR per line) and
// GET /feed/v1/<name>.json[?since=<cursor>] (frontline's own format, with
// incremental pulls). Read-only: nothing a client sends changes anything.
// A client off loopback must send `Authorization: Bearer <token>`; a listener
// off loopback refuses to start without a token (enforce.feed.token_file).

import { timingSafeEqual, createHash } from 'node:crypto';
import Fastify, { type FastifyInstance } from 'fastify';
import type { Clock } from '../../core/types.js';
import { isLoopbackAddress } from '../../core/ip.js';
import type { FeedJournal } from './journal.js';
import type { StoreFeeds } from './source.js';
import { FEED_PATH, feedText, type FeedDocument, type FeedEntry } from './wire.js';

export interface FeedServerOptions {
  host: string;
  port: number;
  /** Required from clients off loopback; undefined = only loopback clients are served. */
  token?: string;
  feeds: StoreFeeds;
  journal: FeedJournal;
  clock: Clock;
  logger: { warn(obj: object, msg: string): void; error(obj: object, msg: string): void };
}

export interface RunningFeedServer {
  app: FastifyInstance;
  address: { host: string; port: number };
  close(): Promise<void>;
}

const NAME = /^([A-Za-z0-9_.-]{1,64})\.(txt|json)$/;

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

/** Constant-time comparison of the bearer token (both hashed, so lengths cannot leak either). */
function tokenMatches(header: string | undefined, token: string): boolean {
  const m = /^Bearer ([\x21-\x7e]{1,512})$/.exec(header ?? '');
  return !!m && timingSafeEqual(digest(m[1]), digest(token));
}

export function buildFeedApp(opts: Omit<FeedServerOptions, 'host' | 'port'>): FastifyInstance {
  const app = Fastify({ logger: false, bodyLimit: 1024, connectionTimeout: 30_000, requestTimeout: 30_000, routerOptions: { maxParamLength: 100 } });
  let lastRefusalLog = 0;

  app.addHook('onRequest', async (req, reply) => {
    if (isLoopbackAddress(req.socket.remoteAddress ?? '')) return;
    if (opts.token !== undefined && tokenMatches(req.headers.authorization, opts.token)) return;
    const now = opts.clock.now();
    if (now - lastRefusalLog > 10_000) {
      lastRefusalLog = now;
      opts.logger.warn({ client: req.socket.remoteAddress, url: req.url.slice(0, 200) }, 'feed request refused: no valid bearer token (at most one such line per 10 s)');
    }
    await reply.code(401).header('www-authenticate', 'Bearer realm="frontline feed"').type('text/plain').send('401 a bearer token is required\n');
  });

  app.get<{ Params: { file: string }; Querystring: { since?: string } }>(`${FEED_PATH}:file`, async (req, reply) => {
    const m = NAME.exec(req.params.file);
    const feed = m?.[1];
    if (!m || !feed || !opts.feeds.names().includes(feed)) {
      return reply.code(404).type('text/plain').send(`404 no such feed; served: ${opts.feeds.names().map((n) => `${n}.txt ${n}.json`).join(' ')}\n`);
    }
    const now = opts.clock.now();
    reply.header('cache-control', 'no-store');
    if (m[2] === 'txt') return reply.type('text/plain; charset=utf-8').send(feedText(feed, await opts.feeds.snapshot(feed), now));
    const since = typeof req.query.since === 'string' ? req.query.since : undefined;
    // The cursor is taken before the copy is read: a change made meanwhile is sent again next time, never lost.
    const cursor = opts.journal.cursor();
    const changes = since === undefined ? undefined : opts.journal.since(feed, since);
    let doc: FeedDocument;
    if (changes) {
      const entries: FeedEntry[] = [];
      const removed: string[] = [];
      for (const c of changes) {
        if (c.op === 'add') entries.push(c.entry);
        else removed.push(c.cidr);
      }
      doc = { version: 1, feed, cursor, full: false, entries, removed };
    } else {
      doc = { version: 1, feed, cursor, full: true, entries: await opts.feeds.snapshot(feed), removed: [] };
    }
    return reply.type('application/json').send(JSON.stringify(doc));
  });

  app.setNotFoundHandler((_req, reply) => reply.code(404).type('text/plain').send(`404 not found; feeds are under ${FEED_PATH}\n`));
  app.setErrorHandler((err, _req, reply) => {
    const status = (err as { statusCode?: number }).statusCode ?? 500;
    if (status >= 500) opts.logger.error({ err: err instanceof Error ? err.message : String(err) }, 'feed request failed');
    return reply.code(status >= 500 ? 503 : status).type('text/plain').send(status >= 500 ? '503 feed unavailable, try again\n' : `${status} bad request\n`);
  });
  return app;
}

export async function startFeedServer(opts: FeedServerOptions): Promise<RunningFeedServer> {
  if (!isLoopbackAddress(opts.host) && opts.token === undefined) {
    throw new Error(`enforce.feed.listen ${opts.host}:${opts.port} is not loopback: set enforce.feed.token_file, so that only peers with the token can read the feed`);
  }
  const app = buildFeedApp(opts);
  await app.listen({ host: opts.host, port: opts.port });
  const a = app.server.address();
  const address = typeof a === 'object' && a ? { host: a.address, port: a.port } : { host: opts.host, port: opts.port };
  return { app, address, close: () => app.close() };
}
