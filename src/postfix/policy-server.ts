// The Postfix policy server: TCP and unix sockets speaking the policy
// delegation protocol, one policy transaction per message (Postfix's
// `instance` attribute), one structured log line per decision.

import cluster from 'node:cluster';
import net from 'node:net';
import { chmod } from 'node:fs/promises';
import type { Logger } from 'pino';
import { systemClock, type Clock, type Envelope, type Stage, type Verdict } from '../core/types.js';
import { envelopeOf, withRecipient } from './envelope.js';
import { RequestParser, formatReply, type ParseEvent, type PolicyAttributes } from './protocol.js';
import { withDeadline } from '../core/deadline.js';
import { removeStaleSocket } from '../core/unix-socket.js';
import { infoLine } from '../log.js';
import { evidenceSummary } from './evidence-summary.js';
import { actionFor, faultAction, headerToPrepend, invalidRequestAction, type ReplyOptions } from './reply.js';

/** What the server needs of the policy engine (src/policy's Policy fits). */
export interface PolicyDecider {
  transaction(opts: { seesMessage: boolean }): PolicyTransaction;
}
export interface PolicyTransaction {
  evaluate(stage: Stage, env: Envelope): Promise<Verdict>;
  /** Synchronous when nothing has to be waited for (src/policy's Transaction has it). */
  evaluateNow?(stage: Stage, env: Envelope): Verdict | Promise<Verdict>;
}

export interface PolicyServerOptions extends ReplyOptions {
  policy: PolicyDecider;
  logger: Logger;
  clock?: Clock;
  /** Largest request accepted (postfix.max_request_bytes). Default 16384. */
  maxRequestBytes?: number;
  /** Close a connection idle this long (postfix.idle_timeout_s). Default 300. */
  idleTimeoutS?: number;
  /** Open transactions remembered across connections. Default 10000. */
  maxTransactions?: number;
  /** Forget a transaction not used for this long. Default 1 hour. */
  transactionTtlMs?: number;
  /** A decision taking longer than this is answered as a fault. Default 30000 (Postfix waits 100 s). */
  decisionTimeoutMs?: number;
  /** Requests queued on one connection before it is cut off (Postfix sends one at a time). Default 100. */
  maxQueuedRequests?: number;
  /**
   * Told every decision after its answer is known (serve writes it to the
   * store's decision log); `sessionId` is Postfix's `instance`. Must not
   * throw or block.
   */
  onDecision?: (verdict: Verdict, envelope: Envelope, sessionId: string | undefined) => void;
}

/** One message's state: the policy transaction, its recipients, and the headers already prepended. */
interface OpenTransaction {
  tx: PolicyTransaction;
  rcpts: string[];
  prepended: Set<string>;
  lastUsed: number;
}

export interface PolicyServerStats {
  connections: number;
  requests: number;
  invalid: number;
  faults: number;
  openTransactions: number;
}

export class PolicyServer {
  private readonly servers: net.Server[] = [];
  private readonly connections = new Set<Connection>();
  /**
   * Transactions of connections that closed, by key, for a reconnect to
   * take up; LRU by insertion order (the first entry is the least recently
   * used). A connection holds its own transaction: see transactionFor.
   */
  private readonly parked = new Map<string, OpenTransaction>();
  private readonly clock: Clock;
  private closing = false;
  readonly stats: PolicyServerStats = { connections: 0, requests: 0, invalid: 0, faults: 0, openTransactions: 0 };

  constructor(readonly opts: PolicyServerOptions) {
    this.clock = opts.clock ?? systemClock;
  }

  /** Listen on TCP; resolves with the bound address (port 0 picks a free one). */
  async listenTcp(host: string, port: number): Promise<net.AddressInfo> {
    const server = this.makeServer();
    await listen(server, { host, port });
    return server.address() as net.AddressInfo;
  }

  /** Listen on a unix socket, replacing a stale socket file but never a live one. */
  async listenUnix(path: string, mode = 0o660): Promise<void> {
    // In a cluster worker the socket is the primary's, shared by every worker (it removed a stale file).
    if (!cluster.isWorker) await removeStaleSocket(path);
    const server = this.makeServer();
    await listen(server, { path });
    await chmod(path, mode);
  }

