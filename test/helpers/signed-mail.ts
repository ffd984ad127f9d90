// Messages signed in the test itself: a generated key, the DKIM TXT record
// that publishes it, and mailauth's signer and ARC sealer. No fixture keys on
// disk, no network.

import { createHash, generateKeyPairSync, sign as cryptoSign } from 'node:crypto';
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

/** Relaxed header canonicalisation of one field (RFC 6376 §3.4.2), without the CRLF. */
function relaxedField(name: string, value: string): string {
  return `${name.toLowerCase().trim()}:${value.replace(/\r\n(?=[ \t])/g, '').replace(/[ \t]+/g, ' ').trim()}`;
}

/** Relaxed body canonicalisation (RFC 6376 §3.4.4): an empty body stays empty. */
function relaxedBody(body: string): string {
  const lines = body.split('\r\n').map((l) => l.replace(/[ \t]+/g, ' ').replace(/ $/, ''));
  while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  return lines.length === 0 ? '' : `${lines.join('\r\n')}\r\n`;
}

/**
 * A DKIM-Signature (relaxed/relaxed) written here rather than by mailauth, with
 * any tags the test wants (i=, q=, h=, a=, c=…), cryptographically valid for
 * the message as given: the attack messages of RFC 6376's MUSTs that mailauth
 * would let pass. `tags` go in after v=, a=, c=, d=, s= and before h=, bh=, b=;
 * a tag given replaces the default. A message without a header/body separator
 * has an empty body. Returns the signed message.
 */
export function signWithTags(
  msg: Buffer,
  opts: { domain: string; selector?: string; key: TestKey; tags?: Record<string, string>; signed?: string[]; hash?: 'sha256' | 'sha1' },
): Buffer {
  const text = msg.toString('latin1');
  const sep = text.indexOf('\r\n\r\n');
  const headerText = sep < 0 ? text.replace(/\r\n$/, '') : text.slice(0, sep);
  const body = sep < 0 ? '' : text.slice(sep + 4);
  const fields = headerText.split(/\r\n(?![ \t])/).map((f) => {
    const colon = f.indexOf(':');
    return { name: f.slice(0, colon), value: f.slice(colon + 1) };
  });
  const hash = opts.hash ?? 'sha256';
  const signed = opts.signed ?? ['from', 'to', 'subject', 'date', 'message-id'];
  const tags: Record<string, string> = {
    v: '1',
    a: `${opts.key.type}-${hash}`,
    c: 'relaxed/relaxed',
    d: opts.domain,
    s: opts.selector ?? 's',
    t: '1704067200',
    ...opts.tags,
    h: signed.join(':'),
    bh: createHash(hash).update(relaxedBody(body), 'latin1').digest('base64'),
  };
  if (opts.tags?.h) tags.h = opts.tags.h;
  const unsigned = `${Object.entries(tags)
    .map(([k, v]) => `${k}=${v}`)
    .join('; ')}; b=`;
  // Each name in h= takes the last unused instance of the field (§5.4.2).
  const used = new Set<number>();
  const lines: string[] = [];
  for (const name of colonListOf(tags.h)) {
    for (let i = fields.length - 1; i >= 0; i--) {
      if (used.has(i) || fields[i].name.trim().toLowerCase() !== name) continue;
      used.add(i);
      lines.push(`${relaxedField(fields[i].name, fields[i].value)}\r\n`);
      break;
    }
  }
  lines.push(relaxedField('DKIM-Signature', unsigned));
  const data = Buffer.from(lines.join(''), 'latin1');
  const b =
    opts.key.type === 'ed25519'
      ? cryptoSign(null, createHash('sha256').update(data).digest(), opts.key.privateKey)
      : cryptoSign(hash === 'sha1' ? 'RSA-SHA1' : 'RSA-SHA256', data, opts.key.privateKey);
  return Buffer.concat([Buffer.from(`DKIM-Signature: ${unsigned}${b.toString('base64')}\r\n`, 'latin1'), msg]);
}

function colonListOf(h: string): string[] {
  return h
    .split(':')
    .map((x) => x.trim().toLowerCase())
    .filter(Boolean);
}

/** The header block alone, without the empty line or the body: a valid message (RFC 5322 §3.5). */
export function headersOnly(msg: Buffer): Buffer {
  const text = msg.toString('latin1');
  const sep = text.indexOf('\r\n\r\n');
  return Buffer.from(sep < 0 ? text : text.slice(0, sep + 2), 'latin1');
}
