// Messages signed in the test itself: a generated key, the DKIM TXT record
// that publishes it, and mailauth's signer and ARC sealer. No fixture keys on
// disk, no network.

import { generateKeyPairSync } from 'node:crypto';
import { dkimSign } from 'mailauth/lib/dkim/sign.js';
import { sealMessage } from 'mailauth/lib/arc/index.js';

export interface TestKey {
  type: 'rsa' | 'ed25519';
  privateKey: string;
  /** The `v=DKIM1; k=…; p=…` record, split into ≤255-byte strings as a zone TXT entry wants. */
  txt: string[];
}

/** A fresh signing key (RSA 1024 keeps the tests fast; mailauth's minimum). */
export function generateKey(type: 'rsa' | 'ed25519' = 'rsa'): TestKey {
  if (type === 'ed25519') {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    // DKIM publishes the bare 32-byte ed25519 key (RFC 8463), the tail of its SPKI encoding.
    const raw = publicKey.export({ format: 'der', type: 'spki' }).subarray(-32);
    return { type, privateKey: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(), txt: [`v=DKIM1; k=ed25519; p=${raw.toString('base64')}`] };
  }
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
  const p = publicKey.export({ format: 'der', type: 'spki' }).toString('base64');
  const record = `v=DKIM1; k=rsa; p=${p}`;
  return { type, privateKey: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(), txt: record.match(/.{1,255}/g) ?? [record] };
}

/** A small plain-text message with CRLF line ends. */
export function plainMessage(fields: { from: string; to?: string; subject?: string; messageId?: string; body?: string; extra?: string[] }): Buffer {
  const lines = [
    `From: ${fields.from}`,
    `To: ${fields.to ?? 'rcpt@example.net'}`,
    `Subject: ${fields.subject ?? 'test'}`,
    `Date: Mon, 01 Jan 2024 00:00:00 +0000`,
    `Message-ID: ${fields.messageId ?? '<test@example.org>'}`,
    ...(fields.extra ?? []),
    '',
    fields.body ?? 'Hello.\r\n',
  ];
  return Buffer.from(lines.join('\r\n'));
}

/** Prepend a DKIM-Signature of `domain` (selector `s`) to the message. */
export async function signMessage(msg: Buffer, opts: { domain: string; selector?: string; key: TestKey; time?: Date; algorithm?: string }): Promise<Buffer> {
  // mailauth reads the keys from signatureData (its type declaration suggests top-level fields, which it ignores).
  const r = await dkimSign(msg, {
    signTime: opts.time ?? new Date('2024-01-01T00:00:00Z'),
    signatureData: [
      {
        signingDomain: opts.domain,
        selector: opts.selector ?? 's',
        privateKey: opts.key.privateKey,
        algorithm: opts.algorithm ?? (opts.key.type === 'ed25519' ? 'ed25519-sha256' : 'rsa-sha256'),
      },
    ],
  } as Parameters<typeof dkimSign>[1]);
  if (r.errors.length > 0) throw r.errors[0];
  if (!/^DKIM-Signature:/i.test(r.signatures)) throw new Error('dkimSign produced no signature');
  return Buffer.concat([Buffer.from(r.signatures), msg]);
}

/** Prepend the next ARC set, sealed by `domain` (mailauth numbers it after the sets present); cv is `none` for the first set, else `pass` unless given. */
export async function arcSeal(
  msg: Buffer,
  opts: { domain: string; selector?: string; key: TestKey; cv?: 'none' | 'pass' | 'fail'; authResults?: string; time?: Date },
): Promise<Buffer> {
  const headers = await sealMessage(msg, {
    signingDomain: opts.domain,
    selector: opts.selector ?? 's',
    privateKey: opts.key.privateKey,
    cv: opts.cv ?? (/^ARC-Seal:/im.test(msg.subarray(0, 65536).toString('latin1')) ? 'pass' : 'none'),
    authResults: opts.authResults ?? `mx.${opts.domain}; spf=pass smtp.mailfrom=example.org`,
    signTime: opts.time ?? new Date('2024-01-01T00:00:00Z'),
  } as Parameters<typeof sealMessage>[1]);
  return Buffer.concat([headers, msg]);
}
