// The `web:` section of the config file: where `frontline serve` serves the
// dashboard and /metrics, how it authenticates, and the limits on what a
// client of it controls. The listener is on by default on loopback only; any
// other address needs `auth` (checked by requireWebAuth when serve starts).

import { z } from 'zod';
import { parseListenAddress } from '../../config/address.js';

/** `null` (an empty YAML section) means "all defaults", as in the main schema. */
function section<T extends z.ZodType>(schema: T) {
  return z.preprocess((v) => (v === null ? undefined : v), schema.prefault({} as z.input<T>));
}

/** "off" turns the listener off (the flag and FRONTLINE_WEB_LISTEN take the same word). */
export const WEB_OFF = 'off';

const listen = z.union([z.null(), z.literal(WEB_OFF)]).or(
  z.string().refine((s) => parseListenAddress(s) !== undefined, {
    message: 'expected host:port (e.g. 127.0.0.1:8025 or [::1]:8025), or off',
  }),
);

/** PHC-style scrypt string, as `frontline web hash-password` prints it. */
export const PASSWORD_HASH_RE = /^\$scrypt\$ln=(\d{1,2}),r=(\d{1,2}),p=(\d{1,2})\$([A-Za-z0-9+/]+={0,2})\$([A-Za-z0-9+/]+={0,2})$/;

const authSchema = z.union(
  [
    z.strictObject({
      password_hash: z.string().regex(PASSWORD_HASH_RE, {
        message: 'expected a scrypt hash $scrypt$ln=N,r=R,p=P$salt$hash (make one with `frontline web hash-password`)',
      }),
    }),
    z.strictObject({ token_file: z.string().min(1) }),
  ],
  { message: 'expected {password_hash: "$scrypt$…"} or {token_file: /path}' },
);

const posInt = z.number().int().positive();

export const webSchema = z.strictObject({
  /** host:port of the dashboard and /metrics; null or off = no web listener. */
  listen: listen.default('127.0.0.1:8025'),
  /** Required on any address that is not loopback; null = no authentication (loopback only). */
  auth: authSchema.nullable().default(null),
  /** GET /metrics (docs/metrics.md); false also turns off the instrumentation that costs (per-check timing). */
  metrics: z.boolean().default(true),
  limits: section(
    z.strictObject({
      /** Largest request body (forms) in bytes; more gets 413. */
      body_bytes: posInt.default(65536),
      /** Seconds a client may take to send a whole request. */
      request_timeout_s: posInt.default(30),
      /** Seconds an idle keep-alive connection stays open. */
      keep_alive_s: posInt.default(5),
      /** Seconds from connect to the end of the request headers. */
      headers_timeout_s: posInt.default(10),
      /** Connections at once; more are refused. */
      connections: posInt.default(256),
    }),
  ),
});

export type WebConfig = z.output<typeof webSchema>;

/** The listen address, or undefined when the listener is off. */
export function webListenAddress(web: WebConfig): string | undefined {
  return web.listen === null || web.listen === WEB_OFF ? undefined : web.listen;
}
