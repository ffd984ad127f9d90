// DNS block and allow lists (RFC 5782). Zones are written as Postfix admins
// write postscreen_dnsbl_sites:
//
//   zen.example.org=127.0.0.[2..11]*3    filter on the answer, weight 3
//   list.example=127.0.0.2               only this answer counts
//   wl.example*-2                        any answer, weight -2 (an allow list)
//
// A filter octet is a number, or a bracketed list of numbers and ranges
// (`[2;4;10..12]`). Answers outside 127.0.0.0/8, and 127.255.255.0/24 (the
// error codes Spamhaus and others send, e.g. to queries from public
// resolvers), never count as a listing. A zone that fails its RFC 5782 §5 test
// points (lists everything, lists nothing, does not answer) is taken out of use.

import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';
import type { Clock, Envelope, Evidence } from '../core/types.js';
import { DnsError, isDnsError, type Resolver } from '../dns/types.js';
import { nibbles, normaliseIp } from '../dns/reverse.js';
import { timed } from './evidence.js';
import { isValidHostname, normaliseName } from './hostname.js';
import type { CheckContext } from './types.js';

/** Allowed values of one answer octet: inclusive ranges. */
export type OctetFilter = Array<[number, number]>;

export interface ZoneSpec {
  /** Zone name, lower case, no trailing dot. */
  zone: string;
  /** Per-octet filters of the answer, or undefined: any valid answer counts. */
  filter?: [OctetFilter, OctetFilter, OctetFilter, OctetFilter];
  /** Added to the score when the zone lists the client (default 1; negative for allow lists). */
  weight: number;
  /** The text the spec was parsed from. */
  text: string;
}

function parseOctet(part: string, text: string): OctetFilter {
  const bad = (why: string): Error => new Error(`bad DNSBL zone spec "${text}": ${why}`);
  const num = (s: string): number => {
    if (!/^\d{1,3}$/.test(s) || Number(s) > 255) throw bad(`"${s}" is not an octet value 0..255`);
    return Number(s);
  };
  if (!part.startsWith('[')) return [[num(part), num(part)]];
  if (!part.endsWith(']')) throw bad(`unclosed "[" in "${part}"`);
  const inner = part.slice(1, -1);
  if (inner === '') throw bad('empty "[]"');
  return inner.split(';').map((el) => {
    const m = /^(\d+)\.\.(\d+)$/.exec(el);
    if (!m) return [num(el), num(el)] as [number, number];
    const [lo, hi] = [num(m[1]), num(m[2])];
    if (lo > hi) throw bad(`range ${el} runs backwards`);
    return [lo, hi] as [number, number];
  });
}

/** Parse `zone[=filter][*weight]`; throws an Error naming the text and the fault. */
export function parseZoneSpec(text: string): ZoneSpec {
  const t = text.trim();
  const bad = (why: string): Error => new Error(`bad DNSBL zone spec "${text}": ${why}`);
  let rest = t;
  let weight = 1;
  const star = rest.lastIndexOf('*');
  if (star >= 0) {
    const w = rest.slice(star + 1);
    if (!/^[+-]?\d+$/.test(w)) throw bad(`weight "${w}" is not an integer`);
    weight = Number(w);
    rest = rest.slice(0, star);
  }
  let filter: ZoneSpec['filter'];
  const eq = rest.indexOf('=');
  if (eq >= 0) {
    const f = rest.slice(eq + 1);
    rest = rest.slice(0, eq);
    // Split on the dots between octets, not the `..` inside ranges.
    const parts = f.split(/(?<!\.)\.(?!\.)/);
    if (parts.length !== 4) throw bad(`filter "${f}" must have 4 octets`);
    filter = parts.map((p) => parseOctet(p, text)) as ZoneSpec['filter'];
  }
  const zone = normaliseName(rest);
  if (!isValidHostname(zone) || !zone.includes('.')) throw bad(`"${rest}" is not a zone name`);
  return { zone, filter, weight, text: t };
}

