// The `sasl_spread:` section: catching hacked accounts by how far one SASL
// user's mail spreads (client addresses, networks, countries, new
// recipients). Off unless enabled (docs/outbound.md).

import { z } from 'zod';

const nonNegInt = z.number().int().nonnegative();
const posInt = z.number().int().positive();

/** `null` (an empty YAML section) means "all defaults". */
function section<T extends z.ZodType>(schema: T) {
  return z.preprocess((v) => (v === null ? undefined : v), schema.prefault({} as z.input<T>));
}

export const saslSpreadSchema = z.strictObject({
  enabled: z.boolean().default(false),
  /** Client addresses, AS numbers and countries are counted over this sliding window, seconds. */
  window_s: posInt.max(30 * 86400).default(3600),
  /** A recipient is new while the user first wrote to it within this many seconds. */
  new_rcpt_window_s: posInt.max(30 * 86400).default(3600),
  /** A recipient stays known (not new) this many days after the user last wrote to it. */
  known_rcpt_days: posInt.max(365).default(30),
  /** Values kept per user and kind (memory bound; counts saturate here), at most 10000. */
  max_values: posInt.max(10_000).default(1000),
  /** The user is held (its mail deferred until `frontline user release`) once a count reaches its limit; 0 = that count holds nobody. */
  hold: section(
    z.strictObject({
      ips: nonNegInt.default(5),
      asns: nonNegInt.default(0),
      countries: nonNegInt.default(3),
      new_rcpts: nonNegInt.default(0),
    }),
  ),
});

export type SaslSpreadConfig = z.output<typeof saslSpreadSchema>;
