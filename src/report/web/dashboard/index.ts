// The dashboard on the web listener (listed in WEB_PLUGINS): its options
// from what serve hands the web — the config's rules and lists, web.auth,
// the store and the report's query layer, the policy's zone probes.

import type { Config } from '../../../config/load.js';
import { defaultRules } from '../../../policy/index.js';
import { verifyPassword, sameSecret, type WebAuth } from '../auth.js';
import type { WebPlugin } from '../server.js';
import { ReportQueries } from '../../queries.js';
import { parseReplayConfig, replayDecisions } from '../../replay.js';
import { ConfigError } from '../../../config/load.js';
import type { Store } from '../../../store/index.js';
import type { ConfigListInfo, ReplaySummary, RuleInfo } from './context.js';
import type { DashboardAuth } from './auth.js';
import { dashboardPlugin } from './plugin.js';

/** The login form's check: the password against web.auth's hash (user "admin"), or the token (user "token"). */
export function loginCheck(auth: WebAuth): DashboardAuth {
  return {
    check: async (password) => {
      if (auth.kind === 'token') return sameSecret(password, auth.token) ? 'token' : undefined;
      return (await verifyPassword(password, auth.hash)) ? 'admin' : undefined;
    },
  };
}

export function rulesOf(config: Config): RuleInfo[] {
  return (config.policy.rules ?? defaultRules()).map((r) => ({ ...r, if: r.if }));
}

export function configListsOf(config: Config): ConfigListInfo[] {
  return Object.entries(config.lists).map(([name, l]) => ({ name, type: l.type, entries: l.entries.length, files: l.files }));
}

/** Decisions the Policy page replays at most: the replay runs on the event loop that also answers the policy server. */
export const WEB_REPLAY_LIMIT = 10_000;

/** The Policy page's "try a pasted config": config check's errors, or the replay of the newest decisions. */
export function webReplay(store: Store, current: Config): (yaml: string, since: number) => Promise<ReplaySummary> {
  return async (yaml, since) => {
    let proposed: Config;
    try {
      proposed = parseReplayConfig(yaml, 'pasted config');
    } catch (e) {
      if (e instanceof ConfigError) return { errors: e.problems };
      throw e;
    }
    return { report: await replayDecisions({ store, proposed, current, since, limit: WEB_REPLAY_LIMIT }), limit: WEB_REPLAY_LIMIT };
  };
}

export const dashboard: WebPlugin = async (app, ctx) => {
  const g = ctx.config.greylist;
  await app.register(dashboardPlugin, {
    store: ctx.store,
    rules: rulesOf(ctx.config),
    configLists: configListsOf(ctx.config),
    auth: ctx.auth ? loginCheck(ctx.auth) : undefined,
    logger: ctx.logger,
    report: ctx.services.report ?? new ReportQueries({ store: ctx.store }),
    zones: ctx.services.zones,
    selfCheck: ctx.services.selfCheck,
    spreadOn: ctx.config.sasl_spread.enabled,
    replay: webReplay(ctx.store, ctx.config),
    greyTiming: { delaySeconds: g.delay_s, retryWindowSeconds: g.retry_window_s, passedTtlSeconds: g.pass_ttl_s },
  });
};
