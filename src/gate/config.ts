// The `gate:` section of the config file: where the SMTP gate listens, which
// MTA it fronts, its door tests and every limit on what a client controls.
// Every key has a default, so `gate: {}` (or no section) is valid; the gate is
// only started when `listen` and `backend` are set (or given as flags).

import { z } from 'zod';
import { networkSchema, parseListenAddress } from '../config/address.js';

/** `null` (an empty YAML section) means "all defaults", as in the main schema. */
function section<T extends z.ZodType>(schema: T) {
  return z.preprocess((v) => (v === null ? undefined : v), schema.prefault({} as z.input<T>));
}

const hostPort = z.string().refine((s) => parseListenAddress(s) !== undefined, {
  message: 'expected host:port (e.g. 127.0.0.1:25 or [::1]:25)',
});

const network = networkSchema;

/** What a door test does to a client that fails it (postscreen's vocabulary). */
export const doorActionSchema = z.enum(['ignore', 'enforce', 'drop']);
export type DoorAction = z.infer<typeof doorActionSchema>;

const positiveInt = z.number().int().positive();
const nonNegativeInt = z.number().int().nonnegative();

export const gateLimitsSchema = z
  .object({
    /** Longest command line, without CRLF (RFC 5321 says 512; extensions need more). */
    command_line: positiveInt.default(2048),
    /** Longest text line in DATA, without CRLF (RFC 5322: 998). */
    data_line: positiveInt.default(998),
    /** Commands per session before 421. */
    commands: positiveInt.default(1000),
    /** Errors (5xx/4xx replies to bad commands) per session before 421. */
    errors: positiveInt.default(20),
    /** Recipients per message; more get 452 4.5.3. */
    recipients: positiveInt.default(100),
    /** Message size in bytes, announced as SIZE and enforced (552 5.3.4). */
    message_size: positiveInt.default(10_240_000),
    /** MiB of message bytes all sessions together may hold in memory (DATA to the backend's answer); beyond it 452 4.3.1. */
    memory_mb: positiveInt.default(256),
    /** Seconds to wait for each command line. */
    command_timeout_s: positiveInt.default(300),
    /** Seconds for the whole DATA content, from 354 to the final dot. */
    data_timeout_s: positiveInt.default(600),
    /** Client connections at once, overall. */
    connections: positiveInt.default(2000),
    /** Client connections at once from one IP. */
    connections_per_ip: positiveInt.default(20),
    /** New connections per client IP per minute (0 = no limit). */
    connections_per_ip_per_minute: nonNegativeInt.default(120),
    /** Client IPs/CIDRs exempt from the per-IP limits; null = the top-level my_networks. */
    exempt: z.array(network).nullable().default(null),
    /**
     * The per-client limits (connections, connection rate, tarpit slots) and the
     * trap's ban count an IPv6 client by its /ipv6_prefix network: one host
     * holds a whole /64 and can take a new address for every connection.
     */
    ipv6_prefix: z.number().int().min(16).max(128).default(64),
    /** The same for IPv4 (32 = each address on its own). */
    ipv4_prefix: z.number().int().min(8).max(32).default(32),
  })
  .strict();

export const gateOverloadSchema = z
  .object({
    /** The gate is overloaded when connections exceed this fraction of limits.connections. */
    fraction: z.number().gt(0).max(1).default(0.8),
    command_timeout_s: positiveInt.default(10),
    data_timeout_s: positiveInt.default(60),
    greet_wait_ms: nonNegativeInt.default(2000),
  })
  .strict();

export const gateDoorSchema = z
  .object({
    /** Client talks before the `220 ` line. */
    pregreet: doorActionSchema.default('enforce'),
    /** Client sends several commands at once when PIPELINING was not offered (or after a command that must end a group). */
    pipelining: doorActionSchema.default('enforce'),
    /** An HTTP request line, CONNECT, `Host:` … on the SMTP port. */
    non_smtp: doorActionSchema.default('drop'),
    /** A line ended by a bare LF instead of CRLF. */
    bare_lf: doorActionSchema.default('ignore'),
  })
  .strict();

export const gateTarpitSchema = z
  .object({
    /** Clients tarpitted at once; over the cap a tarpit verdict gets its plain reply. */
    max_clients: positiveInt.default(50),
    /** Milliseconds between the bytes of each reply line sent to a tarpitted client (spamd's stutter). */
    stutter_ms: nonNegativeInt.default(500),
    /** Cap on the time one reply line may take, in ms; the rest is sent at once. */
    max_line_ms: positiveInt.default(30_000),
    /** Slots one client (address or IPv6 prefix, as limits.ipv*_prefix) may hold: one /64 cannot take them all. */
    max_per_client: positiveInt.default(5),
  })
  .strict();

