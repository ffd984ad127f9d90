// Decisions counted by frontend, stage, action and rule: one Float64Array
// per (frontend, rule), indexed by stage and action, so counting a
// decision is one Map lookup and one increment. Rule names come from the
// config and the code (gate:pregreet, fault…), so they are bounded; a cap
// guards against a bug all the same.

import { STAGES, type Action, type Stage } from '../../core/types.js';
import type { MetricValue } from './family.js';

export const FRONTENDS = ['postfix', 'gate', 'milter'] as const;
export type Frontend = (typeof FRONTENDS)[number];

const ACTIONS: readonly Action[] = ['accept', 'reject', 'defer', 'tag', 'tarpit', 'continue'];
const STAGE_INDEX: Record<string, number> = Object.fromEntries(STAGES.map((s, i) => [s, i]));
const ACTION_INDEX: Record<string, number> = Object.fromEntries(ACTIONS.map((a, i) => [a, i]));
const CELLS = STAGES.length * ACTIONS.length;
/** Distinct rule names kept per frontend; more share the rule name `other`. */
const MAX_RULES = 1000;

export class DecisionCounts {
  private readonly byFrontend = FRONTENDS.map(() => new Map<string, Float64Array>());

  /** Count one decision. Unknown stages or actions (none today) are not counted. */
  count(frontend: number, verdict: { rule: string; stage: Stage; action: Action }): void {
    const rules = this.byFrontend[frontend];
    let row = rules.get(verdict.rule);
    if (row === undefined) row = this.newRow(rules, verdict.rule);
    const s = STAGE_INDEX[verdict.stage];
    const a = ACTION_INDEX[verdict.action];
    if (s !== undefined && a !== undefined) row[s * ACTIONS.length + a]++;
  }

  private newRow(rules: Map<string, Float64Array>, rule: string): Float64Array {
    const key = rules.size < MAX_RULES ? rule : 'other';
    let row = rules.get(key);
    if (row === undefined) {
      row = new Float64Array(CELLS);
      rules.set(key, row);
    }
    return row;
  }

  values(): MetricValue[] {
    const out: MetricValue[] = [];
    this.byFrontend.forEach((rules, f) => {
      for (const [rule, row] of rules) {
        for (let i = 0; i < CELLS; i++) {
          if (row[i] === 0) continue;
          out.push({ labels: { frontend: FRONTENDS[f], stage: STAGES[Math.floor(i / ACTIONS.length)], action: ACTIONS[i % ACTIONS.length], rule }, value: row[i] });
        }
      }
    });
    return out;
  }
}
