// Scenarios turn events into bans: N events of the matched kinds from one
// address within a window (fail2ban's maxretry/findtime), or — with `leak` —
// a leaky bucket of capacity N that loses one event every `leak` (CrowdSec's
// shape: it overflows when N events are in it); a count of 1 bans at once
// (unambiguous probes); `distinct` counts different keys instead of events
// (address guessing: unknown recipients).
//
// Memory is bounded whatever the attacker sends: tracked addresses live in
// two generations of at most cap/2 each; an address seen again moves to the
// young one, and when the young one is full the old one is dropped whole. So
// a flood of distinct addresses evicts the quietest ones and never grows the
// map, in O(1) per event (deleting the oldest key of one big Map, the
// textbook LRU, makes V8 skip its tombstones on every eviction). Each address
// holds one small state per scenario it touched, with at most `count`
// remembered events.

import { banNetwork, type IgnoreList } from './ip.js';
import type { LogEvent } from './formats/types.js';

export interface Scenario {
  name: string;
  /** Event kinds counted: exact names, or prefixes ending in `*` (`http.probe.*`). */
  match: readonly string[];
  /** Events (or distinct keys) that make a ban; 1 bans at the first event. */
  count: number;
  /** Sliding window for `count` events. */
  windowMs: number;
  /** Leaky bucket instead of a window: one event leaks out every `leakMs`. */
  leakMs?: number;
  /** Count distinct event keys (e.g. recipients) instead of events. */
  distinct: boolean;
  /** After a ban, further events of this address are not counted for this long. */
  cooldownMs: number;
  /** Ban category (brute-force, probe, dnsbl, address-guessing …). */
  category: string;
}

export interface Decision {
  /** Address of the event that completed the count. */
  ip: string;
  /** What is banned: the address, or its IPv6 network when ipv6_prefix < 128. */
  cidr: string;
  scenario: string;
  category: string;
  /** Events (or distinct keys) counted. */
  count: number;
  /** Event kinds that were counted. */
  kinds: string[];
  firstLine: number;
  lastLine: number;
  firstTime: number;
  lastTime: number;
  /** Name of the source (file path, `journal`, `stdin`). */
  source: string;
}

export interface EngineOptions {
  /** Most addresses remembered at once (default 100,000). */
  maxTracked?: number;
  /** IPv6 addresses are counted and banned by this prefix (default 128: per address). */
  ipv6Prefix?: number;
  ignore?: IgnoreList;
}

/** One scenario's state for one address. Nothing here is allocated per event. */
interface Track {
  /** Sliding window: a ring of the last `count` event times and line numbers. */
  times: number[];
  lines: number[];
  head: number;
  len: number;
  /** Distinct counting: key → time and line of its last event. */
  keyTimes: Map<string, number> | undefined;
  keyLines: Map<string, number> | undefined;
  /** Leaky bucket. */
  level: number;
  last: number;
  firstLine: number;
  firstTime: number;
  /** Kinds counted since the state was last empty. */
  kinds: string[];
  quietUntil: number;
}

interface Slot {
  scenario: Scenario;
  /** Index of this scenario's state in an address's entry. */
  index: number;
}

/** Per tracked address: the state of each scenario it touched. */
type Entry = Array<Track | undefined>;

export function matchesKind(patterns: readonly string[], kind: string): boolean {
  return patterns.some((p) => (p.endsWith('*') ? kind.startsWith(p.slice(0, -1)) : p === kind));
}

export class ScenarioEngine {
  private young = new Map<string, Entry>();
  private old = new Map<string, Entry>();
  private readonly byKind = new Map<string, Slot[]>();
  private readonly slots: Slot[];
  private readonly maxTracked: number;
  private readonly ipv6Prefix: number;
  private readonly ignore?: IgnoreList;

  constructor(scenarios: readonly Scenario[], opts: EngineOptions = {}) {
    this.slots = scenarios.map((scenario, index) => ({ scenario, index }));
    this.maxTracked = Math.max(2, opts.maxTracked ?? 100_000);
    this.ipv6Prefix = opts.ipv6Prefix ?? 128;
    this.ignore = opts.ignore;
  }

  /** Addresses currently remembered. */
  get tracked(): number {
    return this.young.size + this.old.size;
  }

