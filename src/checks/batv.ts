// The `batv` check: a bounce (null sender) to an address of a signing domain
// must come back to a tag we made (src/checks/batv-tag.ts). pass: a valid
// tag; fail: no tag, a wrong hash, an unknown key or an expired tag; none:
// not a bounce, or not to a signing domain. The shipped rule `batv-bounce`
// refuses fail with 550 5.7.1.

import type { Envelope, Evidence } from '../core/types.js';
import { batvVerify, type BatvKeys } from './batv-tag.js';

export interface BatvCheckOptions {
  keys: BatvKeys;
  /** Lower-case domains that sign their senders. */
  domains: ReadonlySet<string>;
  validDays: number;
}

function ev(result: Evidence['result'], detail: string): Evidence {
  return { check: 'batv', result, detail, ms: 0 };
}

export function batvEvidence(env: Envelope, now: number, opts: BatvCheckOptions): Evidence {
  if (env.from !== '') return ev('none', env.from === undefined ? 'no MAIL FROM yet' : 'not a bounce');
  const rcpt = env.rcpts[env.rcpts.length - 1];
  if (rcpt === undefined) return ev('none', 'no recipient yet');
  const at = rcpt.lastIndexOf('@');
  const domain = at < 0 ? '' : rcpt.slice(at + 1).toLowerCase();
  if (!opts.domains.has(domain)) return ev('none', `${domain || rcpt} does not sign its mail (batv.domains)`);
  const v = batvVerify(rcpt, opts.keys, now, opts.validDays);
  if (v.result === 'pass') return ev('pass', `bounce to ${v.address} carries a valid BATV tag`);
  if (v.result === 'fail') return ev('fail', `bounce to ${v.address}: ${v.why}`);
  return ev('fail', `bounce to ${rcpt}, which signs its mail, carries no BATV tag: that address sent no such message`);
}