  /**
   * Stop accepting, let each connection finish the request it is working on,
   * then close it; connections still busy after `graceMs` are cut.
   */
  async close(graceMs = 5000): Promise<void> {
    this.closing = true;
    const closed = this.servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve())));
    for (const c of this.connections) c.closeWhenIdle();
    const timer = setTimeout(() => {
      for (const c of this.connections) c.destroy();
    }, graceMs);
    timer.unref();
    await Promise.all([...closed, ...[...this.connections].map((c) => c.closed)]);
    clearTimeout(timer);
    this.parked.clear();
    this.stats.openTransactions = 0;
  }

  private makeServer(): net.Server {
    const server = net.createServer({ allowHalfOpen: true }, (socket) => {
      if (this.closing) return void socket.destroy();
      this.stats.connections++;
      const conn = new Connection(this, socket);
      this.connections.add(conn);
      void conn.closed.then(() => {
        this.connections.delete(conn);
        this.park(conn);
      });
    });
    server.on('error', (err) => this.opts.logger.error({ err }, 'policy server error'));
    this.servers.push(server);
    return server;
  }

  /**
   * Answer one parsed request: the `action=` text, at once when the policy
   * needed no waiting (most warm-cache decisions), else a promise of it.
   * Never throws; a returned promise never rejects.
   */
  answer(attrs: PolicyAttributes, conn: Connection): string | Promise<string> {
    const t0 = performance.now();
    this.stats.requests++;
    const mapped = envelopeOf(attrs);
    if (!mapped.ok) {
      if (mapped.kind === 'invalid') {
        this.stats.invalid++;
        this.opts.logger.warn({ problem: 'invalid-request', reason: mapped.reason, peer: conn.peer }, 'policy request refused');
        return invalidRequestAction(this.opts);
      }
      this.opts.logger.info({ reason: mapped.reason, stage: attrs.protocol_state, client: attrs.client_address, action: 'DUNNO' }, 'policy request skipped');
      return 'DUNNO';
    }
    const { stage, envelope } = mapped;
    const open = this.transactionFor(transactionKey(attrs), conn);
    envelope.rcpts = open.rcpts = withRecipient(open.rcpts, attrs.recipient);
    let result: Verdict | Promise<Verdict>;
    try {
      result = open.tx.evaluateNow ? open.tx.evaluateNow(stage, envelope) : open.tx.evaluate(stage, envelope);
    } catch (err) {
      return this.fault(err, attrs, stage, envelope, t0);
    }
    if (!(result instanceof Promise)) return this.respond(result, open, attrs, stage, envelope, t0);
    return withDeadline(result, this.opts.decisionTimeoutMs ?? 30000).then(
      (verdict) => this.respond(verdict, open, attrs, stage, envelope, t0),
      (err: unknown) => this.fault(err, attrs, stage, envelope, t0),
    );
  }

  /** A fault (a bug, a decision past its deadline): the configured fault answer, logged and recorded. */
  private fault(err: unknown, attrs: PolicyAttributes, stage: Stage, envelope: Envelope, t0: number): string {
    this.stats.faults++;
    const action = faultAction(this.opts);
    this.opts.logger.error({ err, ...summary(attrs, stage), action, ms: elapsed(t0) }, 'policy fault');
    const m = /^(\d{3}) (\d\.\d+\.\d+) (.*)$/.exec(action);
    this.decided(
      { action: m ? 'defer' : 'continue', code: m ? Number(m[1]) : undefined, status: m?.[2], text: m?.[3] ?? String(err), headers: [], rule: 'fault', stage, evidence: [] },
      envelope,
      attrs,
    );
    return action;
  }

  /** The answer for a verdict, with its decision log entry and log line. */
  private respond(verdict: Verdict, open: OpenTransaction, attrs: PolicyAttributes, stage: Stage, envelope: Envelope, t0: number): string {
    const action = actionFor(verdict, this.opts, headerToPrepend(verdict, this.opts, open.prepended));
    this.decided(verdict, envelope, attrs);
    const log = this.opts.logger;
    if (log.isLevelEnabled('info')) {
      // One line per decision: every check's result word; the details where they explain a refusal.
      const refused = verdict.action === 'reject' || verdict.action === 'defer' || verdict.action === 'tarpit';
      infoLine(
        log,
        {
          // summary()'s fields, written out: an object spread here cost more than the rest of the line.
          instance: attrs.instance || undefined,
          queueId: attrs.queue_id || undefined,
          client: attrs.client_address,
          clientName: attrs.reverse_client_name || attrs.client_name || undefined,
          helo: attrs.helo_name || undefined,
          sender: attrs.sender,
          rcpt: attrs.recipient || undefined,
          sasl: attrs.sasl_username || undefined,
          stage,
          action,
          verdict: verdict.action,
          rule: verdict.rule,
          evidence: evidenceSummary(verdict.evidence),
          details: refused ? verdict.evidence.map((e) => `${e.check}: ${e.detail}`) : undefined,
          wouldHave: verdict.wouldHave?.length ? verdict.wouldHave : undefined,
          score: verdict.score,
          ms: elapsed(t0),
        },
        'decision',
      );
    }
    return action;
  }

  private decided(verdict: Verdict, envelope: Envelope, attrs: PolicyAttributes): void {
    if (!this.opts.onDecision) return;
    try {
      this.opts.onDecision(verdict, envelope, attrs.instance || undefined);
    } catch (err) {
      this.opts.logger.error({ err }, 'decision listener threw');
    }
  }

  /**
   * The transaction of a request's message. Postfix sends a message's
   * requests one after another on one connection, and a new instance on a
   * connection means the previous message is done: so the connection holds
   * its transaction, and only a connection's first request (a reconnect in
   * the middle of a message) looks further — among the other connections,
   * then among the transactions parked by connections that closed.
   *
   * Not one map of every open transaction: a long-lived Map rewritten by
   * every message (a new instance each) is rehashed every few dozen
   * messages, and V8 leaves each obsolete table pointing at its successor —
   * once one had been promoted to the old generation, every later table and
   * every transaction in it (the whole decision: envelope, evidence, verdict)
   * survived young-generation GC until the next full one. That was most of
   * the server's GC time (docs/performance.md, "What survives a scavenge").
   */
  private transactionFor(key: string | undefined, conn: Connection): OpenTransaction {
    const now = this.clock.now();
    if (key === undefined) return this.newTransaction(now);
    const held = conn.open !== undefined;
    let open = conn.key === key ? conn.open : undefined;
    if (open === undefined && conn.key === undefined) open = this.takeUp(key, conn);
    if (open === undefined || now - open.lastUsed > (this.opts.transactionTtlMs ?? 3_600_000)) open = this.newTransaction(now);
    open.lastUsed = now;
    conn.key = key;
    conn.open = open;
    if (!held) this.stats.openTransactions++;
    return open;
  }

  /** A transaction that another connection holds (its last message's) or a closed one parked. */
  private takeUp(key: string, conn: Connection): OpenTransaction | undefined {
    for (const other of this.connections) {
      if (other === conn || other.key !== key || other.open === undefined) continue;
      const open = other.open;
      other.key = other.open = undefined;
      this.stats.openTransactions--;
      return open;
    }
    const open = this.parked.get(key);
    if (open === undefined) return undefined;
    this.parked.delete(key);
    this.stats.openTransactions--;
    return open;
  }

  /** A closing connection's transaction waits for a reconnect, within maxTransactions and the TTL. */
  private park(conn: Connection): void {
    const { key, open } = conn;
    if (key === undefined || open === undefined) return;
    conn.key = conn.open = undefined;
    this.stats.openTransactions--;
    if (this.closing) return;
    const now = this.clock.now();
    const ttl = this.opts.transactionTtlMs ?? 3_600_000;
    const max = this.opts.maxTransactions ?? 10000;
    if (this.parked.delete(key)) this.stats.openTransactions--;
    this.parked.set(key, open);
    this.stats.openTransactions++;
    for (const [k, t] of this.parked) {
      if (this.parked.size <= max && now - t.lastUsed <= ttl) break;
      this.parked.delete(k);
      this.stats.openTransactions--;
    }
  }

  private newTransaction(now: number): OpenTransaction {
    return { tx: this.opts.policy.transaction({ seesMessage: false }), rcpts: [], prepended: new Set(), lastUsed: now };
  }

  /** The answer to a request the parser could not accept. */
  invalid(event: Extract<ParseEvent, { kind: 'invalid' | 'abort' }>, conn: Connection): string {
    this.stats.invalid++;
    const action = invalidRequestAction(this.opts);
    this.opts.logger.warn(
      { problem: event.problem, detail: event.detail, peer: conn.peer, action: event.kind === 'abort' ? 'close' : action },
      event.kind === 'abort' ? 'policy connection closed: request never ended' : 'policy request refused',
    );
    return action;
  }
}

