// Parsed IP addresses, memoised: the same client and DNS-answer addresses come
// back decision after decision, and parsing them with ipaddr.js each time was
// a measurable share of a warm-cache policy decision.

import ipaddr from 'ipaddr.js';
import { memoiseString } from './lru.js';

const MEMO_ENTRIES = 10_000;

/**
 * `ipaddr.process(text)` (IPv4-mapped IPv6 comes back as IPv4), shared
 * between callers: treat the result as read-only. Throws on garbage (not memoised).
 */
export const parseIpAddress: (text: string) => ipaddr.IPv4 | ipaddr.IPv6 = memoiseString((text: string) => ipaddr.process(text), MEMO_ENTRIES);