export const gateBackendSchema = z
  .object({
    connect_timeout_ms: positiveInt.default(10_000),
    /** Seconds to wait for the backend's reply to a command. */
    command_timeout_s: positiveInt.default(120),
    /** Seconds to wait for the backend's reply after the final dot. */
    data_timeout_s: positiveInt.default(600),
    /** While a client sends DATA, a NOOP every this many seconds keeps the backend session alive (0 = never). */
    keepalive_s: nonNegativeInt.default(60),
    /** Send the message as one BDAT chunk when the backend announces CHUNKING (saves the 354 round trip). */
    chunking: z.boolean().default(true),
  })
  .strict();

export const gateTlsSchema = z
  .object({
    cert_file: z.string().min(1),
    key_file: z.string().min(1),
  })
  .strict();

export const gateSchema = z
  .object({
    /** Where the gate listens for clients ("host:port"); null = no gate. */
    listen: hostPort.nullable().default(null),
    /** The MTA behind the gate ("host:port"). */
    backend: hostPort.nullable().default(null),
    /** Name in the banner and EHLO reply; null = os.hostname(). */
    hostname: z.string().min(1).nullable().default(null),
    /** Text after the name in the banner. */
    banner: z.string().default('ESMTP'),
    /** Milliseconds between the `220-` teaser and the `220 ` line; a client that talks in between pregreets. 0 = no teaser. */
    greet_wait_ms: nonNegativeInt.default(6000),
    /** Seconds a client that passed the door tests is remembered (and skips them). */
    door_cache_ttl_s: nonNegativeInt.default(86_400),
    door: section(gateDoorSchema),
    /** Offer PIPELINING in the EHLO reply. */
    pipelining: z.boolean().default(true),
    /** Extra EHLO keywords offered as-is (the MAIL/RCPT parameters go to the backend unchanged). */
    extensions: z.array(z.string().regex(/^[A-Z0-9][A-Z0-9-]*( .*)?$/)).default(['8BITMIME', 'ENHANCEDSTATUSCODES', 'SMTPUTF8']),
    /** AUTH: refuse it, or pass the dialogue through to the backend (which then decides relaying). */
    auth: z.enum(['refuse', 'passthrough']).default('refuse'),
    /** SASL mechanisms offered when auth is passthrough. */
    auth_mechanisms: z.array(z.string().regex(/^[A-Z0-9_-]+$/)).default(['PLAIN', 'LOGIN']),
    /** Offer AUTH only after STARTTLS (passwords never cross the network in clear). */
    auth_requires_tls: z.boolean().default(true),
    /** STARTTLS certificate and key (PEM files); null = no STARTTLS. */
    tls: gateTlsSchema.nullable().default(null),
    /** A listener where every client is a scanner: logged, answered 554, reported to onTrap. */
    trap_listen: hostPort.nullable().default(null),
    /** Text of the trap listener's 554 reply. */
    trap_text: z.string().default('5.7.1 Service unavailable; this address receives no mail'),
    /**
     * Peers allowed to send XFORWARD (Postfix's smtpd_authorized_xforward_hosts):
     * a Postfix smtpd that uses the gate as its smtpd_proxy_filter. The gate then
     * judges the client Postfix forwards, skips the door tests and the per-IP limits
     * for the peer itself, and announces XFORWARD to it.
     */
    xforward_hosts: z.array(network).default([]),
    /** Peers allowed to send a PROXY protocol (v1/v2) header first; others may not. */
    proxy_protocol: section(z.object({ trusted: z.array(network).default([]) }).strict()),
    /**
     * How the backend learns the real client. `xclient`: XCLIENT is required
     * (the backend then judges relaying for the real client); a backend that
     * does not accept it gets no mail (451 4.3.0 at MAIL) and an error is
     * logged, never a relay as the gate itself. `xforward`: XFORWARD, for logs
     * only: the backend judges the gate's own address. `none`: nothing (the
     * gate adds a Received line); the backend judges the gate's address.
     */
    backend_identity: z.enum(['xclient', 'xforward', 'none']).default('xclient'),
    /**
     * The gate in the outbound path too (BATV, docs/batv.md; needs batv.enabled):
     * the envelope sender of mail from authenticated or my_networks clients in
     * batv.domains is signed before it goes to the backend, and a recipient
     * carrying one of our tags reaches the backend without it.
     */
    outbound: z.boolean().default(false),
    /**
     * Seconds between relay self-tests (xclient only): the gate asks the
     * backend, as the outside client 192.0.2.1, to take
     * RCPT TO:<relay-test@example.invalid>; a 2xx means it relays for anyone,
     * and mail is refused (451 4.3.0) until a later test is refused.
     */
    relay_test_interval_s: positiveInt.default(3600),
    limits: section(gateLimitsSchema),
    overload: section(gateOverloadSchema),
    tarpit: section(gateTarpitSchema),
    backend_options: section(gateBackendSchema),
  })
  .strict();

export type GateConfig = z.infer<typeof gateSchema>;
/** What an admin may write (every key optional). */
export type GateConfigInput = z.input<typeof gateSchema>;

/** The gate section with every default filled in. */
export function gateConfig(input: GateConfigInput | GateConfig | undefined = {}): GateConfig {
  return gateSchema.parse(input ?? {});
}
