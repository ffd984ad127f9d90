// The `milter:` section: the Sendmail milter frontend (docs/milter.md). Off
// until milter.listen (or `frontline serve --milter-listen`) is set.

import { z } from 'zod';
import { parseMilterAddress } from '../milter/listen-address.js';

const posInt = z.number().int().positive();

export const milterSchema = z.strictObject({
  /** `inet:127.0.0.1:8891` or `unix:/run/frontline/milter.sock`; null = no milter. */
  listen: z
    .string()
    .refine((s) => parseMilterAddress(s) !== undefined, { message: 'expected inet:host:port (e.g. inet:127.0.0.1:8891) or unix:/absolute/path' })
    .nullable()
    .default(null),
  /** Body bytes read per message; the rest is skipped and body signatures (DKIM, ARC) count as not verified. */
  max_body: posInt.default(10 * 1024 * 1024),
  /** Simultaneous MTA connections (Postfix opens one per smtpd process); one more is closed at once. */
  max_connections: posInt.default(200),
  /** Close an MTA connection silent this long (an SMTP session may idle between commands). */
  idle_timeout_s: posInt.default(3600),
  /** A decision taking longer is answered 451 4.3.0; below Postfix's milter_command_timeout (30 s). */
  decision_timeout_ms: posInt.default(25_000),
});

export type MilterConfig = z.output<typeof milterSchema>;
