// The relay self-test: at start and every relay_test_interval_s, the gate asks
// the backend, as an outside client, to take a recipient in a domain that is
// nobody's. A backend that says 2xx relays for anyone, and everything the
// gate passes it would be relayed too: the gate then refuses every MAIL with
// 451 4.3.0 and logs why, until a later test is refused.
//
// The dialogue (one backend connection of its own, nothing ever queued):
//   EHLO <gate>  XCLIENT ADDR=192.0.2.1 NAME=[UNAVAILABLE] HELO=[192.0.2.1] …
//   EHLO [192.0.2.1]  MAIL FROM:<>  RCPT TO:<relay-test@example.invalid>  RSET  QUIT
// 192.0.2.1 is TEST-NET-1 (RFC 5737): in nobody's mynetworks. The null sender
// is the one every MTA must accept (RFC 5321 §4.5.5), so a refusal at RCPT is
// about the recipient. example.invalid (RFC 2606) can be nobody's relay_domains.
// Only `backend_identity: xclient` can speak as an outside client; with xforward
// or none the backend judges the gate's own address whatever the test does.

import type { Logger } from 'pino';
import { BackendConnection, isBackendError } from './backend.js';
import { introduce } from './backend-identity.js';
import type { GateConfig } from './config.js';
import type { ClientFacts } from './forward.js';
import { formatHostPort, type HostPort } from './host-port.js';
import { reply, replyText, type Reply } from './reply.js';

export const RELAY_TEST_CLIENT = '192.0.2.1';
export const RELAY_TEST_RCPT = 'relay-test@example.invalid';
/** A test that could not finish (backend down, MAIL refused) is tried again this soon. */
const RETRY_MS = 60_000;

export type RelayTestResult =
  /** The backend refused the outside recipient: good. */
  | { kind: 'closed'; reply: string }
  /** It accepted it: it relays for anyone. */
  | { kind: 'open'; reply: string }
  /** No conclusion (backend down, XCLIENT not accepted, MAIL refused); the previous state stands. */
  | { kind: 'inconclusive'; detail: string; logged?: boolean };

/** Timers the self-test runs on (injected so a test can play the hours). */
export interface Scheduler {
  after(ms: number, fn: () => void): { cancel(): void };
}

export const realScheduler: Scheduler = {
  after(ms, fn) {
    const t = setTimeout(fn, ms);
    t.unref();
    return { cancel: () => clearTimeout(t) };
  },
};

const FACTS: ClientFacts = { ip: RELAY_TEST_CLIENT, port: 25, helo: `[${RELAY_TEST_CLIENT}]`, proto: 'ESMTP' };

export class RelayGuard {
  /** The reply every MAIL gets while the backend relays for outsiders; undefined = mail flows. */
  refusal: Reply | undefined;
  /** Why, for the log line of each refused MAIL. */
  reason: string | undefined;
  /** The first test, until it has finished: the first MAILs wait for it. */
  first: Promise<void> | undefined;
  private running: Promise<RelayTestResult> | undefined;
  private timer: { cancel(): void } | undefined;
  /** The latest finished test's result. */
  last: RelayTestResult | undefined;
  private stopped = false;
  private inFlight: BackendConnection | undefined;
  private readonly backendName: string;

  constructor(
    private readonly backend: HostPort,
    private readonly cfg: GateConfig,
    private readonly hostname: string,
    private readonly logger: Logger,
    private readonly scheduler: Scheduler = realScheduler,
  ) {
    this.backendName = formatHostPort(backend.host, backend.port);
  }

  /** The first test now (not awaited: the gate listens meanwhile), then one every interval. */
  start(): void {
    const first = this.run().then(() => undefined);
    this.first = first;
    void first.then(() => {
      if (this.first === first) this.first = undefined;
    });
  }

