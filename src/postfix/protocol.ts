// The Postfix policy delegation protocol (SMTPD_POLICY_README): a request is
// `name=value` lines ending in an empty line; the answer is `action=...`
// followed by an empty line. Many requests travel over one connection.
//
// The parser is incremental (bytes may arrive split anywhere) and bounded:
// a line, a request and its attribute count all have limits. A request that
// breaks one is skipped up to its terminating empty line and reported as
// invalid, so the connection stays in step with Postfix; a peer that keeps
// sending without ever ending the request is cut off.

/** Attributes Postfix sends (2.1 … 3.8); every attribute is kept, known or not. */
export const POLICY_ATTRIBUTES = [
  'request',
  'protocol_state',
  'protocol_name',
  'helo_name',
  'queue_id',
  'sender',
  'recipient',
  'recipient_count',
  'client_address',
  'client_name',
  'reverse_client_name',
  'instance',
  'sasl_method',
  'sasl_username',
  'sasl_sender',
  'size',
  'ccert_subject',
  'ccert_issuer',
  'ccert_fingerprint',
  'ccert_pubkey_fingerprint',
  'encryption_protocol',
  'encryption_cipher',
  'encryption_keysize',
  'etrn_domain',
  'stress',
  'client_port',
  'policy_context',
  'server_address',
  'server_port',
  'compatibility_level',
  'mail_version',
] as const;

export type PolicyAttributes = Record<string, string>;

export type ProblemKind = 'malformed-line' | 'line-too-long' | 'too-many-attributes' | 'request-too-large';

export type ParseEvent =
  | { kind: 'request'; attrs: PolicyAttributes; bytes: number }
  /** A complete but unusable request: answer it (to stay in step), log the problem. */
  | { kind: 'invalid'; problem: ProblemKind; detail: string; bytes: number }
  /** The peer sent more than `maxDiscardBytes` of a bad request without ending it: close. */
  | { kind: 'abort'; problem: ProblemKind; detail: string };

export interface ParserLimits {
  /** Longest accepted line, bytes without the newline. Default 8192 (never more than maxRequestBytes). */
  maxLineBytes?: number;
  /** Most attributes in one request. Default 128 (Postfix 3.8 sends about 32). */
  maxAttributes?: number;
  /** Most bytes in one request, newlines included. Default 16384. */
  maxRequestBytes?: number;
  /** Bytes of a bad request skipped while looking for its end before giving up. Default 1 MiB. */
  maxDiscardBytes?: number;
}

// Chunks are decoded as latin1 — one character per byte — so positions and
// limits count bytes, and a UTF-8 sequence split across chunks stays intact;
// values with non-ASCII bytes are re-decoded as UTF-8.
const CR = '\r';
const ATTR_NAME = /^[A-Za-z0-9_.-]+$/;
const NON_ASCII = /[^\x00-\x7f]/;
/** The attributes Postfix sends (3.8): valid names, no need to test them against ATTR_NAME. */
const KNOWN_NAMES: ReadonlyMap<string, string> = new Map(
  [
    'request', 'protocol_state', 'protocol_name', 'helo_name', 'queue_id', 'sender', 'recipient', 'recipient_count',
    'client_address', 'client_name', 'client_port', 'reverse_client_name', 'instance', 'sasl_method', 'sasl_username',
    'sasl_sender', 'size', 'ccert_subject', 'ccert_issuer', 'ccert_fingerprint', 'ccert_pubkey_fingerprint',
    'encryption_protocol', 'encryption_cipher', 'encryption_keysize', 'etrn_domain', 'stress', 'server_address',
    'server_port', 'policy_context', 'compatibility_level', 'mail_version',
  ].map((n) => [n, n]),
);

/**
 * The known attribute that followed each known attribute last time ('' for
 * the first of a request), shared by every parser. A client sends its
 * attributes in one fixed order (Postfix's is in its source), so after its
 * first request a line is usually matched against the guess with one
 * startsWith: no slice of the name, no hashing it for a lookup, and the
 * object key is the known name's own string. Bounded: only known names are
 * learned (at most 32 entries).
 */
const FOLLOWS = new Map<string, string>();
const EQUALS = 0x3d;

export class RequestParser {
  private readonly maxLine: number;
  private readonly maxAttrs: number;
  private readonly maxRequest: number;
  private readonly maxDiscard: number;

  /** Bytes (latin1) of an unfinished line carried over from the previous chunk. */
  private partial = '';
  private attrs: PolicyAttributes = {};
  private attrCount = 0;
  private requestBytes = 0;
  /** The first problem of the current request; once set, its lines are skipped. */
  private problem: { kind: ProblemKind; detail: string } | null = null;
  /** While skipping: whether the next byte starts a line (an empty line ends the request). */
  private atLineStart = true;
  private discarded = 0;
  private aborted = false;
  /** The chunk being parsed has only ASCII bytes: no value needs re-decoding. */
  private ascii = true;
  /** The known name of the request's previous attribute ('' before the first, undefined after an unknown one). */
  private prev: string | undefined = '';

  constructor(limits: ParserLimits = {}) {
    this.maxRequest = limits.maxRequestBytes ?? 16384;
    this.maxLine = Math.min(limits.maxLineBytes ?? 8192, this.maxRequest);
    this.maxAttrs = limits.maxAttributes ?? 128;
    this.maxDiscard = limits.maxDiscardBytes ?? 1 << 20;
  }

