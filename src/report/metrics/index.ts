// The Prometheus metrics of `frontline serve` (docs/metrics.md): the
// families, the plain counters the hot paths add to, and the sources read
// at scrape time. serve makes one Metrics, hands its counters to the policy
// server's and gate's decision listeners, the policy (check timing) and the
// store (timedStore), and sets `sources` once those exist.

import { Registry, collectDefaultMetrics } from 'prom-client';
import { CountsBy, HistogramsBy, family, type Family, type MetricValue } from './family.js';
import { DecisionCounts } from './decisions.js';
import type { SelfCheckResult } from '../../intel/self-check.js';

export { FRONTENDS, type Frontend } from './decisions.js';
export { timedStore } from './store-timing.js';
export { BanCensus } from './ban-census.js';

/** What is read at scrape time; each optional (the gate may be off, and so on). */
export interface MetricSources {
  policyServer?: () => { connections: number; requests: number; invalid: number; faults: number; openTransactions: number };
  evidenceCache?: () => { hits: number; misses: number };
  dnsCache?: () => { hits: number; misses: number; inflightShared: number; size: number };
  dnsClient?: () => { questions: number; timeouts: number; attemptTimeouts: number; dropped: { unknownId: number; wrongSource: number; wrongQuestion: number } };
  gate?: () => { connections: number; sessions: number; refusedByLimit: Record<string, number>; doorFailures: Record<string, number>; relayed: number; backendRefused: number };
  logwatch?: () => Array<{ source: string; lines: number; events: number; bans: number }>;
  bans?: () => ReadonlyMap<string, number>;
  /** The last intel.self_check run (our own addresses on DNSBLs). */
  selfCheck?: () => SelfCheckResult | undefined;
}

/** Ban categories of the code, shown at 0 before their first ban. */
const KNOWN_CATEGORIES = ['spamtrap', 'dnsbl', 'brute-force', 'probe', 'policy', 'manual'];

export class Metrics {
  /** Decisions of every frontend: `count(FRONTENDS.indexOf(…), verdict)`. */
  readonly decisions = new DecisionCounts();
  /** Check run times, by check: `checks.get(name).observe(ms)`. */
  readonly checks = new HistogramsBy();
  /** Store operation times and failures, by operation (timedStore fills them). */
  readonly store = { latency: new HistogramsBy(), faults: new CountsBy() };
  readonly registry = new Registry();
  sources: MetricSources = {};