/** One client connection: requests are answered one at a time, in order. */
class Connection {
  private readonly parser: RequestParser;
  private readonly queue: ParseEvent[] = [];
  private busy = false;
  private closeRequested = false;
  /** The transaction of the message this connection is in, and its key (instance and client). */
  key: string | undefined;
  open: OpenTransaction | undefined;
  readonly peer: string;
  readonly closed: Promise<void>;

  constructor(
    private readonly server: PolicyServer,
    private readonly socket: net.Socket,
  ) {
    const o = server.opts;
    this.peer = socket.remoteAddress ? `${socket.remoteAddress}:${socket.remotePort}` : 'unix';
    this.parser = new RequestParser({ maxRequestBytes: o.maxRequestBytes ?? 16384 });
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.setNoDelay(true);
    socket.setTimeout((o.idleTimeoutS ?? 300) * 1000, () => {
      o.logger.debug({ peer: this.peer }, 'policy connection idle, closing');
      socket.destroy();
    });
    socket.on('data', (chunk) => this.onData(chunk));
    socket.on('error', (err) => o.logger.debug({ err, peer: this.peer }, 'policy connection error'));
    socket.on('end', () => this.closeWhenIdle());
  }

  private onData(chunk: Buffer): void {
    let events: ParseEvent[];
    try {
      events = this.parser.push(chunk);
    } catch (err) {
      this.server.opts.logger.error({ err, peer: this.peer }, 'policy parser failure, closing connection');
      return this.destroy();
    }
    this.queue.push(...events);
    if (this.queue.length > (this.server.opts.maxQueuedRequests ?? 100)) {
      this.server.opts.logger.warn({ peer: this.peer, queued: this.queue.length }, 'policy client sends without reading answers, closing');
      return this.destroy();
    }
    if (!this.busy) this.drain();
  }

