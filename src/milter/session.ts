// One MTA connection speaking the milter protocol: packets framed and
// decoded, handled strictly one after another (the socket is paused while a
// decision is being made), each stage evaluated by the policy as the gate
// evaluates it. A packet the protocol does not allow is answered with
// SMFIR_TEMPFAIL and the connection closed: the MTA then applies its
// milter_default_action (tempfail in our docs), so no mail passes unchecked.

import type net from 'node:net';
import type { Logger } from 'pino';
import type { Envelope, Stage, Verdict } from '../core/types.js';
import { normaliseIp } from '../dns/reverse.js';
import { withDeadline } from '../core/deadline.js';
import { formatHeader } from '../core/header-line.js';
import { infoLine } from '../log.js';
import { PacketReader, changeHeader, decodeCommand, insertHeader, optnegReply, replyCode, simpleReply, type MilterCommand } from './codec.js';
import { MessageAssembly, type MessageLimits } from './message.js';
import { negotiate, type Agreement } from './negotiate.js';
import { REPLY } from './protocol.js';
import { faultVerdict, refusalOf, type SmtpAnswer } from './reply.js';
import type { MilterPolicy, MilterTransaction } from './policy-port.js';

export interface SessionOptions {
  policy: MilterPolicy;
  logger: Logger;
  limits: MessageLimits;
  /** Largest packet accepted; a longer length closes the connection. */
  maxPacket: number;
  /** A decision taking longer is answered 451 4.3.0 (Postfix waits milter_command_timeout, 30 s). */
  decisionTimeoutMs: number;
  /** Close a connection silent this long. */
  idleTimeoutMs: number;
  /** Told every decided verdict (refusals, and each message's end-of-message verdict). Must not throw. */
  onDecision?: (verdict: Verdict, env: Envelope, sessionId: string | undefined) => void;
}

export interface SessionStats {
  messages: number;
  refused: number;
  faults: number;
  protocolErrors: number;
}

/** Macro names kept per connection (a map bounded by names, each value by the packet cap). */
const MAX_MACROS = 100;

export class MilterSession {
  private readonly reader: PacketReader;
  private readonly queue: MilterCommand[] = [];
  private busy = false;
  private ended = false;
  private agreement: Agreement | undefined;
  private readonly macros = new Map<string, string>();
  private env: Envelope = { clientIp: '', rcpts: [] };
  /** No client IP (a local or unknown-family client): nothing to judge, as the policy server skips it. */
  private unjudged = false;
  private connected = false;
  private tx: MilterTransaction | undefined;
  /** A refusal decided at connect or HELO, given at MAIL (as smtpd_delay_reject and the gate do). */
  private early: Verdict | undefined;
  private accepted: string[] = [];
  private message: MessageAssembly | undefined;
  private skipping = false;
  /** Headers of the last verdict that had any (the end-of-message verdict's, normally). */
  private stageHeaders: Array<[string, string]> = [];
  readonly closed: Promise<void>;
  readonly peer: string;