/** The answer is a listing code: in 127.0.0.0/8 and not an error code in 127.255.255.0/24. */
export function isListingCode(code: string): boolean {
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(code) && !code.startsWith('127.255.255.');
}

export function matchesFilter(spec: ZoneSpec, code: string): boolean {
  if (!spec.filter) return true;
  const octets = code.split('.').map(Number);
  return spec.filter.every((ranges, i) => ranges.some(([lo, hi]) => octets[i] >= lo && octets[i] <= hi));
}

/** `reversed-ip.zone`: octets reversed for IPv4, 32 reversed nibbles for IPv6 (RFC 5782 §2.1, §2.4). */
export function dnsblQueryName(ip: string, zone: string): string {
  const n = normaliseIp(ip);
  if (isIP(n) === 4) return `${n.split('.').reverse().join('.')}.${zone}`;
  return `${nibbles(ipaddr.IPv6.parse(n)).reverse().join('.')}.${zone}`;
}

/** The raw query of one zone, raced against a timer. */
async function queryZone(resolver: Resolver, name: string, timeoutMs: number): Promise<string[]> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DnsError('TIMEOUT', name, 'A')), timeoutMs);
  });
  try {
    return await Promise.race([resolver.a(name), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

type ZoneAnswer = { kind: 'listed'; codes: string[]; errors: string[] } | { kind: 'unlisted'; errors: string[] } | { kind: 'failed'; reason: string };

async function askZone(resolver: Resolver, name: string, timeoutMs: number): Promise<ZoneAnswer> {
  try {
    const all = await queryZone(resolver, name, timeoutMs);
    const codes = all.filter(isListingCode);
    const errors = all.filter((c) => !isListingCode(c));
    if (codes.length > 0) return { kind: 'listed', codes, errors };
    // Only error codes: the zone refused to answer this query.
    return { kind: 'failed', reason: `error answer ${errors.join(', ')}` };
  } catch (e) {
    if (isDnsError(e) && e.isVoid) return { kind: 'unlisted', errors: [] };
    if (isDnsError(e)) return { kind: 'failed', reason: e.code === 'TIMEOUT' ? `timeout after ${timeoutMs} ms` : e.code };
    throw e;
  }
}

// ---------------------------------------------------------------- health

export const DNSBL_DEFAULT_TIMEOUT_MS = 2000;

export interface ZoneHealthState {
  zone: string;
  /** IPv4 queries may use the zone. */
  usable: boolean;
  /** IPv6 queries may use the zone (false also when IPv4 is out of use). */
  usableV6: boolean;
  reason?: string;
  reasonV6?: string;
  /** The zone lists ::FFFF:7F00:2 (an IPv6-capable list); false is no fault. */
  ipv6TestPoint?: boolean;
  /** Clock time of the last probe. */
  checkedAt: number;
}

export interface DnsblHealthOptions {
  clock?: Clock;
  timeoutMs?: number;
  /** Told whenever a zone goes out of use or back into use (for the log). */
  onChange?: (state: ZoneHealthState) => void;
}

// RFC 5782 §5 test points.
const TEST_LISTED_V4 = '127.0.0.2';
const TEST_UNLISTED_V4 = '127.0.0.1';
const TEST_LISTED_V6 = '::ffff:7f00:2';
const TEST_UNLISTED_V6 = '::ffff:7f00:1';

/** The v6 test points must be queried as IPv6 nibbles, not mapped back to IPv4 as clients are. */
function v6QueryName(ip: string, zone: string): string {
  return `${nibbles(ipaddr.IPv6.parse(ip)).reverse().join('.')}.${zone}`;
}

/**
 * Per-zone health from RFC 5782 §5 probes. A zone never probed is usable.
 * IPv4: 127.0.0.2 must be listed and 127.0.0.1 must not; otherwise the zone is
 * out of use. IPv6: a zone listing ::FFFF:7F00:1 lists everything and is out
 * of use for IPv6; a zone without the ::FFFF:7F00:2 entry is taken to be an
 * IPv4-only list and is still queried (a miss costs one NXDOMAIN).
 * The caller schedules `probe()` (at start and periodically).
 */
export class DnsblHealth {
  private states = new Map<string, ZoneHealthState>();
  private readonly zones: string[];

  constructor(
    zones: Array<ZoneSpec | string>,
    private readonly opts: DnsblHealthOptions = {},
  ) {
    this.zones = [...new Set(zones.map((z) => (typeof z === 'string' ? normaliseName(z) : z.zone)))];
  }

  isUsable(zone: string, family: 4 | 6 = 4): boolean {
    const s = this.states.get(normaliseName(zone));
    if (!s) return true;
    return family === 4 ? s.usable : s.usableV6;
  }

  /** Why the zone is out of use (for that family), or undefined. */
  reason(zone: string, family: 4 | 6 = 4): string | undefined {
    const s = this.states.get(normaliseName(zone));
    if (!s) return undefined;
    return family === 4 ? s.reason : (s.reason ?? s.reasonV6);
  }

  state(zone: string): ZoneHealthState | undefined {
    return this.states.get(normaliseName(zone));
  }

  /** Every zone's last probe (zones never probed are left out). */
  allStates(): ZoneHealthState[] {
    return [...this.states.values()];
  }

  /** Probe every zone in parallel and update its state. */
  async probe(resolver: Resolver): Promise<ZoneHealthState[]> {
    return Promise.all(this.zones.map((z) => this.probeZone(resolver, z)));
  }

  private async probeZone(resolver: Resolver, zone: string): Promise<ZoneHealthState> {
    const t = this.opts.timeoutMs ?? DNSBL_DEFAULT_TIMEOUT_MS;
    const [listed, unlisted, listed6, unlisted6] = await Promise.all([
      askZone(resolver, dnsblQueryName(TEST_LISTED_V4, zone), t),
      askZone(resolver, dnsblQueryName(TEST_UNLISTED_V4, zone), t),
      askZone(resolver, v6QueryName(TEST_LISTED_V6, zone), t),
      askZone(resolver, v6QueryName(TEST_UNLISTED_V6, zone), t),
    ]);
    let reason: string | undefined;
    if (listed.kind === 'failed') reason = `test point 127.0.0.2 not answered (${listed.reason})`;
    else if (listed.kind === 'unlisted') reason = 'does not list test point 127.0.0.2 (dead zone or no answers)';
    else if (unlisted.kind === 'listed') reason = `lists 127.0.0.1 (${unlisted.codes.join(', ')}): lists everything`;
    let reasonV6: string | undefined;
    if (unlisted6.kind === 'listed') reasonV6 = `lists ::FFFF:7F00:1 (${unlisted6.codes.join(', ')}): lists everything`;
    const state: ZoneHealthState = {
      zone,
      usable: reason === undefined,
      usableV6: reason === undefined && reasonV6 === undefined,
      checkedAt: (this.opts.clock ?? { now: () => Date.now() }).now(),
    };
    if (reason) state.reason = reason;
    if (reasonV6) state.reasonV6 = reasonV6;
    state.ipv6TestPoint = listed6.kind === 'listed';
    const before = this.states.get(zone);
    this.states.set(zone, state);
    const changed = before ? before.usable !== state.usable || before.usableV6 !== state.usableV6 : !state.usable || !state.usableV6;
    if (changed) this.opts.onChange?.(state);
    return state;
  }
}

// ---------------------------------------------------------------- check

export interface DnsblOptions {
  zones: ZoneSpec[];
  health?: DnsblHealth;
  /** Per-zone timeout in ms (default 2000); a zone that has not answered by then counts as not listed, even when it is the only one. */
  timeoutMs?: number;
  /** Check name: 'dnsbl' (default) or 'dnswl', or any name for a second set of zones. */
  name?: string;
  /** Score at or above which the client is `listed` (default 1). */
  threshold?: number;
}

export interface DnsblHit {
  zone: string;
  codes: string[];
  weight: number;
}

export function checkDnsbl(env: Envelope, ctx: CheckContext, opts: DnsblOptions): Promise<Evidence> {
  const name = opts.name ?? 'dnsbl';
  return timed(name, async () => {
    const threshold = opts.threshold ?? 1;
    const timeoutMs = opts.timeoutMs ?? DNSBL_DEFAULT_TIMEOUT_MS;
    const ip = normaliseIp(env.clientIp);
    const family = isIP(ip) === 6 ? 6 : 4;
    const skipped: Array<{ zone: string; reason: string }> = [];
    const zoneNames = [...new Set(opts.zones.map((s) => s.zone))];
    const asked = zoneNames.filter((z) => {
      if (!opts.health || opts.health.isUsable(z, family)) return true;
      skipped.push({ zone: z, reason: `out of use: ${opts.health.reason(z, family) ?? 'failed its health probe'}` });
      return false;
    });
    const answers = await Promise.all(asked.map((z) => askZone(ctx.resolver, dnsblQueryName(ip, z), timeoutMs)));

    const hits: DnsblHit[] = [];
    const errors: Array<{ zone: string; codes: string[] }> = [];
    const failed = new Set<string>();
    asked.forEach((zone, i) => {
      const a = answers[i];
      if (a.kind === 'failed') {
        failed.add(zone);
        skipped.push({ zone, reason: a.reason });
        return;
      }
      if (a.errors.length > 0) errors.push({ zone, codes: a.errors });
      if (a.kind !== 'listed') return;
      for (const spec of opts.zones.filter((s) => s.zone === zone)) {
        const codes = a.codes.filter((c) => matchesFilter(spec, c));
        if (codes.length > 0) hits.push({ zone, codes, weight: spec.weight });
      }
    });
    const score = hits.reduce((s, h) => s + h.weight, 0);
    const data: Record<string, unknown> = { score, hits, skipped };
    if (errors.length > 0) data.errors = errors;
    if (failed.size > 0) data.incomplete = true;

    const hitText = hits.map((h) => `${h.zone} (${h.codes.join(', ')}${h.weight !== 1 ? `, weight ${h.weight}` : ''})`).join(', ');
    const skipText = skipped.length > 0 ? `; not consulted: ${skipped.map((s) => `${s.zone} (${s.reason})`).join(', ')}` : '';
    // A zone that did not answer does not count — with one zone too: every zone failing is
    // `unlisted` (data.incomplete), not temperror, so one dead or slow DNSBL never defers mail
    // that everything else accepts (issue 17). The evidence is not cached (a question failed).
    if (asked.length > 0 && failed.size === asked.length) {
      return { result: 'unlisted', detail: `${ip}: not listed (no list answered${skipText})`, data };
    }
    if (score >= threshold && hits.length > 0) {
      // A failed zone with a negative weight might have pulled the score below the threshold.
      const couldLower = opts.zones.filter((s) => failed.has(s.zone) && s.weight < 0).reduce((s, z) => s + z.weight, 0);
      if (score + couldLower < threshold) {
        return { result: 'temperror', detail: `${ip} listed by ${hitText} (score ${score}), but an allow zone did not answer${skipText}`, data };
      }
      return { result: 'listed', detail: `${ip} listed by ${hitText}; score ${score} ≥ ${threshold}${skipText}`, data };
    }
    const what = hits.length > 0 ? `matches ${hitText}, score ${score} < ${threshold}` : `not listed by ${asked.join(', ') || 'any zone'}`;
    return { result: 'unlisted', detail: `${ip} ${what}${skipText}`, data };
  });
}