  /** Feed bytes; returns the requests (and problems) they complete, in order. */
  push(chunk: Buffer): ParseEvent[] {
    const events: ParseEvent[] = [];
    if (this.aborted) return events;
    const data = this.partial + chunk.toString('latin1');
    this.partial = '';
    // One test for the whole chunk instead of one per value: requests are nearly always ASCII.
    this.ascii = !NON_ASCII.test(data);
    let pos = 0;
    while (pos < data.length) {
      if (this.problem) {
        pos = this.skip(data, pos, events);
        if (this.aborted) return events;
        continue;
      }
      const nl = data.indexOf('\n', pos);
      if (nl < 0) {
        if (data.length - pos > this.maxLine) {
          this.fail('line-too-long', `line longer than ${this.maxLine} bytes`);
          this.atLineStart = false;
          this.countDiscard(data.length - pos, events);
          return events;
        }
        this.partial = data.slice(pos);
        return events;
      }
      this.line(data, pos, nl, events);
      pos = nl + 1;
    }
    return events;
  }

  /** Handle one complete line data[start, nl). */
  private line(data: string, start: number, nl: number, events: ParseEvent[]): void {
    let end = nl;
    if (end > start && data[end - 1] === CR) end--;
    const length = nl - start;
    if (end === start) {
      // An empty line ends a request; stray empty lines between requests are ignored.
      if (this.attrCount > 0) {
        events.push({ kind: 'request', attrs: this.attrs, bytes: this.requestBytes + 1 });
        this.reset();
      }
      return;
    }
    this.requestBytes += length + 1;
    if (length > this.maxLine) return this.fail('line-too-long', `line longer than ${this.maxLine} bytes`);
    if (this.requestBytes > this.maxRequest) return this.fail('request-too-large', `request larger than ${this.maxRequest} bytes`);
    if (++this.attrCount > this.maxAttrs) return this.fail('too-many-attributes', `more than ${this.maxAttrs} attributes`);
    const prev = this.prev;
    const guess = prev === undefined ? undefined : FOLLOWS.get(prev);
    let name: string;
    let eq: number;
    if (guess !== undefined && data.startsWith(guess, start) && data.charCodeAt(start + guess.length) === EQUALS && start + guess.length < end) {
      name = guess;
      eq = start + guess.length;
      this.prev = guess;
    } else {
      eq = data.indexOf('=', start);
      if (eq < 0 || eq >= end || eq === start) {
        return this.fail('malformed-line', `not name=value: ${printable(data.slice(start, Math.min(end, start + 64)))}`);
      }
      const given = data.slice(start, eq);
      const known = KNOWN_NAMES.get(given);
      if (known === undefined && !ATTR_NAME.test(given)) return this.fail('malformed-line', `bad attribute name: ${printable(given.slice(0, 64))}`);
      name = known ?? given;
      if (prev !== undefined && known !== undefined) FOLLOWS.set(prev, known);
      this.prev = known;
    }
    const raw = data.slice(eq + 1, end);
    this.attrs[name] = !this.ascii && NON_ASCII.test(raw) ? Buffer.from(raw, 'latin1').toString('utf8') : raw;
  }

  /** Skip a bad request's bytes up to and including its empty line. Returns the new position. */
  private skip(data: string, pos: number, events: ParseEvent[]): number {
    let p = pos;
    while (p < data.length) {
      const nl = data.indexOf('\n', p);
      if (nl < 0) {
        this.countDiscard(data.length - p, events);
        if (data.length > p) this.atLineStart = false;
        return data.length;
      }
      const empty = nl === p ? this.atLineStart : nl === p + 1 && data[p] === CR && this.atLineStart;
      this.countDiscard(nl + 1 - p, events);
      if (this.aborted) return data.length;
      p = nl + 1;
      if (empty) {
        const problem = this.problem!;
        events.push({ kind: 'invalid', problem: problem.kind, detail: problem.detail, bytes: this.requestBytes + this.discarded });
        this.reset();
        return p;
      }
      this.atLineStart = true;
    }
    return p;
  }

  private countDiscard(n: number, events: ParseEvent[]): void {
    this.discarded += n;
    if (this.discarded > this.maxDiscard && !this.aborted) {
      const problem = this.problem!;
      events.push({ kind: 'abort', problem: problem.kind, detail: `${problem.detail}; no end of request within ${this.maxDiscard} bytes` });
      this.aborted = true;
      this.partial = '';
    }
  }

  private fail(kind: ProblemKind, detail: string): void {
    this.problem = { kind, detail };
    this.atLineStart = true;
  }

  private reset(): void {
    this.prev = '';
    this.attrs = {};
    this.attrCount = 0;
    this.requestBytes = 0;
    this.problem = null;
    this.atLineStart = true;
    this.discarded = 0;
  }

  /** Bytes held for an unfinished line (tests and limits). */
  get bufferedBytes(): number {
    return this.partial.length;
  }
}

/** One answer on the wire: `action=<action>` and the empty line. */
export function formatReply(action: string): string {
  return `action=${action}\n\n`;
}

/** A request on the wire (the client side: tests, bench). Values must not contain newlines. */
export function formatRequest(attrs: PolicyAttributes): string {
  let out = '';
  for (const [name, value] of Object.entries(attrs)) out += `${name}=${value}\n`;
  return `${out}\n`;
}

/** Parse a server's answers (client side). Returns the actions and the unconsumed rest. */
export function parseReplies(text: string): { actions: string[]; rest: string } {
  const actions: string[] = [];
  let rest = text;
  for (let end = rest.indexOf('\n\n'); end >= 0; end = rest.indexOf('\n\n')) {
    const block = rest.slice(0, end);
    rest = rest.slice(end + 2);
    const line = block.split('\n').find((l) => l.startsWith('action='));
    actions.push(line === undefined ? '' : line.slice('action='.length));
  }
  return { actions, rest };
}

function printable(s: string): string {
  return s.replace(/[^\x20-\x7e]/g, '?');
}