  constructor(opts: { processMetrics?: boolean } = {}) {
    if (opts.processMetrics !== false) {
      collectDefaultMetrics({ register: this.registry });
      // Gauges named like counters, which promtool refuses; nodejs_active_{handles,requests,resources} (by type) say the same.
      for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) this.registry.removeSingleMetric(name);
    }
    for (const f of this.families()) this.registry.registerMetric(f as never);
  }

  /** The check timer for PolicyDeps.onCheckRun. */
  readonly onCheckRun = (check: string, ms: number): void => this.checks.get(check).observe(ms);

  /** This process's metrics in Prometheus' text format. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  private families(): Family[] {
    const src = (): MetricSources => this.sources;
    const one = (value: number | undefined, labels = {}): MetricValue[] => (value === undefined ? [] : [{ labels, value }]);
    /** Counts keyed by a label value (a limit, a drop reason) as values. */
    const record = (r: object | undefined, label: string): MetricValue[] => (Object.entries(r ?? {}) as Array<[string, number]>).map(([k, value]) => ({ labels: { [label]: k }, value }));
    return [
      family('frontline_decisions_total', 'Decisions made, by frontend (postfix, gate), SMTP stage, action and deciding rule.', 'counter', () => this.decisions.values()),
      family('frontline_policy_connections_total', 'Connections accepted by the Postfix policy server.', 'counter', () => one(src().policyServer?.().connections)),
      family('frontline_policy_requests_total', 'Policy requests received from Postfix.', 'counter', () => one(src().policyServer?.().requests)),
      family('frontline_policy_invalid_requests_total', 'Policy requests refused as malformed.', 'counter', () => one(src().policyServer?.().invalid)),
      family('frontline_policy_faults_total', 'Policy requests answered with the fault action (a bug or a decision past its deadline).', 'counter', () => one(src().policyServer?.().faults)),
      family('frontline_policy_open_transactions', 'Postfix transactions (messages) open now.', 'gauge', () => one(src().policyServer?.().openTransactions)),
      family('frontline_check_duration_seconds', 'Run time of each check that ran (not those answered from the evidence cache or at once), by check.', 'histogram', () =>
        this.checks.values('frontline_check_duration_seconds', 'check'),
      ),
      family('frontline_evidence_cache_lookups_total', 'Evidence cache lookups, by result (hit, miss).', 'counter', () => {
        const e = src().evidenceCache?.();
        return e ? [{ labels: { result: 'hit' }, value: e.hits }, { labels: { result: 'miss' }, value: e.misses }] : [];
      }),
      family('frontline_dns_cache_lookups_total', 'DNS cache lookups, by result: hit, miss (asked the network), shared (joined a question already asked).', 'counter', () => {
        const c = src().dnsCache?.();
        return c
          ? [
              { labels: { result: 'hit' }, value: c.hits },
              { labels: { result: 'miss' }, value: c.misses },
              { labels: { result: 'shared' }, value: c.inflightShared },
            ]
          : [];
      }),
      family('frontline_dns_cache_entries', 'Answers held in the DNS cache.', 'gauge', () => one(src().dnsCache?.().size)),
      family('frontline_dns_queries_total', 'DNS questions asked of the servers (cache misses).', 'counter', () => one(src().dnsClient?.().questions)),
      family('frontline_dns_timeouts_total', 'DNS questions that no server answered in time after every attempt.', 'counter', () => one(src().dnsClient?.().timeouts)),
      family('frontline_dns_attempt_timeouts_total', 'DNS attempts (one server, one try) without a reply in time.', 'counter', () => one(src().dnsClient?.().attemptTimeouts)),
      family('frontline_dns_dropped_replies_total', 'DNS datagrams dropped as not answering a question asked, by reason (unknownId, wrongSource, wrongQuestion).', 'counter', () =>
        record(src().dnsClient?.().dropped, 'reason'),
      ),
      family('frontline_store_operation_duration_seconds', 'Store operation time, by operation.', 'histogram', () => this.store.latency.values('frontline_store_operation_duration_seconds', 'op')),
      family('frontline_store_faults_total', 'Store operations that failed (the store unavailable, an error), by operation.', 'counter', () => this.store.faults.values('op')),
      family(
        'frontline_bans_active',
        'Bans in force, by category (counted from the store every 30 s).',
        'gauge',
        () => {
          const b = src().bans?.();
          if (b === undefined) return [];
          const out = new Map<string, number>(KNOWN_CATEGORIES.map((c) => [c, 0]));
          for (const [c, n] of b) out.set(c, n);
          return [...out].map(([category, value]) => ({ labels: { category }, value }));
        },
        // One count of the shared store (by the host-jobs worker with --workers N, src/cli/cluster.ts), never a sum.
        'max',
      ),
      family('frontline_gate_connections_total', 'Client connections to the SMTP gate.', 'counter', () => one(src().gate?.().connections)),
      family('frontline_gate_sessions', 'SMTP gate sessions open now.', 'gauge', () => one(src().gate?.().sessions)),
      family('frontline_gate_connections_refused_total', 'Gate connections refused (421) by a connection limit, by limit.', 'counter', () => record(src().gate?.().refusedByLimit, 'limit')),
      family('frontline_gate_door_test_failures_total', 'Door tests failed by gate clients, by test and by what was done (enforce and drop refuse; ignore only logs).', 'counter', () =>
        Object.entries(src().gate?.().doorFailures ?? {}).map(([k, value]) => {
          const [test, action] = k.split('|');
          return { labels: { test, action }, value };
        }),
      ),
      family('frontline_gate_relayed_messages_total', 'Messages the gate passed to its backend and the backend accepted.', 'counter', () => one(src().gate?.().relayed)),
      family('frontline_gate_backend_refused_messages_total', 'Messages the backend refused at the end of DATA.', 'counter', () => one(src().gate?.().backendRefused)),
      family('frontline_logwatch_lines_total', 'Log lines read by the log watcher, by source (its name, or its path).', 'counter', () =>
        (src().logwatch?.() ?? []).map((s) => ({ labels: { source: s.source }, value: s.lines })),
      ),
      family('frontline_logwatch_events_total', 'Events (failed logins, probes…) found in log lines, by source.', 'counter', () =>
        (src().logwatch?.() ?? []).map((s) => ({ labels: { source: s.source }, value: s.events })),
      ),
      family('frontline_logwatch_bans_total', 'Bans the log watcher asked the store for, by source.', 'counter', () =>
        (src().logwatch?.() ?? []).map((s) => ({ labels: { source: s.source }, value: s.bans })),
      ),
      // Every worker runs the same check on the same addresses: the primary takes the highest, not the sum.
      family(
        'frontline_self_listed',
        'intel.self_check: 1 when a DNSBL zone lists one of our own outgoing addresses at the last check, else 0; by address and zone.',
        'gauge',
        () => {
          const r = src().selfCheck?.();
          if (!r) return [];
          return r.addresses.flatMap((a) => r.zones.map((zone) => ({ labels: { address: a.address, zone }, value: a.listedBy.some((l) => l.zone === zone) ? 1 : 0 })));
        },
        'max',
      ),
      family(
        'frontline_self_check_timestamp_seconds',
        'intel.self_check: when the last check of our own addresses finished (unix seconds).',
        'gauge',
        () => {
          const r = src().selfCheck?.();
          return r ? [{ labels: {}, value: Math.floor(r.checkedAt / 1000) }] : [];
        },
        'max',
      ),
    ];
  }
}