  /** No more tests; one in flight is cut off (a hanging backend must not hold the process open). */
  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
    this.inFlight?.destroy();
  }

  /** Run a test now (or join the one running), apply its result and schedule the next. */
  run(): Promise<RelayTestResult> {
    this.running ??= this.test()
      .then((r) => {
        this.apply(r);
        return r;
      })
      .finally(() => {
        this.running = undefined;
        this.schedule();
      });
    return this.running;
  }

  private schedule(): void {
    this.timer?.cancel();
    if (this.stopped) return;
    const interval = this.cfg.relay_test_interval_s * 1000;
    this.timer = this.scheduler.after(this.last?.kind === 'inconclusive' ? Math.min(RETRY_MS, interval) : interval, () => void this.run());
  }

  private apply(r: RelayTestResult): void {
    this.last = r;
    const log = { backend: this.backendName, test_client: RELAY_TEST_CLIENT, test_rcpt: RELAY_TEST_RCPT };
    if (r.kind === 'open') {
      this.reason = `the backend accepted RCPT TO:<${RELAY_TEST_RCPT}> from the outside client ${RELAY_TEST_CLIENT} (${r.reply}): it relays for anyone`;
      this.refusal = reply(451, '4.3.0 Error: the mail server is not available; try again later');
      this.logger.error(
        { ...log, reply: r.reply },
        `relay self-test FAILED: ${this.reason}. The gate refuses all mail (451 4.3.0) until a later test is refused. ` +
          `Postfix: check mynetworks, smtpd_relay_restrictions and smtpd_recipient_restrictions (permit_mynetworks, reject_unauth_destination); ` +
          `next test in ${this.cfg.relay_test_interval_s}s`,
      );
    } else if (r.kind === 'closed') {
      if (this.refusal) this.logger.warn({ ...log, reply: r.reply }, 'relay self-test passed again: the backend refuses outside relaying; mail is accepted');
      else this.logger.info({ ...log, reply: r.reply }, 'relay self-test passed: the backend refuses to relay for outside clients');
      this.refusal = undefined;
      this.reason = undefined;
    } else if (!r.logged) {
      this.logger.warn({ ...log, detail: r.detail, refusing: this.refusal !== undefined }, `relay self-test inconclusive: ${r.detail}; tried again in ${Math.min(RETRY_MS, this.cfg.relay_test_interval_s * 1000) / 1000}s`);
    }
  }

  private async test(): Promise<RelayTestResult> {
    const opts = this.cfg.backend_options;
    let conn: BackendConnection | undefined;
    try {
      conn = await BackendConnection.open({
        host: this.backend.host,
        port: this.backend.port,
        connectTimeoutMs: opts.connect_timeout_ms,
        commandTimeoutMs: opts.command_timeout_s * 1000,
      });
      this.inFlight = conn;
      if (this.stopped) conn.destroy();
      await introduce(conn, 'xclient', FACTS, this.hostname, this.backendName);
      const mail = await conn.command('MAIL FROM:<>');
      if (mail.code < 200 || mail.code > 299) return { kind: 'inconclusive', detail: `the backend refused MAIL FROM:<> from ${RELAY_TEST_CLIENT}: ${replyText(mail)}` };
      const rcpt = await conn.command(`RCPT TO:<${RELAY_TEST_RCPT}>`);
      await conn.command('RSET').catch(() => undefined);
      return rcpt.code >= 200 && rcpt.code < 300 ? { kind: 'open', reply: replyText(rcpt) } : { kind: 'closed', reply: replyText(rcpt) };
    } catch (e) {
      if (!isBackendError(e)) throw e;
      // The identity error names the Postfix setting: logged at error, as every session's attempt is.
      if (e.kind === 'identity') this.logger.error({ backend: this.backendName, relay_test: true }, e.message);
      return { kind: 'inconclusive', detail: e.message, logged: e.kind === 'identity' };
    } finally {
      this.inFlight = undefined;
      await conn?.quit();
    }
  }
}
