// What the report commands (stats, report) hand the query layer from the
// config: the checks each rule reads (to name refusal vectors) and the
// IP-to-AS table, when one is configured.

import type { Config } from '../config/load.js';
import { checksOf, parseCondition } from '../policy/condition.js';
import { defaultRules } from '../policy/policy.js';
import { ReportQueries } from '../report/queries.js';
import type { RuleChecks } from '../report/vectors.js';
import { loadAsnTable, type Store } from '../store/index.js';

/** Rule name → the checks its condition reads, for the policy in force (the config's rules or the defaults). */
export function ruleChecksOf(config: Config): RuleChecks {
  const out = new Map<string, string[]>();
  for (const r of config.policy.rules ?? defaultRules()) {
    try {
      out.set(r.name, checksOf(parseCondition(r.if)));
    } catch {
      // config check reports a bad condition; here the rule is named by its name alone
    }
  }
  return out;
}

/** The query layer over `store`, with the config's rules and ASN table. */
export async function reportQueries(store: Store, config: Config): Promise<ReportQueries> {
  const path = config.asn?.table;
  const asn = path ? (await loadAsnTable(path).catch(() => undefined))?.table : undefined;
  return new ReportQueries({ store, ruleChecks: ruleChecksOf(config), asn });
}
