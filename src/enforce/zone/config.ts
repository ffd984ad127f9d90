// The `zone:` section of the config: frontline's own DNSBL and DNSWL zone
// (docs/enforce.md, "The DNSBL and DNSWL zone"). Off until `listen` is set:
// a DNS server nobody asked for is one more thing facing the network.

import { z } from 'zod';
import { networkSchema, parseListenAddress } from '../../config/address.js';
import { isValidHostname } from '../../checks/hostname.js';

/** `null` (an empty YAML section) means "all defaults". */
function section<T extends z.ZodType>(schema: T) {
  return z.preprocess((v) => (v === null ? undefined : v), schema.prefault({} as z.input<T>));
}

const posInt = z.number().int().positive();
const nonNegInt = z.number().int().nonnegative();

const listenAddress = z.string().refine((s) => parseListenAddress(s) !== undefined, {
  message: 'expected host:port (e.g. 127.0.0.1:5353 or [::1]:5353)',
});

const zoneName = z
  .string()
  .refine((s) => isValidHostname(s.replace(/\.$/, '')) && s.replace(/\.$/, '').includes('.'), { message: 'expected a DNS name with at least two labels (e.g. bl.example.internal)' })
  .transform((s) => s.replace(/\.$/, '').toLowerCase());

const hostName = z
  .string()
  .refine((s) => isValidHostname(s.replace(/\.$/, '')), { message: 'expected a host name (e.g. ns1.example.internal)' })
  .transform((s) => s.replace(/\.$/, '').toLowerCase());

/** The store's list-name rule. */
const listName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, { message: "expected a list name: letters, digits, '_', '.', '-' (at most 64)" });

export const zoneSchema = z
  .strictObject({
    /** host:port (or a list of them) the zone answers on, UDP and TCP; null = no zone server. */
    listen: z.union([listenAddress, z.array(listenAddress).min(1)]).nullable().default(null).transform((v) => (v === null ? [] : Array.isArray(v) ? v : [v])),
    /** The block list zone: bans, the lists in bl_lists, spamtrap hits. */
    bl_name: zoneName.default('bl.frontline.internal'),
    /** The allow list zone: the lists in wl_lists; null = none. */
    wl_name: zoneName.nullable().default('wl.frontline.internal'),
    /** Store ip lists (and config `lists:` of type ip with the same name) listed in the block zone. */
    bl_lists: z.array(listName).default(['deny']),
    /** Lists served in the allow zone; null = allow, the SPF-walked senders' list and the correspondents' list. */
    wl_lists: z.array(listName).nullable().default(null),
    /** Who may query; null = loopback and my_networks. Others are answered REFUSED. */
    allow_from: z.array(networkSchema).nullable().default(null),
    /** TTL of a listing (kept below the time the listing has left). */
    ttl_s: nonNegInt.max(86400).default(300),
    /** TTL of NXDOMAIN answers (the SOA minimum): how long a resolver may remember "not listed". */
    negative_ttl_s: nonNegInt.max(86400).default(30),
    /** The apex's NS (and SOA primary) name; null = this host's name. */
    ns: hostName.nullable().default(null),
    /** The SOA's responsible mailbox as a name (hostmaster.example.org); null = hostmaster.<zone>. */
    hostmaster: hostName.nullable().default(null),
    /** Answers per second to one client address over UDP (IPv6: its /56); 0 = no limit. */
    rate_limit: section(
      z.strictObject({
        per_s: nonNegInt.default(1000),
        burst: posInt.default(2000),
        /** Of the answers over the limit, every N-th is sent as an empty truncated reply (the client may retry over TCP); 0 = drop all. */
        slip: nonNegInt.default(2),
      }),
    ),
    tcp: section(
      z.strictObject({
        max_connections: posInt.default(64),
        idle_timeout_s: posInt.default(10),
      }),
    ),
  })
  .superRefine((z, ctx) => {
    const bl = z.bl_name;
    const wl = z.wl_name;
    if (wl !== null && (wl === bl || wl.endsWith(`.${bl}`) || bl.endsWith(`.${wl}`))) {
      ctx.addIssue({ code: 'custom', path: ['wl_name'], message: `the allow zone and the block zone must not contain each other (${bl}, ${wl})` });
    }
  });

export type ZoneConfig = z.output<typeof zoneSchema>;
