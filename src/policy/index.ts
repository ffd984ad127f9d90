// The policy room's front door.
export { Policy, defaultRules, type PolicyDeps, type Transaction, type SkippedRule } from './policy.js';
export { parseCondition, ConditionError, type Condition } from './condition.js';
export { DEFAULT_RULES } from './default-policy.js';
export { CHECKS, type CheckInfo } from './catalog.js';