  constructor(
    private readonly socket: net.Socket,
    private readonly opts: SessionOptions,
    private readonly stats: SessionStats,
  ) {
    this.peer = socket.remoteAddress ? `${socket.remoteAddress}:${socket.remotePort}` : 'unix';
    this.reader = new PacketReader(opts.maxPacket);
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.setNoDelay?.(true);
    socket.setTimeout(opts.idleTimeoutMs, () => {
      opts.logger.info({ peer: this.peer, limit: 'idle_timeout_s' }, 'milter connection idle, closing');
      socket.destroy();
    });
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => opts.logger.debug({ err, peer: this.peer }, 'milter connection error'));
    socket.on('end', () => {
      this.ended = true;
      if (!this.busy) socket.end();
    });
  }

  private onData(chunk: Buffer): void {
    for (const ev of this.reader.push(chunk)) {
      if (ev.kind === 'error') return this.protocolError(ev.problem);
      const cmd = decodeCommand(ev.command, ev.data);
      if (cmd.kind === 'malformed') return this.protocolError(cmd.problem);
      this.queue.push(cmd);
    }
    this.drain();
  }

  /** Handle queued commands in order; an async decision pauses the socket until it is answered. */
  private drain(): void {
    while (!this.busy && this.queue.length > 0 && !this.socket.destroyed) {
      const cmd = this.queue.shift()!;
      let pending: Promise<void> | void;
      try {
        pending = this.handle(cmd);
      } catch (err) {
        this.bug(err);
        return;
      }
      if (pending) {
        this.busy = true;
        this.socket.pause();
        pending.then(
          () => this.resume(),
          (err: unknown) => this.bug(err),
        );
      }
    }
    if (this.ended && !this.busy && this.queue.length === 0) this.socket.end();
  }

  private resume(): void {
    this.busy = false;
    if (!this.socket.destroyed) this.socket.resume();
    this.drain();
  }

  /** A bug in our handling: tempfail whatever was asked, and close (the MTA defers). */
  private bug(err: unknown): void {
    this.stats.faults++;
    this.opts.logger.error({ err, peer: this.peer }, 'milter session bug: tempfail and close');
    this.abortConnection();
  }

  private protocolError(problem: string): void {
    this.stats.protocolErrors++;
    this.opts.logger.warn({ peer: this.peer, problem, limit: /over the limit/.test(problem) ? 'max_packet' : undefined }, `milter protocol error: ${problem}; tempfail and close`);
    this.abortConnection();
  }

  private abortConnection(): void {
    this.queue.length = 0;
    if (!this.socket.destroyed && this.socket.writable) this.socket.end(simpleReply(REPLY.TEMPFAIL));
    else this.socket.destroy();
    // Whatever still arrives is not read.
    this.socket.removeAllListeners('data');
  }

  private send(...packets: Buffer[]): void {
    if (!this.socket.destroyed && this.socket.writable) this.socket.write(packets.length === 1 ? packets[0] : Buffer.concat(packets));
  }

  private continue(): void {
    this.send(simpleReply(REPLY.CONTINUE));
  }

  private handle(cmd: MilterCommand): Promise<void> | void {
    if (cmd.kind === 'optneg') return this.optneg(cmd);
    if (!this.agreement) return this.protocolError(`command ${cmd.kind} before option negotiation`);
    switch (cmd.kind) {
      case 'macro':
        for (const [name, value] of cmd.macros) {
          if (this.macros.size >= MAX_MACROS && !this.macros.has(name)) continue;
          this.macros.set(name, value);
        }
        return;
      case 'connect':
        return this.connect(cmd);
      case 'quit':
        this.socket.end();
        return;
      case 'quit_nc':
        // The MTA keeps the connection for another SMTP session, which starts with a new connect.
        this.resetConnection();
        return;
      case 'abort':
        this.endMessage();
        return;
      case 'unknown':
        return this.continue();
      default:
        break;
    }
    if (!this.connected) return this.protocolError(`command ${cmd.kind} before connect`);
    switch (cmd.kind) {
      case 'helo':
        return this.helo(cmd.name);
      case 'mail':
        return this.mail(cmd.args);
      case 'rcpt':
        return this.rcpt(cmd.args);
      case 'data':
        return this.data();
      case 'header':
        this.messageInProgress().addHeader(cmd.name, cmd.value);
        if (!this.agreement.noHeaderReply) this.continue();
        return;
      case 'eoh':
        return this.endOfHeaders();
      case 'body':
        return this.body(cmd.chunk);
      case 'eom':
        return this.endOfMessage(cmd.chunk);
    }
  }

  private optneg(cmd: Extract<MilterCommand, { kind: 'optneg' }>): void {
    if (this.agreement) return this.protocolError('second option negotiation');
    const n = negotiate(cmd);
    if (!n.ok) return this.protocolError(n.problem);
    this.agreement = n.agreement;
    const a = n.agreement;
    if (!a.addHeaders || !a.changeHeaders) {
      this.opts.logger.warn({ peer: this.peer, offered: cmd.actions }, 'the MTA does not let the milter add and change headers: no Authentication-Results, forged ones not removed');
    }
    this.opts.logger.debug({ peer: this.peer, version: a.version, actions: a.actions, protocol: a.protocol }, 'milter options agreed');
    this.send(optnegReply(a.version, a.actions, a.protocol, a.symlists));
  }

  private connect(cmd: Extract<MilterCommand, { kind: 'connect' }>): Promise<void> | void {
    if (this.connected) return this.protocolError('second connect without quit-nc');
    this.connected = true;
    this.tx = this.opts.policy.transaction({ seesMessage: true });
    const raw = (cmd.family === '4' || cmd.family === '6' ? cmd.address : this.macros.get('{client_addr}')) ?? '';
    let ip: string | undefined;
    try {
      ip = raw ? normaliseIp(raw.replace(/^IPv6:/i, '')) : undefined;
    } catch {
      ip = undefined;
    }
    if (ip === undefined) {
      this.unjudged = true;
      this.opts.logger.info({ peer: this.peer, family: cmd.family, hostname: cmd.hostname }, 'milter client without an IP address: not judged (as the policy server skips it)');
      return this.continue();
    }
    this.env = { clientIp: ip, rcpts: [] };
    const ptr = this.macros.get('{client_ptr}') ?? (cmd.hostname.startsWith('[') ? undefined : cmd.hostname);
    if (ptr && ptr.toLowerCase() !== 'unknown') this.env.clientPtr = ptr;
    const daemon = this.macros.get('{daemon_addr}');
    if (daemon) this.env.serverAddress = daemon;
    return this.judgeEarly('connect');
  }

  private helo(name: string): Promise<void> | void {
    if (this.unjudged) return this.continue();
    this.env.helo = name;
    return this.judgeEarly('helo');
  }

  /** Connect and HELO: decided now, any refusal given at MAIL. */
  private async judgeEarly(stage: 'connect' | 'helo'): Promise<void> {
    const v = await this.evaluate(stage);
    if (!this.early && refusalOf(v)) this.early = v;
    this.continue();
  }

  private async mail(args: string[]): Promise<void> {
    if (this.unjudged) return this.continue();
    this.resetMessage();
    if (this.early) {
      this.refuse(this.early, 'mail');
      return;
    }
    this.env.from = unbracket(args[0]);
    this.env.rcpts = [];
    const sasl = this.macros.get('{auth_authen}');
    if (sasl) this.env.saslUser = sasl;
    else delete this.env.saslUser;
    const v = await this.evaluate('mail');
    if (!this.refuse(v, 'mail')) this.continue();
  }

  private async rcpt(args: string[]): Promise<void> {
    if (this.unjudged) return this.continue();
    const rcpt = unbracket(args[0]);
    this.env.rcpts = [...this.accepted, rcpt];
    const v = await this.evaluate('rcpt');
    if (this.refuse(v, 'rcpt')) {
      this.env.rcpts = [...this.accepted];
      return;
    }
    this.accepted.push(rcpt);
    this.env.rcpts = [...this.accepted];
    this.continue();
  }

  private async data(): Promise<void> {
    this.messageInProgress();
    if (this.unjudged) return this.continue();
    const v = await this.evaluate('data');
    if (!this.refuse(v, 'data')) this.continue();
  }

  private endOfHeaders(): void {
    const m = this.messageInProgress();
    if (m.headersOverLimit) {
      const { maxHeaders, maxHeaderBytes } = this.opts.limits;
      this.opts.logger.info({ peer: this.peer, limit: 'header section', maxHeaders, maxHeaderBytes, queueId: this.queueId }, 'milter: header section over its limits: 552 5.3.4');
      this.refuse(limitVerdict('eom', 552, '5.3.4', 'Error: message header section too big'), 'eom');
      return;
    }
    this.continue();
  }

  private body(chunk: Buffer): void {
    const m = this.messageInProgress();
    if (this.skipping) return this.continue();
    if (m.addBody(chunk)) return this.continue();
    this.skipping = true;
    this.opts.logger.info({ peer: this.peer, limit: 'max_body', maxBody: this.opts.limits.maxBody, queueId: this.queueId }, 'milter: body over milter.max_body; the rest is skipped, body signatures are not verified');
    // SKIP asks the MTA for no more body chunks; an MTA that does not know it gets continue and the rest is dropped here.
    this.send(simpleReply(this.agreement!.skip ? REPLY.SKIP : REPLY.CONTINUE));
  }

  private async endOfMessage(chunk: Buffer): Promise<void> {
    const m = this.messageInProgress();
    if (chunk.length > 0 && !this.skipping) m.addBody(chunk);
    else if (chunk.length > 0) m.bodySeen += chunk.length;
    if (m.headersOverLimit) {
      this.refuse(limitVerdict('eom', 552, '5.3.4', 'Error: message header section too big'), 'eom');
      this.endMessage();
      return;
    }
    this.stats.messages++;
    const own = this.opts.policy.ownHeaders;
    const removals = own && this.agreement!.changeHeaders ? m.forged(own).map((r) => changeHeader(r.index, r.name, '')) : [];
    if (removals.length > 0) this.opts.logger.info({ peer: this.peer, queueId: this.queueId, removed: m.forged(own!).map((r) => r.name) }, 'removed forged result headers');
    if (this.unjudged) {
      this.send(...removals, simpleReply(REPLY.ACCEPT));
      this.endMessage();
      return;
    }
    this.env.message = m.message();
    if (m.truncated) this.env.messageTruncated = true;
    const v = await this.evaluate('eom');
    this.env.message = undefined;
    delete this.env.messageTruncated;
    if (!this.refuse(v, 'eom')) {
      const headers = v.headers.length > 0 ? v.headers : this.stageHeaders;
      // Inserted at the top, the last first, so they read in the verdict's order above the rest.
      const inserts = this.agreement!.addHeaders ? [...headers].reverse().map(([n, value]) => insertHeader(0, n, milterValue(n, value, this.agreement!.leadingSpace))) : [];
      this.send(...removals, ...inserts, simpleReply(REPLY.ACCEPT));
    }
    this.endMessage();
  }

  private get queueId(): string | undefined {
    return this.macros.get('i');
  }

  private messageInProgress(): MessageAssembly {
    return (this.message ??= new MessageAssembly(this.opts.limits, this.agreement?.leadingSpace ?? false));
  }

  /** The end of a message (or of its transaction): a new policy transaction, the connection's facts kept. */
  private resetMessage(): void {
    this.message = undefined;
    this.skipping = false;
    this.accepted = [];
    this.stageHeaders = [];
    if (this.env.from !== undefined || this.env.rcpts.length > 0) {
      this.env.from = undefined;
      this.env.rcpts = [];
      delete this.env.saslUser;
      this.tx = this.opts.policy.transaction({ seesMessage: true });
    }
  }

  /** The message is over (end of message, abort): its queue id goes with it (the next MAIL may come before Postfix assigns one). */
  private endMessage(): void {
    this.resetMessage();
    this.macros.delete('i');
  }

  private resetConnection(): void {
    this.resetMessage();
    this.connected = false;
    this.unjudged = false;
    this.early = undefined;
    this.macros.clear();
    this.env = { clientIp: '', rcpts: [] };
    this.tx = undefined;
  }

  /** Reply to a refusing verdict (true), or do nothing (false). */
  private refuse(v: Verdict, stage: Stage): boolean {
    const r: SmtpAnswer | undefined = refusalOf(v);
    if (!r) return false;
    this.stats.refused++;
    this.send(replyCode(r.code, r.status, r.text));
    if (stage === 'mail' || stage === 'data' || stage === 'eom') this.resetMessage();
    return true;
  }

  private async evaluate(stage: Stage): Promise<Verdict> {
    const env: Envelope = { ...this.env, rcpts: [...this.env.rcpts] };
    if (this.queueId) env.sessionId = this.queueId;
    const t0 = performance.now();
    let v: Verdict;
    try {
      v = await withDeadline(this.tx!.evaluate(stage, env), this.opts.decisionTimeoutMs);
    } catch (err) {
      // A bug or a decision past its deadline: 4xx, never 5xx.
      this.stats.faults++;
      this.opts.logger.error({ err, stage, peer: this.peer }, 'milter: policy evaluation failed; answering 451 4.3.0');
      v = faultVerdict(stage, err instanceof Error ? err.message : String(err));
    }
    if (v.headers.length > 0) this.stageHeaders = v.headers;
    const decided = v.action !== 'continue' || stage === 'eom';
    if (decided) {
      this.logDecision(v, env, stage, t0);
      try {
        this.opts.onDecision?.(v, env, env.sessionId);
      } catch (err) {
        this.opts.logger.error({ err }, 'decision listener threw');
      }
    }
    return v;
  }

  private logDecision(v: Verdict, env: Envelope, stage: Stage, t0: number): void {
    const log = this.opts.logger;
    if (!log.isLevelEnabled('info')) return;
    const refused = v.action === 'reject' || v.action === 'defer' || v.action === 'tarpit';
    const fields = {
      frontend: 'milter',
      queueId: this.queueId,
      client: env.clientIp,
      clientName: env.clientPtr,
      helo: env.helo,
      sender: env.from,
      rcpt: env.rcpts[env.rcpts.length - 1],
      sasl: env.saslUser,
      stage,
      verdict: v.action,
      rule: v.rule,
      code: v.code,
      text: refused ? v.text : undefined,
      evidence: v.evidence.map((e) => `${e.check}=${e.result}`).join(' '),
      details: refused ? v.evidence.map((e) => `${e.check}: ${e.detail}`) : undefined,
      wouldHave: v.wouldHave?.length ? v.wouldHave : undefined,
      ms: Math.round((performance.now() - t0) * 100) / 100,
    };
    try {
      infoLine(log, fields, 'decision');
    } catch {
      log.info(fields, 'decision');
    }
  }

  destroy(): void {
    this.queue.length = 0;
    this.socket.destroy();
  }

  /** Close once the command in hand is answered (server shutdown). */
  closeWhenIdle(): void {
    this.ended = true;
    if (!this.busy) this.socket.end();
  }
}

/** `<a@b>` → `a@b`; `<>` → '' (the null sender). */
function unbracket(arg: string): string {
  const s = arg.trim();
  return s.startsWith('<') && s.endsWith('>') ? s.slice(1, -1) : s;
}

/**
 * A header value for SMFIR_INSHEADER: folded as the gate folds it, LF
 * between lines (the MTA ends lines itself); with HDR_LEADSPC agreed the
 * MTA writes the value right after the colon, so it keeps its space.
 */
function milterValue(name: string, value: string, leadingSpace: boolean): string {
  const folded = formatHeader(name, value).slice(name.length + 2, -2).replace(/\r\n/g, '\n');
  return leadingSpace ? ` ${folded}` : folded;
}

function limitVerdict(stage: Stage, code: number, status: string, text: string): Verdict {
  return { action: 'reject', code, status, text, headers: [], rule: 'milter:limit', stage, evidence: [] };
}
