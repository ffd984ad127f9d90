// Learning correspondents: the domains (and, in free-mail domains, the
// addresses) our own users write to. Seen from SASL-authenticated policy
// requests and from Postfix's `status=sent` log lines; counted, with an
// expiry that each new message moves on.

import type { Clock, Envelope, Stage } from '../../core/types.js';
import { isFqdn, normaliseName } from '../../checks/hostname.js';
import { FreeMailDomains } from './free-mail.js';
import type { Correspondent, CorrespondentKind, CorrespondentStore } from './store.js';

export const DEFAULT_CORRESPONDENT_TTL_S = 180 * 86400;

export interface CorrespondentKey {
  key: string;
  kind: CorrespondentKind;
  /** The address's domain, lower case. */
  domain: string;
}

/**
 * How an address is known: free-mail → the address (lower case, without a
 * `+extension`); anything else → its domain. Undefined for the null sender,
 * a bare local part, a domain that is not a host name, or an address literal.
 */
export function correspondentKey(address: string, freeMail: FreeMailDomains): CorrespondentKey | undefined {
  const a = address.trim().replace(/^<(.*)>$/, '$1');
  const at = a.lastIndexOf('@');
  if (at <= 0 || at === a.length - 1) return undefined;
  const domain = normaliseName(a.slice(at + 1));
  if (!isFqdn(domain)) return undefined;
  if (!freeMail.has(domain)) return { key: domain, kind: 'domain', domain };
  let local = a.slice(0, at).toLowerCase();
  const plus = local.indexOf('+');
  if (plus > 0 && !local.startsWith('"')) local = local.slice(0, plus);
  return { key: `${local}@${domain}`, kind: 'address', domain };
}

export interface LearnerOptions {
  store: CorrespondentStore;
  clock: Clock;
  /** Seconds a correspondent is remembered after the last message to it. Default 180 days. */
  ttlS?: number;
  freeMail?: FreeMailDomains;
  /** Our own domains (and their subdomains): never learned, mail among our users proves nothing. */
  ignoreDomains?: string[];
}

/** Postfix may ask about one recipient twice (a policy named in two restriction lists): count it once. */
const SEEN_CAP = 10_000;

export class CorrespondentLearner {
  readonly store: CorrespondentStore;
  readonly freeMail: FreeMailDomains;
  private readonly clock: Clock;
  private readonly ttlMs: number;
  private readonly ignore: Set<string>;
  private readonly seen = new Set<string>();

  constructor(opts: LearnerOptions) {
    this.store = opts.store;
    this.clock = opts.clock;
    this.freeMail = opts.freeMail ?? new FreeMailDomains();
    this.ttlMs = (opts.ttlS ?? DEFAULT_CORRESPONDENT_TTL_S) * 1000;
    this.ignore = new Set((opts.ignoreDomains ?? []).map(normaliseName));
  }

  keyOf(address: string): CorrespondentKey | undefined {
    return correspondentKey(address, this.freeMail);
  }

  private ignored(domain: string): boolean {
    for (let d = domain; ; ) {
      if (this.ignore.has(d)) return true;
      const dot = d.indexOf('.');
      if (dot < 0) return false;
      d = d.slice(dot + 1);
    }
  }

  /** One message from one of our users to `address`. Undefined when not learnable or ignored. */
  async learnRecipient(address: string): Promise<Correspondent | undefined> {
    const k = this.keyOf(address);
    if (!k || this.ignored(k.domain)) return undefined;
    const now = this.clock.now();
    return this.store.record(k.key, k.kind, now, now + this.ttlMs);
  }

  /**
   * Learn from a policy request of an authenticated client (`env.saslUser`
   * set; anything else is ignored). At `rcpt` the current (last) recipient
   * is learned — call it once per RCPT; at any other stage, or with no
   * stage, every recipient of the envelope.
   */
  async learnFromAuthenticated(env: Envelope, stage?: Stage): Promise<Correspondent[]> {
    const out: Correspondent[] = [];
    for (const rcpt of this.newRecipients(env, stage)) {
      const c = await this.learnRecipient(rcpt);
      if (c) out.push(c);
    }
    return out;
  }

  /**
   * learnFromAuthenticated for the policy path, where nobody waits for the
   * answer: counted through the store's note() when it has one, so nothing
   * of the decision is kept until the store commits; a failure goes to `onError`.
   */
  noteFromAuthenticated(env: Envelope, stage: Stage | undefined, onError: (err: unknown) => void): void {
    for (const rcpt of this.newRecipients(env, stage)) {
      const k = this.keyOf(rcpt);
      if (!k || this.ignored(k.domain)) continue;
      const now = this.clock.now();
      if (this.store.note) this.store.note(k.key, k.kind, now, now + this.ttlMs, onError);
      else this.store.record(k.key, k.kind, now, now + this.ttlMs).catch(onError);
    }
  }

  /** The recipients of an authenticated envelope to learn (see learnFromAuthenticated), each counted once per session. */
  private newRecipients(env: Envelope, stage: Stage | undefined): readonly string[] {
    if (!env.saslUser || env.rcpts.length === 0) return [];
    const rcpts = stage === 'rcpt' ? env.rcpts.slice(-1) : env.rcpts;
    if (!env.sessionId) return rcpts;
    return rcpts.filter((rcpt) => {
      const mark = `${env.sessionId}\n${rcpt.toLowerCase()}`;
      if (this.seen.has(mark)) return false;
      this.seen.add(mark);
      if (this.seen.size > SEEN_CAP) this.seen.delete(this.seen.values().next().value as string);
      return true;
    });
  }

  /** Domains whose SPF to walk into the `correspondents` list: the per-domain ones seen at least `minCount` times. */
  async domainsToWalk(minCount = 1): Promise<string[]> {
    const all = await this.store.all(this.clock.now());
    return all
      .filter((c) => c.kind === 'domain' && c.count >= minCount)
      .map((c) => c.key)
      .sort();
  }
}
