// Loads the DKIM conformance vectors in test/fixtures/conformance/dkim unchanged
// and adapts them here: zone data for our Zone, LF→CRLF for the stalwart
// messages, and the clock each needs.

import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const CONFORMANCE_DKIM = fileURLToPath(new URL('../fixtures/conformance/dkim', import.meta.url));

/** The clock at which every stalwart signature is valid (see the conformance README). */
export const STALWART_CLOCK_MS = 1667843664 * 1000;

export interface DkimVector {
  name: string;
  /** Zone data: name → [{ TXT: [strings…] }]. */
  zone: Record<string, unknown>;
  message: Buffer;
  clockMs: number;
  /** DKIM-Signature header fields in the message. */
  signatures: number;
}

/** TXT strings are at most 255 octets on the wire; split a long value as a publisher would. */
function chunks(value: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < value.length; i += 255) out.push(value.slice(i, i + 255));
  return out.length > 0 ? out : [''];
}

function countSignatures(message: Buffer): number {
  const text = message.toString('latin1');
  const end = text.search(/\r?\n\r?\n/);
  return (text.slice(0, end < 0 ? text.length : end).match(/^dkim-signature:/gim) ?? []).length;
}

export function loadDkimVectors(): DkimVector[] {
  const vectors: DkimVector[] = [];
  const m = join(CONFORMANCE_DKIM, 'mailauth-rfc8463');
  const dns = JSON.parse(readFileSync(join(m, 'dns.json'), 'utf8')) as Record<string, { TXT?: string[][] }>;
  const zone: Record<string, unknown> = {};
  for (const [name, rr] of Object.entries(dns)) zone[name] = (rr.TXT ?? []).map((strings) => ({ TXT: chunks(strings.join('')) }));
  const message = readFileSync(join(m, 'signed.eml'));
  vectors.push({ name: 'mailauth-rfc8463/signed.eml', zone, message, clockMs: Date.now(), signatures: countSignatures(message) });

  const s = join(CONFORMANCE_DKIM, 'stalwart-mail-auth');
  for (const f of readdirSync(s).filter((n) => /^\d+\.txt$/.test(n)).sort()) {
    const text = readFileSync(join(s, f), 'utf8');
    const split = text.indexOf('\n\n');
    const z: Record<string, unknown> = {};
    for (const line of text.slice(0, split).split('\n').filter(Boolean)) {
      const sp = line.indexOf(' ');
      const name = line.slice(0, sp);
      z[name] = [...((z[name] as unknown[]) ?? []), { TXT: chunks(line.slice(sp + 1)) }];
    }
    const msg = Buffer.from(text.slice(split + 2).replace(/\r?\n/g, '\r\n'));
    vectors.push({ name: `stalwart-mail-auth/${f}`, zone: z, message: msg, clockMs: STALWART_CLOCK_MS, signatures: countSignatures(msg) });
  }
  return vectors;
}

/** A copy of the message with one body letter changed. */
export function tamperBody(message: Buffer): Buffer {
  const copy = Buffer.from(message);
  const start = copy.toString('latin1').search(/\r?\n\r?\n/) + 2;
  for (let i = start; i < copy.length; i++) {
    const c = copy[i];
    if ((c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a)) {
      copy[i] = c === 0x78 ? 0x79 : 0x78; // → 'x' (or 'y' if it was 'x')
      return copy;
    }
  }
  throw new Error('no letter in the body to change');
}
