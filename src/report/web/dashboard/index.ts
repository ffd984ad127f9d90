// The dashboard on the web listener (listed in WEB_PLUGINS): its options
// from what serve hands the web — the config's rules and lists, web.auth,
// the store and its counters, the policy's zone probes.

import type { Config } from '../../../config/load.js';
import { defaultRules } from '../../../policy/index.js';
import { verifyPassword, sameSecret, type WebAuth } from '../auth.js';
import type { WebPlugin } from '../server.js';
import type { Store } from '../../../store/index.js';
import type { ConfigListInfo, CountQuery, CountRow, RuleInfo } from './context.js';
import type { DashboardAuth } from './auth.js';
import { countsFromEvents } from './counts-from-events.js';
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

/** The store's counters (src/store/event-rollups.ts) when it keeps them, else counted from the newest events. */
function countsOf(store: Store): (q: CountQuery) => Promise<CountRow[]> {
  const withRollups = store as Store & { countEvents?: (q: CountQuery) => Promise<CountRow[]> };
  return typeof withRollups.countEvents === 'function' ? (q) => withRollups.countEvents!(q) : countsFromEvents(store);
}

export const dashboard: WebPlugin = async (app, ctx) => {
  const g = ctx.config.greylist;
  await app.register(dashboardPlugin, {
    store: ctx.store,
    rules: rulesOf(ctx.config),
    configLists: configListsOf(ctx.config),
    auth: ctx.auth ? loginCheck(ctx.auth) : undefined,
    logger: ctx.logger,
    countEvents: countsOf(ctx.store),
    zones: ctx.services.zones,
    greyTiming: { delaySeconds: g.delay_s, retryWindowSeconds: g.retry_window_s, passedTtlSeconds: g.pass_ttl_s },
  });
};
