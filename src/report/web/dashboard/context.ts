// What the dashboard's pages are given: the store, the rules in force, the
// config's own lists, and optional sources that other rooms fill in
// (statistics, DNSBL zone health, replay).

import type { ZoneHealthState } from '../../../checks/dnsbl.js';
import type { ReportQueries } from '../../queries.js';
import type { ReplayReport } from '../../replay.js';
import type { Html } from './html.js';
import type { DashboardAuth, Session } from './auth.js';
import type { GreyTiming, Store } from '../../../store/index.js';
import type { SelfCheckResult } from '../../../intel/self-check.js';

/** A rule as the Policy page shows it (RuleConfig's fields, `if` as the admin wrote it). */
export interface RuleInfo {
  name: string;
  stage?: string;
  if: unknown;
  action?: string;
  code?: number;
  text?: string;
  remedy?: string;
  mode: 'enforce' | 'test';
  score?: number;
}

/** A list defined in the config file (read-only here: edit the file). */
export interface ConfigListInfo {
  name: string;
  type: string;
  entries: number;
  files: string[];
}

export interface DashboardLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

/** Outcome of trying a pasted config against the stored decisions (src/report/replay.ts). */
export type ReplaySummary = { errors: string[] } | { report: ReplayReport; limit: number };

export interface DashboardOptions {
  /** The query layer (src/report/queries.ts): the Overview and the Policy page's counts. */
  report: ReportQueries;
  store: Store;
  rules: readonly RuleInfo[];
  configLists?: readonly ConfigListInfo[];
  /** Without it the dashboard shows everything and changes nothing (allowed on loopback only; the server checks). */
  auth?: DashboardAuth;
  logger?: DashboardLogger;
  now?: () => number;
  /** DNSBL/DNSWL zones' last probe. */
  zones?: () => ReadonlyArray<{ check: string; state: ZoneHealthState }>;
  /** intel.self_check's last run (our own addresses on DNSBLs); absent when off. */
  selfCheck?: () => SelfCheckResult | undefined;
  /** sasl_spread.enabled: whether held users are deferred at all (the Users page says so when not). */
  spreadOn?: boolean;
  /** Greylisting delays, to release a triplet for as long as a passed one is kept. */
  greyTiming?: GreyTiming;
  /** List names the Why? page's "allow" button adds to (an ip list and a domain/address list). */
  allowLists?: { ip: string; sender: string };
  /** Try a pasted YAML config against the stored decisions; absent = not offered. */
  replay?: (yaml: string, since: number) => Promise<ReplaySummary>;
  /** Key signing session cookies and CSRF tokens (default: sessionKey(), shared by a cluster's workers). */
  sessionKey?: Buffer;
  /** Set the session cookie's Secure flag (behind TLS). */
  secureCookies?: boolean;
}

/** What a page handler gets. */
export interface PageContext {
  opts: DashboardOptions;
  now: number;
  session?: Session;
  /** A CSRF token for this page's forms (undefined when changes are off). */
  csrf?: string;
  /** Whether this viewer may change things. */
  canChange: boolean;
  /** One-shot message from the last change (or the error of this request). */
  notice?: { kind: 'ok' | 'error'; text: string };
}

export interface PageResult {
  title: string;
  body: Html;
  status?: number;
  /** Scripts this page needs (charts). */
  scripts?: string[];
}
