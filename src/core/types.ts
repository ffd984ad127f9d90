// The types every room shares. Frontends turn a protocol into an Envelope;
// policy/ turns an Envelope into a Verdict; nothing below policy/ knows which
// frontend asked.

/** SMTP stages, in order. A rule decides at the earliest stage that has its data. */
export const STAGES = ['connect', 'helo', 'mail', 'rcpt', 'data', 'eom'] as const;
export type Stage = (typeof STAGES)[number];

export function stageIndex(s: Stage): number {
  return STAGES.indexOf(s);
}

export interface Envelope {
  /** Client IP as text; `::ffff:a.b.c.d` is already mapped back to `a.b.c.d`. */
  clientIp: string;
  /** Reverse name as the MTA saw it (Postfix `reverse_client_name`), if known. */
  clientPtr?: string;
  helo?: string;
  /** MAIL FROM address without brackets; `''` is the null sender; undefined = not yet seen. */
  from?: string;
  /** RCPT TO addresses seen so far; at `rcpt` stage the last one is the current one. */
  rcpts: string[];
  /** SASL login name, when the client authenticated. */
  saslUser?: string;
  /** Raw message (headers + body, CRLF) at `eom`. */
  message?: Buffer;
  /**
   * The body in `message` was cut at a size limit (milter.max_body): content
   * checks read what is there, but no signature over the body is verified.
   */
  messageTruncated?: boolean;
  serverAddress?: string;
  sessionId?: string;
  /** Free-form attributes the frontend knows (Postfix sends many). */
  attrs?: Record<string, string>;
}

/** RFC vocabulary where there is one (RFC 7208 / 8601), plus our own for non-auth checks. */
export type EvidenceResult =
  | 'pass'
  | 'fail'
  | 'softfail'
  | 'neutral'
  | 'none'
  | 'temperror'
  | 'permerror'
  | 'policy'
  | 'listed'
  | 'unlisted'
  | 'match'
  | 'nomatch'
  | 'skipped';

export interface Evidence {
  /** Name of the check (`spf`, `mx`, `fcrdns`, `dnsbl`, …). */
  check: string;
  result: EvidenceResult;
  /** Human-readable explanation: what was looked up and what was found. */
  detail: string;
  /** Wall-clock milliseconds the check took. */
  ms: number;
  /** Structured data other rules or headers can read (e.g. `domain`, `zones`, `score`). */
  data?: Record<string, unknown>;
}

export type Action = 'accept' | 'reject' | 'defer' | 'tag' | 'tarpit' | 'continue';

export interface Verdict {
  action: Action;
  /** SMTP reply code (e.g. 554, 450); absent for accept/continue. */
  code?: number;
  /** Enhanced status code (e.g. `5.7.1`). */
  status?: string;
  text?: string;
  /** Headers to add to the message: [name, value]. */
  headers: Array<[string, string]>;
  /** Name of the rule that decided, or `default`. */
  rule: string;
  stage: Stage;
  evidence: Evidence[];
  /** Rules in `mode: test` that would have decided, and what they would have done. */
  wouldHave?: Array<{ rule: string; action: Action; code?: number; text?: string }>;
  /** Sum of scores, when the policy uses scoring. */
  score?: number;
}

/** Injected clock so checks are testable without sleeps. */
export interface Clock {
  now(): number;
  /**
   * Call `fn` once `ms` have passed on this clock; returns a function that
   * cancels it. Absent: real (unref'd) timers. Tests give their own, so a
   * deadline passes when the test says, without sleeping.
   */
  after?(ms: number, fn: () => void): () => void;
}
export const systemClock: Clock = { now: () => Date.now() };

/** `clock.after`, or a real timer that does not keep the process alive. */
export function afterOn(clock: Clock, ms: number, fn: () => void): () => void {
  if (clock.after) return clock.after(ms, fn);
  const t = setTimeout(fn, ms);
  t.unref();
  return () => clearTimeout(t);
}
