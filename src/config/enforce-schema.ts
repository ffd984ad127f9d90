// The `enforce:` section: carrying the store's bans and lists out to other
// enforcers (docs/enforce.md). Kept apart from schema.ts, which includes it.

import { z } from 'zod';
import { feedSchema } from '../enforce/feed/config.js';

/** `null` (an empty YAML section) means "all defaults", as in the main schema. */
function section<T extends z.ZodType>(schema: T) {
  return z.preprocess((v) => (v === null ? undefined : v), schema.prefault({} as z.input<T>));
}

const posInt = z.number().int().positive();
const port = z.number().int().min(1).max(65535);

export const firewallSchema = z.strictObject({
  /** nft, ipset (+ iptables/ip6tables) or pf; none = frontline never touches a firewall. */
  backend: z.enum(['nft', 'ipset', 'pf', 'none']).default('none'),
  /** Full reconcile interval (s): rebuilds frontline's sets, repairing hand edits and drift. */
  reconcile_s: posInt.default(300),
  /** TCP destination ports dropped for a banned address; [] = every TCP port. */
  ports: z
    .array(port)
    .max(256)
    .default([])
    .refine((p) => new Set(p).size === p.length, { message: 'a port is listed twice' }),
  /** drop (silence) or reject (TCP reset). */
  action: z.enum(['drop', 'reject']).default('drop'),
  /** Store ip lists whose entries go into the allow set, accepted before any drop (and never dropped). */
  allow_lists: z
    .array(z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, { message: 'expected a list name (letters, digits, _ . -, at most 64)' }))
    .default(['allow']),
});

export const enforceSection = section(
  z.strictObject({
    firewall: section(firewallSchema),
    /** Ban feeds between servers that share no Redis (docs/enforce.md, "Feeds"). */
    feed: section(feedSchema),
  }),
);

export type FirewallConfig = z.output<typeof firewallSchema>;
