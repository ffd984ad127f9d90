// A CheckContext for tests: a resolver, an optional fixed clock, and
// `evidence(name)` answered by the given check functions (memoised, as the
// policy evaluator does) or by canned Evidence.

import type { Clock, Envelope, Evidence } from '../../src/core/types.js';
import type { Resolver } from '../../src/dns/types.js';
import type { CheckContext } from '../../src/checks/types.js';

/** A check that other checks may ask for through ctx.evidence(name). */
export type DependencyCheck = (env: Envelope, ctx: CheckContext) => Promise<Evidence>;

export interface TestContextOptions {
  clock?: Clock;
  /** Checks answering ctx.evidence(name), run on `env`. */
  checks?: Record<string, DependencyCheck>;
  /** Canned evidence, used before `checks`. */
  evidence?: Record<string, Evidence>;
  /** The envelope the dependency checks run on. */
  env?: Envelope;
}

export interface TestContext extends CheckContext {
  /** Names of the dependency checks actually run, in order (memoisation shows as one entry each). */
  readonly ran: string[];
}

export function fixedClock(ms: number): Clock {
  return { now: () => ms };
}

export function makeContext(resolver: Resolver, opts: TestContextOptions = {}): TestContext {
  const memo = new Map<string, Promise<Evidence>>();
  const ran: string[] = [];
  const ctx: TestContext = {
    resolver,
    clock: opts.clock ?? { now: () => Date.now() },
    ran,
    evidence(name: string): Promise<Evidence> {
      const known = memo.get(name);
      if (known) return known;
      let p: Promise<Evidence>;
      const canned = opts.evidence?.[name];
      const check = opts.checks?.[name];
      if (canned) p = Promise.resolve(canned);
      else if (check && opts.env) {
        ran.push(name);
        p = check(opts.env, ctx);
      } else p = Promise.reject(new Error(`test context: no evidence or check for "${name}"`));
      memo.set(name, p);
      return p;
    },
  };
  return ctx;
}

/** An envelope with defaults for the fields a test does not care about. */
export function envelope(fields: Partial<Envelope> & { clientIp: string }): Envelope {
  return { rcpts: [], ...fields };
}
