// The `batv:` section: signing the envelope sender of outgoing mail and
// refusing bounces to signing addresses that carry no valid tag
// (docs/batv.md). Off unless enabled.

import { z } from 'zod';
import { parseListenAddress } from './address.js';

const domain = z
  .string()
  .regex(/^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$/, { message: 'expected a domain name' })
  .transform((d) => d.toLowerCase());

export const batvSchema = z
  .strictObject({
    enabled: z.boolean().default(false),
    /** Domains whose senders are signed, and whose bounces must carry a valid tag. */
    domains: z.array(domain).default([]),
    /**
     * Keys by number (0–9): the first signs, every one verifies. Rotate by putting a new key
     * first and keeping the old one for valid_days.
     */
    keys: z
      .array(z.strictObject({ id: z.number().int().min(0).max(9), secret_file: z.string().min(1) }))
      .max(10)
      .default([]),
    /** A tag is valid this many days after the mail was sent. */
    valid_days: z.number().int().min(1).max(30).default(7),
    /** Postfix socketmap (sender_canonical_maps / recipient_canonical_maps) listener; null = none. */
    listen: z
      .string()
      .refine((s) => parseListenAddress(s) !== undefined, { message: 'expected host:port (e.g. 127.0.0.1:10041)' })
      .nullable()
      .default(null),
  })
  .superRefine((b, ctx) => {
    const ids = b.keys.map((k) => k.id);
    if (new Set(ids).size !== ids.length) ctx.addIssue({ code: 'custom', path: ['keys'], message: 'a key number is used twice' });
    if (b.enabled && b.keys.length === 0) ctx.addIssue({ code: 'custom', path: ['keys'], message: 'batv.enabled needs at least one key ({id: 0, secret_file: …})' });
    if (b.enabled && b.domains.length === 0) ctx.addIssue({ code: 'custom', path: ['domains'], message: 'batv.enabled needs the domains whose senders are signed' });
  });

export type BatvConfig = z.output<typeof batvSchema>;
