// Who may use the web listener: the `web.auth` password hash or token file,
// and the rule that a listener off loopback needs one. The password is kept
// only as a scrypt hash in a PHC-style string:
//
//   $scrypt$ln=15,r=8,p=1$<salt, base64>$<64-byte key, base64>
//
// (ln = log2 of scrypt's N). scrypt comes with Node (node:crypto), so no
// dependency: bcrypt and argon2 need native modules.

import { createHash, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import ipaddr from 'ipaddr.js';
import type { Logger } from 'pino';
import { parseListenAddress } from '../../config/address.js';
import { PASSWORD_HASH_RE, webListenAddress, type WebConfig } from './config.js';

const DEFAULT_LN = 15;
const KEY_BYTES = 64;
/** Shortest token a token file may hold: guessing it must be out of reach. */
export const MIN_TOKEN_CHARS = 24;

function scryptAsync(password: string, salt: Buffer, keylen: number, ln: number, r: number, p: number): Promise<Buffer> {
  const N = 2 ** ln;
  return new Promise((resolve, reject) => {
    scrypt(password, salt, keylen, { N, r, p, maxmem: 256 * N * r }, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

/** A new hash for web.auth.password_hash. */
export async function hashPassword(password: string, ln = DEFAULT_LN): Promise<string> {
  if (password === '') throw new Error('the password is empty');
  const salt = randomBytes(16);
  const key = await scryptAsync(password, salt, KEY_BYTES, ln, 8, 1);
  return `$scrypt$ln=${ln},r=8,p=1$${salt.toString('base64')}$${key.toString('base64')}`;
}

/** Does the password match the hash? False for a malformed hash too. */
export async function verifyPassword(password: string, hash: string): Promise<boolean> {
  const m = PASSWORD_HASH_RE.exec(hash);
  if (!m) return false;
  const [ln, r, p] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (ln < 1 || ln > 20 || r < 1 || p < 1) return false;
  const salt = Buffer.from(m[4], 'base64');
  const want = Buffer.from(m[5], 'base64');
  if (want.length < 16) return false;
  const got = await scryptAsync(password, salt, want.length, ln, r, p);
  return timingSafeEqual(got, want);
}

/** Is this listen host loopback (127/8, ::1, localhost)? A name other than localhost is not. */
export function isLoopbackHost(host: string): boolean {
  if (host === 'localhost') return true;
  if (!ipaddr.isValid(host)) return false;
  const addr = ipaddr.process(host);
  return addr.range() === 'loopback';
}

/** What the web listener checks a credential against, loaded once when serve starts. */
export type WebAuth = { kind: 'password'; hash: string } | { kind: 'token'; token: string };

/**
 * The configured authentication, with its token file read; throws (serve
 * refuses to start) when the listener is off loopback without one, or the
 * token file is unreadable or too short.
 */
export function loadWebAuth(web: WebConfig, logger?: Logger): WebAuth | undefined {
  const address = webListenAddress(web);
  if (address === undefined) return undefined;
  const host = parseListenAddress(address)!.host;
  if (web.auth === null) {
    if (!isLoopbackHost(host)) {
      throw new Error(
        `web.listen ${address} is not a loopback address: set web.auth (a password_hash from \`frontline web hash-password\`, or a token_file) or listen on 127.0.0.1`,
      );
    }
    return undefined;
  }
  if ('password_hash' in web.auth) return { kind: 'password', hash: web.auth.password_hash };
  const file = web.auth.token_file;
  let token: string;
  try {
    token = readFileSync(file, 'utf8').trim();
  } catch (e) {
    throw new Error(`web.auth.token_file: cannot read ${file}: ${(e as Error).message}`, { cause: e });
  }
  if (token.length < MIN_TOKEN_CHARS || /\s/.test(token)) {
    throw new Error(`web.auth.token_file ${file}: expected one token of at least ${MIN_TOKEN_CHARS} characters without spaces (e.g. \`openssl rand -hex 32\`)`);
  }
  if ((statSync(file).mode & 0o004) !== 0) logger?.warn({ file }, 'web.auth.token_file is readable by everyone; chmod o-r it');
  return { kind: 'token', token };
}

/** Equal strings in constant time (for the length of the longer). */
export function sameSecret(a: string, b: string): boolean {
  const da = createHash('sha256').update(a).digest();
  const db = createHash('sha256').update(b).digest();
  return timingSafeEqual(da, db);
}
