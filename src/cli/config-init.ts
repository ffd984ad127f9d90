// `frontline config init --domain D… [--hostname H] [--out FILE] [--force]`:
// a first config file for the admin's domains, commented, that `config check`
// accepts as written. It sets only what differs from the embedded defaults
// for a real installation and shows the next keys an admin usually turns to;
// frontline.example.yaml remains the reference for every key.

import { writeFileSync } from 'node:fs';
import type { Writable } from 'node:stream';
import { asciiDomain } from '../core/address.js';
import { isFqdn } from '../checks/hostname.js';
import { InputError } from './input-error.js';

export interface ConfigInitOptions {
  domain: string[];
  hostname?: string;
  out?: string;
  force?: boolean;
}

/** A domain as an admin types it (U-label or A-label) → its lower-case A-label form, or an InputError. */
function asciiName(what: string, name: string): string {
  const ascii = asciiDomain(name.trim());
  if (!isFqdn(ascii)) throw new InputError(`${what} "${name}" is not a domain name (e.g. example.com)`);
  return ascii;
}

/** The config text for these domains (A-labels) and this host name (null: decided at run time). */
export function renderConfig(domains: string[], hostname: string | null): string {
  const list = `[${domains.join(', ')}]`;
  const first = domains[0];
  return `# frontline configuration for ${domains.join(', ')}
# Written by \`frontline config init\`. Check it after every edit with
#   frontline config check /etc/frontline/frontline.yaml
# Every key left out takes its default; frontline.example.yaml (installed with
# the package) lists every key with its default, docs/config.md explains them.

listen:
  # The Postfix policy server (check_policy_service inet:127.0.0.1:10040).
  policy: 127.0.0.1:10040
  # Or a unix socket inside Postfix's queue directory:
  # policy_socket: /var/spool/postfix/private/frontline

# State (SQLite: bans, lists, greylisting, the decision log). The systemd unit
# in contrib/systemd gives the service this directory (StateDirectory=frontline).
data_dir: /var/lib/frontline

log:
  level: info
  # null = JSON lines on standard output (the journal, under systemd).
  file: null

dns:
  # [] = the nameservers of /etc/resolv.conf. A local validating resolver
  # (unbound) is best: DNSBLs refuse queries from large public resolvers.
  servers: []

# Clients here are accepted by the \`my-networks\` rule. Add the networks of
# your own users and servers (they should authenticate or be here).
my_networks:
  - 127.0.0.0/8
  - ::1/128

headers:
  # The authserv-id of Authentication-Results: this MX's name; null = the
  # host's name at run time. Downstream filters trust only results carrying it.
  authserv_id: ${hostname ?? 'null'}

# Addresses of ${first} that never receive mail: a message to one refuses the
# client (550 5.1.1) and bans it.
spamtraps: []
#  - never-used@${first}

# Named lists, used by the default policy when they exist (allow: accepted at
# once; deny: refused). Manage entries at run time with \`frontline list\`.
lists: {}
#  allow:
#    type: ip
#    entries: [192.0.2.10]
#  deny:
#    type: domain
#    entries: [.spammer.example]

checks:
  dnsbl:
    # DNS blocklists (e.g. zen.spamhaus.org, with your data query key if you
    # have one); a client listed by \`threshold\` zones is refused.
    zones: []

greylist:
  # Make new (client, sender, recipient) triplets retry once (450 4.7.1).
  enabled: false

intel:
  correspondents:
    # Your own domains are never learned as correspondents.
    ignore_domains: ${list}

# The SMTP gate on port 25 in front of your MTA (docs/gate.md), instead of or
# beside the policy server; contrib/postfix has the Postfix side.
# gate:
#   listen: 0.0.0.0:25
#   backend: 127.0.0.1:10025
#   hostname: ${hostname ?? `mx.${first}`}
`;
}

/** Writes the config (or prints it without --out); exit code 0, or 1 when the file exists and --force is not given. */
export function configInit(opts: ConfigInitOptions, out: Writable, err: Writable): number {
  if (opts.domain.length === 0) throw new InputError('config init needs at least one --domain (your mail domain, e.g. example.com)');
  const domains = [...new Set(opts.domain.map((d) => asciiName('--domain', d)))];
  const hostname = opts.hostname === undefined ? null : asciiName('--hostname', opts.hostname);
  const text = renderConfig(domains, hostname);
  if (opts.out === undefined) {
    out.write(text);
    return 0;
  }
  try {
    // 'wx' refuses an existing file in the same system call that creates it.
    writeFileSync(opts.out, text, { flag: opts.force ? 'w' : 'wx', mode: 0o640 });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') {
      err.write(`frontline: ${opts.out} exists; not overwritten (--force replaces it)\n`);
      return 1;
    }
    throw new InputError(`cannot write ${opts.out}: ${(e as Error).message}`);
  }
  err.write(`frontline: wrote ${opts.out} for ${domains.join(', ')}; check it with: frontline config check ${opts.out}\n`);
  return 0;
}