  /**
   * Answer queued requests in order. Answers that are ready at once are
   * written at once (no promise per request); one that must wait holds the
   * queue until it is written.
   */
  private drain(): void {
    while (this.queue.length > 0 && !this.socket.destroyed) {
      const event = this.queue.shift()!;
      if (event.kind === 'abort') {
        this.server.invalid(event, this);
        this.queue.length = 0;
        this.socket.end();
        return;
      }
      let action: string | Promise<string>;
      try {
        action = event.kind === 'request' ? this.server.answer(event.attrs, this) : this.server.invalid(event, this);
      } catch (err) {
        action = this.bug(err);
      }
      if (typeof action === 'string') {
        this.reply(action);
        continue;
      }
      this.busy = true;
      const resume = (a: string): void => {
        try {
          this.reply(a);
        } finally {
          this.busy = false;
          this.drain();
        }
      };
      action.then(resume, (err: unknown) => resume(this.bug(err)));
      return;
    }
    if (this.closeRequested && this.queue.length === 0) this.socket.end();
  }

  /** answer() does not throw; this is the last line of defence against a bug. */
  private bug(err: unknown): string {
    this.server.opts.logger.error({ err, peer: this.peer }, 'policy server bug');
    return faultAction(this.server.opts);
  }

  private reply(action: string): void {
    if (!this.socket.destroyed && this.socket.writable) this.socket.write(formatReply(action));
  }

  closeWhenIdle(): void {
    this.closeRequested = true;
    if (!this.busy && this.queue.length === 0) this.socket.end();
  }

  destroy(): void {
    this.queue.length = 0;
    this.socket.destroy();
  }
}

function transactionKey(attrs: PolicyAttributes): string | undefined {
  return attrs.instance ? `${attrs.instance}|${attrs.client_address ?? ''}` : undefined;
}

function summary(attrs: PolicyAttributes, stage: Stage): Record<string, unknown> {
  return {
    instance: attrs.instance || undefined,
    queueId: attrs.queue_id || undefined,
    client: attrs.client_address,
    clientName: attrs.reverse_client_name || attrs.client_name || undefined,
    helo: attrs.helo_name || undefined,
    sender: attrs.sender,
    rcpt: attrs.recipient || undefined,
    sasl: attrs.sasl_username || undefined,
    stage,
  };
}

function elapsed(t0: number): number {
  return Math.round((performance.now() - t0) * 100) / 100;
}

function listen(server: net.Server, opts: net.ListenOptions): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    server.once('error', onError);
    server.listen(opts, () => {
      server.off('error', onError);
      resolve();
    });
  });
}