  /** Count one event seen at `time` (ms) on line `line`; bans it completes are pushed to `out`. */
  observe(event: LogEvent, time: number, line: number, source: string, out: Decision[]): void {
    let slots = this.byKind.get(event.kind);
    if (slots === undefined) {
      slots = this.slots.filter((s) => matchesKind(s.scenario.match, event.kind));
      this.byKind.set(event.kind, slots);
    }
    if (slots.length === 0) return;
    if (this.ignore?.has(event.ip)) return;
    const v6net = event.ip.includes(':') && this.ipv6Prefix < 128 ? banNetwork(event.ip, this.ipv6Prefix) : undefined;
    const entry = this.entry(v6net ?? event.ip);
    for (const slot of slots) {
      const s = slot.scenario;
      if (s.distinct && event.key === undefined) continue;
      const track = (entry[slot.index] ??= newTrack());
      if (time < track.quietUntil) continue;
      const count = s.distinct ? this.addKey(track, s, event.key!, time, line) : s.leakMs !== undefined ? this.fill(track, s, event.times, time, line) : this.add(track, s, event.times, time, line);
      if (track.kinds.indexOf(event.kind) < 0) track.kinds.push(event.kind);
      if (count >= s.count) {
        out.push({
          ip: event.ip,
          cidr: v6net ?? banNetwork(event.ip, 128),
          scenario: s.name,
          category: s.category,
          count,
          kinds: track.kinds.slice(),
          firstLine: track.firstLine,
          lastLine: line,
          firstTime: track.firstTime,
          lastTime: time,
          source,
        });
        this.reset(track);
        track.quietUntil = time + s.cooldownMs;
      }
    }
  }

  /** Sliding window: the last `count` event times, in a ring. */
  private add(track: Track, s: Scenario, times: number, time: number, line: number): number {
    const since = time - s.windowMs;
    const cap = s.count;
    while (track.len > 0 && track.times[track.head] < since) {
      track.head = track.head + 1 === cap ? 0 : track.head + 1;
      track.len--;
    }
    if (track.len === 0) track.kinds.length = 0;
    for (let i = Math.min(times, cap); i > 0; i--) {
      let at = track.head + track.len;
      if (at >= cap) at -= cap;
      track.times[at] = time;
      track.lines[at] = line;
      if (track.len < cap) track.len++;
      else track.head = track.head + 1 === cap ? 0 : track.head + 1;
    }
    track.firstTime = track.times[track.head];
    track.firstLine = track.lines[track.head];
    return track.len;
  }

  /** Leaky bucket: one event leaks out every leakMs (counted from the first event in an empty bucket). */
  private fill(track: Track, s: Scenario, times: number, time: number, line: number): number {
    const leakMs = s.leakMs!;
    const leaked = Math.floor((time - track.last) / leakMs);
    if (leaked > 0) {
      track.level = Math.max(0, track.level - leaked);
      track.last += leaked * leakMs;
    }
    if (track.level === 0) {
      track.last = time;
      track.firstLine = line;
      track.firstTime = time;
      track.kinds.length = 0;
    }
    track.level += Math.min(times, s.count);
    return track.level;
  }

  /** Distinct keys within the window. */
  private addKey(track: Track, s: Scenario, key: string, time: number, line: number): number {
    const keyTimes = (track.keyTimes ??= new Map());
    const keyLines = (track.keyLines ??= new Map());
    const since = time - s.windowMs;
    let firstLine = line;
    let firstTime = time;
    keyTimes.forEach((t, k) => {
      if (t < since) {
        keyTimes.delete(k);
        keyLines.delete(k);
      } else if (k !== key) {
        const l = keyLines.get(k)!;
        if (l < firstLine) [firstLine, firstTime] = [l, t];
      }
    });
    if (keyTimes.size === 0) track.kinds.length = 0;
    keyTimes.set(key, time);
    keyLines.set(key, line);
    track.firstTime = firstTime;
    track.firstLine = firstLine;
    return keyTimes.size;
  }

  private reset(track: Track): void {
    track.head = 0;
    track.len = 0;
    track.keyTimes?.clear();
    track.keyLines?.clear();
    track.level = 0;
    track.kinds.length = 0;
  }

  /** The entry of an address, made young; the old generation is dropped when the young one is full. */
  private entry(key: string): Entry {
    let e = this.young.get(key);
    if (e !== undefined) return e;
    e = this.old.get(key);
    if (e !== undefined) this.old.delete(key);
    else e = [];
    this.young.set(key, e);
    if (this.young.size >= this.maxTracked >> 1) {
      this.old = this.young;
      this.young = new Map();
    }
    return e;
  }
}

function newTrack(): Track {
  return { times: [], lines: [], head: 0, len: 0, keyTimes: undefined, keyLines: undefined, level: 0, last: 0, firstLine: 0, firstTime: 0, kinds: [], quietUntil: -Infinity };
}
