// BATV tags (draft-levine-smtp-batv-01, "prvs"): the envelope sender of our
// outgoing mail becomes prvs=KDDDSSSSSS=user@example.com, where K is the key
// number (0–9), DDD the day the tag expires (days since 1970 mod 1000) and
// SSSSSS the first three bytes of HMAC-SHA1(key, "KDDD" + the address). A real
// bounce comes back to that address; a forged one (backscatter) does not.
// Pure functions of the key set and the clock: the socketmap that signs and
// the check that verifies share them.

import { createHmac, timingSafeEqual } from 'node:crypto';

export interface BatvKey {
  /** 0–9, written into the tag. */
  id: number;
  secret: Buffer;
}

export interface BatvKeys {
  /** Signs new tags. */
  current: BatvKey;
  /** Every key a tag may carry (current and the previous one, during a rotation). */
  all: readonly BatvKey[];
}

const DAY_MS = 86_400_000;
const TAG = /^prvs=([0-9])([0-9]{3})([0-9a-f]{6})=(.+)$/i;

function dayNumber(ms: number): number {
  return Math.floor(ms / DAY_MS);
}

function hashOf(key: BatvKey, ddd: string, address: string): string {
  return createHmac('sha1', key.secret).update(`${key.id}${ddd}${address.toLowerCase()}`).digest('hex').slice(0, 6);
}

/** prvs=…=local@domain for `address`, valid `validDays` days from `now`. */
export function batvSign(address: string, keys: BatvKeys, now: number, validDays: number): string {
  const ddd = String((dayNumber(now) + validDays) % 1000).padStart(3, '0');
  const at = address.lastIndexOf('@');
  const local = address.slice(0, at);
  const domain = address.slice(at + 1);
  return `prvs=${keys.current.id}${ddd}${hashOf(keys.current, ddd, address)}=${local}@${domain}`;
}

export type BatvVerdict =
  | { result: 'pass'; address: string; expiresDay: number }
  | { result: 'fail'; address: string; why: string }
  | { result: 'none'; why: string };

/** Is `address` a prvs-tagged address; its untagged form when it is. */
export function batvStrip(address: string): string | undefined {
  const at = address.lastIndexOf('@');
  if (at < 0) return undefined;
  const m = TAG.exec(address.slice(0, at));
  return m ? `${m[4]}@${address.slice(at + 1)}` : undefined;
}

/** The tag's key and hash checked; its age not yet. */
type TagCheck = { result: 'ours'; address: string; ddd: string } | { result: 'fail'; address: string; why: string } | { result: 'none'; why: string };

function checkTag(address: string, keys: BatvKeys): TagCheck {
  const at = address.lastIndexOf('@');
  if (at < 0) return { result: 'none', why: 'not an address' };
  const m = TAG.exec(address.slice(0, at));
  if (!m) return { result: 'none', why: 'no BATV tag' };
  const [, k, ddd, hash, local] = m;
  const plain = `${local}@${address.slice(at + 1)}`;
  const key = keys.all.find((x) => x.id === Number(k));
  if (!key) return { result: 'fail', address: plain, why: `tag signed with key ${k}, which is not configured (rotated out?)` };
  const want = Buffer.from(hashOf(key, ddd, plain), 'utf8');
  if (!timingSafeEqual(want, Buffer.from(hash.toLowerCase(), 'utf8'))) return { result: 'fail', address: plain, why: 'tag hash does not match: not a tag we made' };
  return { result: 'ours', address: plain, ddd };
}

/**
 * The untagged form of `address` when it carries a tag made with one of our
 * keys (right key number and hash), whatever its age; undefined otherwise.
 * The strip table uses it so that a made-up tag is never rewritten to a user.
 */
export function batvOwnTag(address: string, keys: BatvKeys): string | undefined {
  const c = checkTag(address, keys);
  return c.result === 'ours' ? c.address : undefined;
}

/**
 * Check a recipient of a bounce. `none` when it carries no tag (the caller
 * decides whether an untagged address of a signing domain fails); `fail` for
 * a tag with an unknown key, a wrong hash or a past expiry day.
 */
export function batvVerify(address: string, keys: BatvKeys, now: number, validDays: number): BatvVerdict {
  const c = checkTag(address, keys);
  if (c.result !== 'ours') return c;
  // The expiry day is stored mod 1000: take the one nearest today, then it must not be past and not beyond validDays ahead.
  const today = dayNumber(now);
  const base = today - (today % 1000);
  let expires = base + Number(c.ddd);
  if (expires < today - 500) expires += 1000;
  else if (expires > today + 500) expires -= 1000;
  if (expires < today) return { result: 'fail', address: c.address, why: `tag expired ${today - expires} day(s) ago` };
  if (expires > today + validDays) return { result: 'fail', address: c.address, why: 'tag expires further ahead than we sign: not ours' };
  return { result: 'pass', address: c.address, expiresDay: expires };
}

/** The keys of the config, read from their files (the first line of each, at least 16 characters); the first signs. */
export function readBatvKeys(keys: ReadonlyArray<{ id: number; secret_file: string }>, read: (path: string) => string): BatvKeys {
  if (keys.length === 0) throw new Error('batv: no keys configured (batv.keys)');
  const all = keys.map((k) => {
    const secret = read(k.secret_file).split('\n')[0].trim();
    if (secret.length < 16) throw new Error(`batv key ${k.id}: ${k.secret_file} must hold a secret of at least 16 characters on its first line`);
    return { id: k.id, secret: Buffer.from(secret, 'utf8') };
  });
  return { current: all[0], all };
}
