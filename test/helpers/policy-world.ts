// A policy over an in-memory DNS world, for policy tests: zone data in the
// fixture YAML shape, config as YAML text, a fixed clock.

import type { Envelope, Stage, Verdict } from '../../src/core/types.js';
import { ZoneResolver } from '../../src/dns/zone.js';
import { parseConfig } from '../../src/config/load.js';
import { Policy } from '../../src/policy/policy.js';
import { zoneFromYaml } from './fixture-dns.js';
import { fixedClock } from './check-context.js';

export interface World {
  resolver: ZoneResolver;
  policy: Policy;
}

/** Build a policy from config YAML (default: the embedded defaults) over zone YAML. */
export function world(zoneYaml: string, configYaml = '', opts: { authservId?: string } = {}): World {
  const resolver = new ZoneResolver(zoneFromYaml(zoneYaml));
  const cfg = parseConfig(configYaml, 'test.yaml');
  cfg.headers.authserv_id ??= opts.authservId ?? 'mx.test';
  const policy = Policy.fromConfig(cfg, { resolver, clock: fixedClock(Date.parse('2024-01-01T00:00:00Z')) });
  return { resolver, policy };
}

/** Run a whole transaction through the given stages; returns the verdict of the last stage evaluated. */
export async function run(
  w: World,
  env: Envelope,
  opts: { stages?: Stage[]; seesMessage?: boolean } = {},
): Promise<Verdict> {
  const tx = w.policy.transaction({ seesMessage: opts.seesMessage ?? false });
  let last: Verdict | undefined;
  for (const stage of opts.stages ?? ['rcpt']) {
    last = await tx.evaluate(stage, env);
    if (last.action !== 'continue') return last;
  }
  return last as Verdict;
}

export function header(v: Verdict, name: string): string | undefined {
  return v.headers.find(([n]) => n.toLowerCase() === name.toLowerCase())?.[1];
}
