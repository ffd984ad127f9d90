// The door tests postscreen made familiar, and the memory of who passed them.
// A client that passed (said nothing before the greeting, spoke SMTP, waited
// for replies it had to wait for) is remembered per IP for a while and skips
// the greeting wait next time; a failure is never remembered as a pass.

import type { Clock } from '../core/types.js';
import type { DoorAction } from './config.js';

export type DoorTest = 'pregreet' | 'pipelining' | 'non_smtp' | 'bare_lf';

export interface DoorFailure {
  test: DoorTest;
  action: DoorAction;
  detail: string;
}

/**
 * Lines that are not SMTP: an HTTP request line, the verbs postscreen and
 * smtpd forbid by default (CONNECT, GET, POST), and HTTP header lines that
 * follow a request sent blindly to port 25.
 */
const HTTP_REQUEST = /^[A-Z]{3,10} \S+ HTTP\/\d(\.\d)?$/i;
const FORBIDDEN_VERB = /^(CONNECT|GET|POST|HEAD|PUT|OPTIONS)(\s|$)/i;
const HTTP_HEADER = /^(Host|User-Agent|Accept|Content-Type|Content-Length|Connection):/i;

export function isNonSmtp(line: string): boolean {
  return HTTP_REQUEST.test(line) || FORBIDDEN_VERB.test(line) || HTTP_HEADER.test(line);
}

/** Client IPs that passed every door test, with an expiry. Bounded: the oldest entries go first. */
export class DoorCache {
  private readonly passed = new Map<string, number>();

  constructor(
    private readonly ttlMs: number,
    private readonly clock: Clock,
    private readonly maxEntries = 100_000,
  ) {}

  has(ip: string): boolean {
    const until = this.passed.get(ip);
    if (until === undefined) return false;
    if (until <= this.clock.now()) {
      this.passed.delete(ip);
      return false;
    }
    return true;
  }

  pass(ip: string): void {
    if (this.ttlMs <= 0) return;
    this.passed.delete(ip);
    this.passed.set(ip, this.clock.now() + this.ttlMs);
    if (this.passed.size > this.maxEntries) {
      const oldest = this.passed.keys().next().value;
      if (oldest !== undefined) this.passed.delete(oldest);
    }
  }

  forget(ip: string): void {
    this.passed.delete(ip);
  }

  get size(): number {
    return this.passed.size;
  }
}
