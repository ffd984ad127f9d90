// The feed room's entry point for `frontline serve`: serve this host's feed
// when enforce.feed.listen is set, pull the configured peers on their
// intervals. Neither stops the policy server: a listener that cannot start
// is an error at start (like the policy listener), a peer that fails is
// logged and retried at its next interval.

import { readFileSync } from 'node:fs';
import { parseListenAddress } from '../../config/address.js';
import type { Clock } from '../../core/types.js';
import { startSchedule, type RunningSchedule } from '../../intel/schedule.js';
import type { Store } from '../../store/index.js';
import type { FeedConfig } from './config.js';
import { FeedJournal } from './journal.js';
import { FeedPuller, type PullLogger } from './pull.js';
import { startFeedServer, type RunningFeedServer } from './server.js';
import { StoreFeeds } from './source.js';

export { feedSchema, type FeedConfig, type FeedPullConfig } from './config.js';
export { FeedPuller, peerListName } from './pull.js';
export { buildFeedApp, startFeedServer } from './server.js';
export { FeedJournal } from './journal.js';
export { StoreFeeds } from './source.js';

export interface RunningFeeds {
  /** host:port the feed is served on, when it is. */
  address?: string;
  stop(): Promise<void>;
}

/** Read a token file: the first line, at least 16 characters. */
export function readTokenFile(path: string): string {
  const token = readFileSync(path, 'utf8').split('\n')[0].trim();
  if (token.length < 16) throw new Error(`${path}: the token must be at least 16 characters`);
  if (!/^[\x21-\x7e]+$/.test(token)) throw new Error(`${path}: the token must be printable ASCII without spaces`);
  return token;
}

export async function startFeeds(cfg: FeedConfig, deps: { store: Store; clock: Clock; logger: PullLogger }): Promise<RunningFeeds> {
  let server: RunningFeedServer | undefined;
  let feeds: StoreFeeds | undefined;
  if (cfg.listen) {
    const hp = parseListenAddress(cfg.listen)!;
    const journal = new FeedJournal();
    feeds = new StoreFeeds(deps.store, cfg.lists, journal, deps.clock);
    feeds.start();
    const token = cfg.token_file ? readTokenFile(cfg.token_file) : undefined;
    try {
      server = await startFeedServer({ host: hp.host, port: hp.port, token, feeds, journal, clock: deps.clock, logger: deps.logger });
    } catch (e) {
      feeds.stop();
      throw e;
    }
  }
  let schedule: RunningSchedule | undefined;
  if (cfg.pull.length > 0) {
    const puller = new FeedPuller(cfg.pull, { store: deps.store, clock: deps.clock, logger: deps.logger });
    await puller.load().catch((e: unknown) => deps.logger.warn({ err: (e as Error).message }, 'feed copies could not be read back from the store; the first pull replaces them'));
    schedule = startSchedule(puller.jobs(), {
      clock: deps.clock,
      maxSleepMs: 1000,
      onError: (job, e) => deps.logger.error({ job: job.name, err: (e as Error).message }, 'feed pull failed'),
    });
  }
  const a = server?.address;
  return {
    address: a ? (a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`) : undefined,
    async stop() {
      await schedule?.stop();
      feeds?.stop();
      await server?.close();
    },
  };
}
