// The web listener of `frontline serve`: one fastify server for the
// dashboard and /metrics, started and stopped by serve (src/cli/serve.ts).
// Every page or endpoint is a fastify plugin listed in WEB_PLUGINS below,
// registered in its own encapsulated context; add yours there.
//
// Limits on what a client controls: body size (web.limits.body_bytes), time
// to send headers and the whole request, idle keep-alive, connections at
// once. All assets are served from here (no CDN): the page may not load
// anything from elsewhere (Content-Security-Policy default-src 'self').

import type { SelfCheckResult } from '../../intel/self-check.js';
import { createHash } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { Config } from '../../config/load.js';
import type { Store } from '../../store/index.js';
import { parseListenAddress } from '../../config/address.js';
import { childLogger } from '../../log.js';
import { webListenAddress } from './config.js';
import { sameSecret, verifyPassword, type WebAuth } from './auth.js';
import type { ZoneHealthState } from '../../checks/dnsbl.js';
import type { ReportQueries } from '../queries.js';
import { dashboard } from './dashboard/index.js';
import { metricsRoute } from './metrics-route.js';

/** What a web plugin gets besides the fastify instance. */
export interface WebContext {
  config: Config;
  /** The open state store (the same one the policy server uses). */
  store: Store;
  logger: Logger;
  /** web.auth as loaded (token file read); undefined = no authentication (loopback listener). */
  auth: WebAuth | undefined;
  /**
   * Does this Authorization header carry the configured credential? `Bearer
   * <token>` for a token file, `Basic` (any user name) for a password. True
   * when no auth is configured. Failures are rate-limited.
   */
  authorized(req: FastifyRequest): Promise<boolean>;
  /** Filled by serve: what other parts of the process lend the web (the metrics collector…). */
  services: WebServices;
}

/** Things serve hands the web plugins; each optional, so a plugin copes without. */
export interface WebServices {
  /** The Prometheus text of this process, or of all workers when clustered (src/report/metrics/). */
  metrics?: { text(): Promise<string>; contentType: string };
  /** The DNSBL/DNSWL zones' last health probe (the policy's; the dashboard's Overview). */
  zones?: () => ReadonlyArray<{ check: string; state: ZoneHealthState }>;
  /** intel.self_check's last run: our own outgoing addresses on DNSBLs (the dashboard's Overview). */
  selfCheck?: () => SelfCheckResult | undefined;
  /** The query layer with the config's rules and ASN table (src/cli/report-context.ts). */
  report?: ReportQueries;
}

/** A page or endpoint set: registered with app.register, so its hooks and decorators stay its own. */
export type WebPlugin = (app: FastifyInstance, ctx: WebContext) => Promise<void>;

/**
 * Every plugin of the web listener, in registration order. To add pages:
 * write `src/report/web/<name>/index.ts` exporting a WebPlugin and list it
 * here (docs/dashboard.md, "Web listener").
 */
export const WEB_PLUGINS: WebPlugin[] = [metricsRoute, dashboard];

export interface WebServerOptions {
  config: Config;
  store: Store;
  logger: Logger;
  auth: WebAuth | undefined;
  services?: WebServices;
  /** Plugins beyond WEB_PLUGINS (tests). */
  plugins?: WebPlugin[];
  /** Override web.listen (serve's resolved address). */
  listen?: string;
}

export interface RunningWeb {
  address: AddressInfo;
  /** http://host:port */
  url: string;
  app: FastifyInstance;
  close(): Promise<void>;
}

/** Failed credentials allowed per minute, all clients together, before 429. */
const AUTH_FAILURES_PER_MINUTE = 20;

export async function startWebServer(opts: WebServerOptions): Promise<RunningWeb> {
  const address = opts.listen ?? webListenAddress(opts.config.web);
  if (address === undefined) throw new Error('web listener is off (web.listen)');
  const { host, port } = parseListenAddress(address)!;
  const limits = opts.config.web.limits;
  const logger = childLogger(opts.logger, { room: 'web' });
  const app = Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: limits.body_bytes,
    requestTimeout: limits.request_timeout_s * 1000,
    connectionTimeout: limits.request_timeout_s * 1000,
    keepAliveTimeout: limits.keep_alive_s * 1000,
    routerOptions: { maxParamLength: 200 },
    return503OnClosing: true,
    forceCloseConnections: true,
  });
  app.server.headersTimeout = limits.headers_timeout_s * 1000;
  app.server.maxConnections = limits.connections;

  app.addHook('onSend', async (_req, reply) => {
    reply.header('x-content-type-options', 'nosniff');
    reply.header('referrer-policy', 'no-referrer');
    reply.header('x-frame-options', 'DENY');
    if (!reply.hasHeader('content-security-policy')) reply.header('content-security-policy', "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'");
    if (!reply.hasHeader('cache-control')) reply.header('cache-control', 'no-store');
  });
  app.setNotFoundHandler((req, reply) => {
    void reply.code(404).type('text/plain; charset=utf-8').send(`not found: ${req.method} ${req.url.slice(0, 200)}\n`);
  });

  const ctx: WebContext = {
    config: opts.config,
    store: opts.store,
    logger,
    auth: opts.auth,
    authorized: authorizer(opts.auth),
    services: opts.services ?? {},
  };
  for (const plugin of [...WEB_PLUGINS, ...(opts.plugins ?? [])]) {
    await app.register(async (scope) => plugin(scope, ctx));
  }
  await app.listen({ host, port });
  const bound = app.server.address() as AddressInfo;
  const url = `http://${bound.family === 'IPv6' ? `[${bound.address}]` : bound.address}:${bound.port}`;
  return { address: bound, url, app, close: () => app.close() };
}

/**
 * The Authorization check. A password is verified with scrypt (~0.1 s); a
 * header that passed is remembered (by its SHA-256), so Prometheus scraping
 * with basic auth costs one scrypt, not one a scrape.
 */
function authorizer(auth: WebAuth | undefined): (req: FastifyRequest) => Promise<boolean> {
  if (auth === undefined) return () => Promise.resolve(true);
  const passed = new Set<string>();
  let windowStart = 0;
  let failures = 0;
  return async (req) => {
    const header = req.headers.authorization;
    if (typeof header !== 'string' || header.length > 1024) return false;
    const now = Date.now();
    if (now - windowStart > 60_000) {
      windowStart = now;
      failures = 0;
    }
    if (failures >= AUTH_FAILURES_PER_MINUTE) throw new TooManyFailures();
    let ok = false;
    if (auth.kind === 'token') {
      const m = /^Bearer (\S+)$/i.exec(header);
      ok = m !== null && sameSecret(m[1], auth.token);
    } else {
      const m = /^Basic ([A-Za-z0-9+/]+={0,2})$/i.exec(header);
      if (m) {
        const digest = createHash('sha256').update(m[1]).digest('base64');
        if (passed.has(digest)) return true;
        const text = Buffer.from(m[1], 'base64').toString('utf8');
        const colon = text.indexOf(':');
        ok = colon >= 0 && (await verifyPassword(text.slice(colon + 1), auth.hash));
        if (ok && passed.size < 16) passed.add(digest);
      }
    }
    if (!ok) failures++;
    return ok;
  };
}

/** Thrown by authorized() when too many credentials failed this minute: answer 429. */
export class TooManyFailures extends Error {
  readonly statusCode = 429;
  constructor() {
    super('too many failed logins; wait a minute');
  }
}
