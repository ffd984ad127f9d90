// One client connection through the gate: the door tests, then the SMTP
// dialogue, each command answered only after the gate's own policy and then
// the backend have answered it. The rule that matters most: the client never
// gets a 2xx for something the backend did not take, and a backend fault is a
// 4xx, never a 250 and never a 5xx of ours.

import tls from 'node:tls';
import type { Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { childLogger, infoLine } from '../log.js';
import type { Envelope, Stage, Verdict } from '../core/types.js';
import type { Resolver } from '../dns/types.js';
import { BackendLink } from './backend-link.js';
import { isBackendError } from './backend.js';
import { ClientInput } from './client-input.js';
import { lookupClientName, type ClientName } from './client-name.js';
import { parseCommand, parsePath, pathLine, type Command, type PathArg } from './command.js';
import type { GateConfig } from './config.js';
import { isNonSmtp, type DoorCache, type DoorTest } from './door.js';
import { isUnavailable, parseXforward, type ClientFacts } from './forward.js';
import type { IpList } from '../checks/lists.js';
import { normaliseIp } from '../dns/reverse.js';
import type { HostPort } from './host-port.js';
import type { ConnectionLimits } from './limits.js';
import type { ClientKey } from './client-key.js';
import type { RelayGuard } from './relay-test.js';
import type { GateStats } from './server.js';
import { prependHeaders, receivedHeader } from './message-headers.js';
import { stripOwnHeaders } from '../policy/own-headers.js';
import { MessageBuffer, type MessageMemory } from './memory-budget.js';
import type { GatePolicy, GateTransaction } from './policy-port.js';
import { formatReply, reply, replyLines, replyText, verdictReply, type Reply } from './reply.js';
import { stutter, type TarpitSlots } from './tarpit.js';
import type { BatvRewriter } from '../checks/batv-rewrite.js';

/** What every session of one gate shares. */
export interface GateContext {
  cfg: GateConfig;
  hostname: string;
  policy: GatePolicy;
  logger: Logger;
  backend: HostPort;
  /** The relay self-test's verdict (backend_identity xclient only). */
  relay?: RelayGuard;
  limits: ConnectionLimits;
  door: DoorCache;
  tarpit: TarpitSlots;
  /** Who counts as one client for the per-client limits (an IPv6 client by its prefix). */
  clientKey: ClientKey;
  /** The budget for message bytes held in memory, shared by every session (gate.limits.memory_mb). */
  memory: MessageMemory;
  tlsContext?: tls.SecureContext;
  /** Peers whose XFORWARD is believed (a Postfix smtpd using the gate as its proxy filter). */
  xforwardHosts: IpList;
  /** gate.outbound: BATV signing of our clients' senders, our tags stripped from recipients. */
  outbound?: { rewrite: BatvRewriter; myNetworks: IpList };
  resolver?: Resolver;
  onEvent?: (verdict: Verdict, env: Envelope) => void;
  /** Counts for /metrics (server.ts GateStats). */
  stats: GateStats;
}

export interface Peer {
  ip: string;
  port: number;
  localIp: string;
  localPort: number;
}

/** Thrown to end the session from anywhere in the dialogue; the socket is already answered. */
class EndSession extends Error {}

const DOOR_TEXT: Record<DoorTest, string> = {
  pregreet: 'Protocol error: client talked before the greeting',
  pipelining: 'Protocol error: commands sent before their replies (PIPELINING not offered)',
  non_smtp: 'Protocol error: this is an SMTP server',
  bare_lf: 'Protocol error: bare <LF> or <CR> received',
};

/**
 * Control characters (C0 but TAB, DEL, C1) in a command line: no SMTP command
 * needs one, and one in an address ends up in logs and on terminals.
 */
const CONTROL = /[\x00-\x08\x0a-\x1f\x7f-\x9f]/;

/** Commands a client may send without waiting for the previous reply, once PIPELINING is offered. */
const GROUP_MIDDLE = new Set(['MAIL', 'RCPT', 'RSET']);

const NAME_LOOKUP_MS = 5000;

/**
 * The message buffer's first size when the client declared no SIZE; it
 * doubles as needed. Under 4 KB, so Node takes it from its buffer pool: most
 * messages fit, and a fresh allocation per message was a measurable cost.
 */
const FIRST_BUFFER = 4000;
/** Added to a declared SIZE: the gate's CRLF normalisation may make the message a little longer. */
const SIZE_SLACK = 1024;
const NO_MEMORY = reply(452, '4.3.1 Insufficient system storage');

export class GateSession {
  private socket: Socket;
  private readonly input: ClientInput;
  private readonly log: Logger;
  readonly id = randomBytes(5).toString('hex').toUpperCase();
  private readonly env: Envelope;
  private tx: GateTransaction;
  private readonly link: BackendLink;
  private earlyVerdicts: Array<Promise<Verdict>> = [];
  private nameLookup: Promise<ClientName>;
  private clientName: ClientName = { tempFail: false };
  /** The client port the backend is told (the peer's, or a forwarded one). */
  private clientPort: number;
  /** The peer may send XFORWARD; its attributes for the next transaction. */
  private readonly forwarder: boolean;
  private forwarded = new Map<string, string>();
  /** The peer's own HELO, restored after a forwarded transaction. */
  private ownHelo: string | undefined;
  private adopted = false;
  private ownNameLookup: Promise<ClientName>;
  private ownEarlyVerdicts: Array<Promise<Verdict>> = [];
  /** The name lookup identify() took clientName from: later MAILs need not wait for it again. */
  private identified: Promise<ClientName> | undefined;
  /** Early verdicts already found to refuse nothing: later MAILs need not wait for them again. */
  private earlyPassed: Array<Promise<Verdict>> | undefined;

  private secure = false;
  private greeting: 'HELO' | 'EHLO' | undefined;
  private inTransaction = false;
  private accepted: string[] = [];
  /** The SIZE= of the transaction's MAIL FROM: the message buffer is made that size at once. */
  private declaredSize: number | undefined;
  private stageHeaders: Array<[string, string]> = [];
  private current = '';
  private commands = 0;
  private errors = 0;
  /** Door test failed with `enforce`: the reply every later command gets. */
  private enforced: Reply | undefined;
  private doorTested = false;
  private doorFailed = false;
  /** Tests already failed: reported once per session. */
  private readonly failedTests = new Set<DoorTest>();
  private tarpitted = false;
  /** The client the tarpit slot was taken for (the slot goes back to it). */
  private tarpitKey = '';
  private closed = false;

  constructor(
    socket: Socket,
    private readonly peer: Peer,
    private readonly ctx: GateContext,
  ) {
    this.socket = socket;
    socket.setNoDelay(true);
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.closed = true;
    });
    this.input = new ClientInput(socket);
    this.log = childLogger(ctx.logger, { session: this.id, client: peer.ip });
    this.env = {
      clientIp: peer.ip,
      rcpts: [],
      serverAddress: peer.localIp,
      sessionId: this.id,
      attrs: { client_port: String(peer.port), server_port: String(peer.localPort) },
    };
    this.clientPort = peer.port;
    this.forwarder = ctx.xforwardHosts.has(peer.ip);
    this.tx = ctx.policy.transaction({ seesMessage: true });
    this.link = new BackendLink(ctx.backend, ctx.cfg.backend_options, ctx.cfg.backend_identity, ctx.hostname, this.log);
    this.nameLookup = ctx.resolver
      ? lookupClientName(ctx.resolver, peer.ip, NAME_LOOKUP_MS).catch(() => ({ tempFail: true }))
      : Promise.resolve({ tempFail: false });
    this.ownNameLookup = this.nameLookup;
  }

  async run(): Promise<void> {
    try {
      await this.greet();
      await this.dialogue();
    } catch (e) {
      if (!(e instanceof EndSession)) this.log.error({ err: e }, 'gate session failed');
    } finally {
      await this.finish();
    }
  }

  /** Server shutdown: say so and hang up. */
  shutdown(): void {
    if (this.closed) return;
    this.socket.end(formatReply(reply(421, `4.3.2 ${this.ctx.hostname} Service shutting down, try again later`)));
    this.link.close();
  }

  // ---------------------------------------------------------------- the door

  private async greet(): Promise<void> {
    const { cfg, hostname } = this.ctx;
    this.earlyVerdicts.push(this.evaluate('connect'));
    this.ownEarlyVerdicts = this.earlyVerdicts;
    const banner = `${hostname} ${cfg.banner}`.trim();
    // A trusted forwarder is our own MTA: no door tests for it.
    if (!this.forwarder && !this.ctx.door.has(this.peer.ip)) {
      this.doorTested = true;
      const wait = this.ctx.limits.overloaded ? cfg.overload.greet_wait_ms : cfg.greet_wait_ms;
      if (wait > 0) {
        this.write(`220-${banner}\r\n`);
        const deadline = Date.now() + wait;
        while (this.input.received === 0 && !this.input.eof && Date.now() < deadline) {
          await this.input.waitForInput(deadline - Date.now());
        }
        if (this.input.eof && this.input.received === 0) throw new EndSession();
      }
      if (this.input.received > 0) await this.doorFail('pregreet', `${this.input.received} bytes before the greeting`);
    }
    await this.writeReply(reply(220, banner));
  }

  private async doorFail(test: DoorTest, detail: string): Promise<void> {
    const action = this.ctx.cfg.door[test];
    if (this.failedTests.has(test) && action !== 'drop') return;
    this.failedTests.add(test);
    this.doorFailed = true;
    this.ctx.door.forget(this.peer.ip);
    this.log.info({ door: test, action, detail }, `door test failed: ${test}`);
    const counted = `${test}|${action}`;
    this.ctx.stats.doorFailures[counted] = (this.ctx.stats.doorFailures[counted] ?? 0) + 1;
    const code = action === 'drop' ? 521 : 554;
    const r = reply(code, `5.7.1 ${this.ctx.hostname} ${DOOR_TEXT[test]}`);
    this.emit({
      action: action === 'ignore' ? 'continue' : 'reject',
      code: action === 'ignore' ? undefined : code,
      status: action === 'ignore' ? undefined : '5.7.1',
      text: DOOR_TEXT[test],
      headers: [],
      rule: `gate:${test}`,
      stage: 'connect',
      evidence: [{ check: `door_${test}`, result: 'fail', detail, ms: 0, data: { action } }],
    });
    if (action === 'drop') {
      await this.writeReply(r);
      throw new EndSession();
    }
    if (action === 'enforce') this.enforced = r;
  }

  // ---------------------------------------------------------------- the dialogue

  private commandTimeoutMs(): number {
    const { limits, overload } = this.ctx.cfg;
    return (this.ctx.limits.overloaded ? overload.command_timeout_s : limits.command_timeout_s) * 1000;
  }

  private dataTimeoutMs(): number {
    const { limits, overload } = this.ctx.cfg;
    return (this.ctx.limits.overloaded ? overload.data_timeout_s : limits.data_timeout_s) * 1000;
  }

  private async dialogue(): Promise<void> {
    const limits = this.ctx.cfg.limits;
    for (;;) {
      const line = await this.input.readLine(limits.command_line, this.commandTimeoutMs());
      if (line.kind === 'eof') return;
      if (line.kind === 'timeout') {
        await this.writeReply(reply(421, `4.4.2 ${this.ctx.hostname} Error: timeout exceeded`));
        return;
      }
      this.current = '';
      if (line.kind === 'toolong') {
        await this.error(reply(500, '5.5.2 Error: line too long'));
        continue;
      }
      if (++this.commands > limits.commands) {
        await this.writeReply(reply(421, `4.7.0 ${this.ctx.hostname} Error: too many commands`));
        return;
      }
      if (line.bareLf) await this.doorFail('bare_lf', 'command line ended by a bare LF');
      if (isNonSmtp(line.text)) await this.doorFail('non_smtp', `"${line.text.slice(0, 60)}"`);
      const cmd = parseCommand(line.text);
      this.current = cmd.verb;
      if (this.enforced && cmd.verb !== 'QUIT') {
        await this.reply(this.enforced);
        continue;
      }
      if (CONTROL.test(line.text)) {
        await this.refuseControl(line.text);
        continue;
      }
      if (await this.dispatch(cmd, line.raw)) return;
    }
  }

  /** A command line with a control character: 501 5.5.2, logged with the limit's name (the line itself is not logged). */
  private async refuseControl(text: string): Promise<void> {
    const at = text.search(CONTROL);
    const byte = `0x${text.charCodeAt(at).toString(16).padStart(2, '0')}`;
    this.log.info({ limit: 'control_characters', command: this.current, byte, offset: at }, `command refused: control character ${byte} (limit: control_characters)`);
    await this.error(reply(501, '5.5.2 Error: control characters are not allowed in commands'));
  }

  /** Handle one command; true when the session is over. */
  private async dispatch(cmd: Command, raw: Buffer): Promise<boolean> {
    switch (cmd.verb) {
      case 'EHLO':
      case 'HELO':
        await this.helo(cmd);
        return false;
      case 'MAIL':
        await this.mail(cmd, raw);
        return false;
      case 'RCPT':
        await this.rcpt(cmd, raw);
        return false;
      case 'DATA':
        await this.data(cmd);
        return false;
      case 'BDAT':
        await this.bdat(cmd);
        return false;
      case 'RSET':
        if (cmd.arg) return this.error(reply(501, '5.5.4 Syntax: RSET')).then(() => false);
        await this.resetTransaction();
        await this.reply(reply(250, '2.0.0 Ok'));
        return false;
      case 'NOOP':
        await this.reply(reply(250, '2.0.0 Ok'));
        return false;
      case 'QUIT':
        await this.reply(reply(221, '2.0.0 Bye'));
        return true;
      case 'HELP':
        await this.reply(reply(214, '2.0.0 See RFC 5321'));
        return false;
      case 'VRFY':
        // Never confirms or denies an address: no recipient harvesting through the gate.
        if (!cmd.arg) return this.error(reply(501, '5.5.4 Syntax: VRFY address')).then(() => false);
        await this.reply(reply(252, '2.5.2 Cannot VRFY user; send mail and the recipient will be checked'));
        return false;
      case 'EXPN':
        await this.reply(reply(502, '5.5.1 Error: EXPN is disabled'));
        return false;
      case 'STARTTLS':
        await this.starttls(cmd);
        return false;
      case 'AUTH':
        await this.auth(cmd, raw);
        return false;
      case 'XFORWARD':
        if (!this.forwarder) return this.error(reply(502, '5.5.2 Error: command not recognized')).then(() => false);
        await this.xforward(cmd);
        return false;
      default:
        await this.error(reply(502, '5.5.2 Error: command not recognized'));
        return false;
    }
  }

  private async helo(cmd: Command): Promise<void> {
    const name = cmd.arg.split(/\s+/)[0];
    if (!name) return this.error(reply(501, `5.5.4 Syntax: ${cmd.verb} hostname`));
    await this.resetTransaction();
    if (this.link.open) await this.link.quit(); // the backend met the previous HELO name
    this.greeting = cmd.verb === 'EHLO' ? 'EHLO' : 'HELO';
    this.env.helo = name;
    this.ownHelo = name;
    const connect = this.earlyVerdicts[0];
    this.earlyVerdicts = [connect, connect.then(() => this.evaluate('helo'))];
    this.ownEarlyVerdicts = this.earlyVerdicts;
    if (this.greeting === 'HELO') {
      await this.reply(reply(250, this.ctx.hostname));
      return;
    }
    const { cfg } = this.ctx;
    const lines = [this.ctx.hostname];
    if (cfg.pipelining) lines.push('PIPELINING');
    lines.push(`SIZE ${cfg.limits.message_size}`);
    lines.push(...cfg.extensions);
    if (this.ctx.tlsContext && !this.secure) lines.push('STARTTLS');
    if (cfg.auth === 'passthrough' && (this.secure || !cfg.auth_requires_tls)) lines.push(`AUTH ${cfg.auth_mechanisms.join(' ')}`);
    if (this.forwarder) lines.push('XFORWARD NAME ADDR PORT PROTO HELO IDENT SOURCE');
    await this.reply({ code: 250, lines });
  }

  private async mail(cmd: Command, raw: Buffer): Promise<void> {
    if (!this.greeting) return this.error(reply(503, '5.5.1 Error: send HELO/EHLO first'));
    if (this.inTransaction) return this.error(reply(503, '5.5.1 Error: nested MAIL command'));
    const path = parsePath(cmd.arg, 'FROM');
    if (!path) return this.error(reply(501, '5.5.4 Syntax: MAIL FROM:<address>'));
    const size = path.params.get('SIZE');
    if (size !== undefined) {
      if (!/^\d{1,20}$/.test(size)) return this.error(reply(501, '5.5.4 Bad SIZE parameter'));
      if (Number(size) > this.ctx.cfg.limits.message_size) {
        await this.reply(reply(552, '5.3.4 Message size exceeds fixed limit'));
        return;
      }
    }
    const relay = this.ctx.relay;
    if (relay) {
      if (relay.first) await relay.first;
      if (relay.refusal) return void (await this.reply(this.relayRefused(relay)));
    }
    if (this.forwarded.has('ADDR')) this.adoptForwarded();
    // Rejections decided at connect/HELO are given here, as smtpd_delay_reject does.
    if (this.earlyPassed !== this.earlyVerdicts) {
      const early = this.earlyVerdicts;
      for (const verdict of early) {
        const refusal = this.refusal(await verdict);
        if (refusal) {
          await this.reply(refusal);
          return;
        }
      }
      this.earlyPassed = early;
    }
    await this.identify();
    this.declaredSize = size === undefined ? undefined : Number(size);
    this.env.from = path.address;
    this.env.rcpts = [];
    const refusal = this.refusal(await this.evaluate('mail'));
    if (refusal) {
      this.env.from = undefined;
      await this.reply(refusal);
      return;
    }
    let r: Reply;
    const reused = this.link.open;
    const line = this.signedSender(path) ?? raw;
    try {
      try {
        r = await this.startBackend(line);
      } catch (e) {
        // A kept connection the backend closed while idle: one fresh try.
        if (!(reused && isBackendError(e) && e.kind !== 'timeout')) throw e;
        this.link.close();
        r = await this.startBackend(line);
      }
    } catch (e) {
      this.env.from = undefined;
      await this.reply(this.backendFault(e, '4.3.0', 'MAIL'));
      return;
    }
    if (r.code >= 200 && r.code < 300) this.inTransaction = true;
    else this.env.from = undefined;
    await this.reply(r);
  }

  /**
   * gate.outbound: the MAIL line with a BATV-signed sender, for an authenticated
   * or my_networks client whose sender is in batv.domains; undefined: send the client's line.
   */
  private signedSender(path: PathArg): Buffer | undefined {
    const out = this.ctx.outbound;
    if (!out || path.address === '') return undefined;
    if (this.env.saslUser === undefined && !out.myNetworks.has(this.env.clientIp)) return undefined;
    const signed = out.rewrite.sign(path.address);
    if (signed === undefined) return undefined;
    this.log.debug({ from: path.address, signed }, 'envelope sender signed (BATV)');
    return pathLine('MAIL', signed, path.params);
  }

  /** gate.outbound: the RCPT line without our BATV tag (the policy has judged the tagged address); undefined: the client's line. */
  private strippedRecipient(path: PathArg): Buffer | undefined {
    const bare = this.ctx.outbound?.rewrite.strip(path.address);
    return bare === undefined ? undefined : pathLine('RCPT', bare, path.params);
  }

  /** The backend connection opened (and the client introduced) if need be, then the client's MAIL line. */
  private startBackend(raw: Buffer): Promise<Reply> {
    const facts = this.facts();
    const opening = this.link.ensure(facts);
    return opening ? opening.then(() => this.link.mail(raw, facts)) : this.link.mail(raw, facts);
  }

  private async rcpt(cmd: Command, raw: Buffer): Promise<void> {
    if (!this.inTransaction) return this.error(reply(503, '5.5.1 Error: need MAIL command'));
    const path = parsePath(cmd.arg, 'TO');
    if (!path) return this.error(reply(501, '5.5.4 Syntax: RCPT TO:<address>'));
    if (this.accepted.length >= this.ctx.cfg.limits.recipients) {
      await this.reply(reply(452, '4.5.3 Error: too many recipients'));
      return;
    }
    if (!this.link.open) {
      await this.reply(reply(451, '4.4.2 Error: connection to the mail server was lost; try again later'));
      return;
    }
    this.env.rcpts = [...this.accepted, path.address];
    const refusal = this.refusal(await this.evaluate('rcpt'));
    if (refusal) {
      this.env.rcpts = [...this.accepted];
      await this.reply(refusal);
      return;
    }
    let r: Reply;
    try {
      r = await this.link.command(this.strippedRecipient(path) ?? raw);
    } catch (e) {
      this.env.rcpts = [...this.accepted];
      await this.reply(this.backendFault(e, '4.4.2', 'RCPT'));
      return;
    }
    if (r.code >= 200 && r.code < 300) this.accepted.push(path.address);
    this.env.rcpts = [...this.accepted];
    await this.reply(r);
  }

  private async data(cmd: Command): Promise<void> {
    if (!this.inTransaction) return this.error(reply(503, '5.5.1 Error: need MAIL command'));
    if (cmd.arg) return this.error(reply(501, '5.5.4 Syntax: DATA'));
    if (this.accepted.length === 0) return this.error(reply(554, '5.5.1 Error: no valid recipients'));
    if (!this.link.open) {
      await this.reply(reply(451, '4.4.2 Error: connection to the mail server was lost; try again later'));
      return;
    }
    const atData = this.refusal(await this.evaluate('data'));
    if (atData) {
      await this.reply(atData);
      return;
    }
    const limits = this.ctx.cfg.limits;
    // The message is held from here to the backend's answer, in one buffer charged to the gate's memory budget.
    const held = MessageBuffer.open(this.ctx.memory, this.declaredSize === undefined ? FIRST_BUFFER : this.declaredSize + SIZE_SLACK, limits.message_size);
    if (!held) {
      this.memoryFull('DATA', this.declaredSize ?? FIRST_BUFFER);
      await this.reply(NO_MEMORY);
      return;
    }
    try {
      await this.receive(held);
    } finally {
      held.release();
    }
  }

  /** After DATA was accepted: 354, the message, the checks, the backend. */
  private async receive(held: MessageBuffer): Promise<void> {
    if (!(await this.reply(reply(354, 'End data with <CR><LF>.<CR><LF>')))) return;

    const limits = this.ctx.cfg.limits;
    this.link.startKeepalive();
    const d = await this.input.readData({ maxBytes: limits.message_size, lineLimit: limits.data_line, timeoutMs: this.dataTimeoutMs(), into: held });
    this.link.stopKeepalive();
    if (d.kind === 'eof') throw new EndSession();
    if (d.kind === 'timeout') {
      await this.writeReply(reply(421, `4.4.2 ${this.ctx.hostname} Error: timeout exceeded`));
      throw new EndSession();
    }
    const endOfData = async (r: Reply): Promise<void> => {
      await this.resetTransaction();
      await this.reply(r, true);
    };
    if (d.bareLf || d.bareCr) await this.doorFail('bare_lf', `message with a bare ${d.bareLf ? 'LF' : 'CR'}${d.bareLf && d.bareCr ? ' and a bare CR' : ''}`);
    if (this.enforced) return endOfData(this.enforced);
    if (d.tooBig) return endOfData(reply(552, '5.3.4 Error: message file too big'));
    if (d.overBudget) {
      this.memoryFull('end of DATA', d.size);
      return endOfData(NO_MEMORY);
    }
    if (d.longLine) return endOfData(reply(554, `5.6.0 Error: message has a line longer than ${limits.data_line} characters`));

    this.env.message = d.message;
    const v = await this.evaluate('eom');
    this.env.message = undefined;
    const refusal = this.refusal(v);
    if (refusal) return endOfData(refusal);

    const message = this.withoutForgedHeaders(d.message);
    const headers = v.headers.length > 0 ? [...v.headers] : [...this.stageHeaders];
    // RFC 5321 §4.4: a trace line goes on top, above the results it covers.
    if (this.link.mode === 'none') headers.unshift(this.received());
    let r: Reply;
    try {
      r = await this.link.data(prependHeaders(message, headers));
    } catch (e) {
      return endOfData(this.backendFault(e, '4.4.2', 'end of DATA'));
    }
    if (this.log.isLevelEnabled('info')) {
      this.infoLine(
        { from: this.env.from, rcpts: this.accepted, size: d.size, backend: replyText(r) },
        r.code >= 200 && r.code < 300 ? 'message passed to the backend' : 'backend refused the message',
      );
    }
    if (r.code >= 200 && r.code < 300) this.ctx.stats.relayed++;
    else this.ctx.stats.backendRefused++;
    // The backend's transaction ended with its reply, whatever it was.
    this.inTransaction = false;
    return endOfData(r);
  }

  /**
   * BDAT, though CHUNKING is not offered: its chunk is read and thrown away
   * (RFC 3030), so a message sent this way is never read as commands (SMTP
   * smuggling through BDAT). A chunk that cannot be skipped safely (no size,
   * or larger than a message may be) ends the session.
   */
  private async bdat(cmd: Command): Promise<void> {
    const m = /^(\d{1,20})(?:\s+LAST)?$/i.exec(cmd.arg);
    const limit = this.ctx.cfg.limits.message_size;
    if (!m || Number(m[1]) > limit) {
      this.log.info({ limit: 'bdat_without_chunking', arg: cmd.arg.slice(0, 40) }, 'BDAT chunk that cannot be skipped: closing');
      await this.writeReply(m ? reply(552, '5.3.4 Error: message size exceeds fixed limit') : reply(501, '5.5.4 Syntax: BDAT size [LAST]'));
      throw new EndSession();
    }
    const skipped = await this.input.skip(Number(m[1]), this.dataTimeoutMs());
    if (skipped === 'eof') throw new EndSession();
    if (skipped === 'timeout') {
      await this.writeReply(reply(421, `4.4.2 ${this.ctx.hostname} Error: timeout exceeded`));
      throw new EndSession();
    }
    await this.error(reply(502, '5.5.1 Error: command not implemented (CHUNKING is not offered); chunk discarded'));
  }

  /** The log line of a message refused for the memory budget (a limit hit). */
  private memoryFull(at: string, bytes: number): void {
    const m = this.ctx.memory;
    this.log.info(
      { limit: 'memory_mb', at, bytes, usedBytes: m.used, limitBytes: m.limit },
      `message memory budget full (limit: memory_mb ${Math.round(m.limit / 1048576)}): 452 4.3.1 at ${at}`,
    );
  }

  /** The message without incoming copies of the result headers we write (RFC 8601 §5); logged when there were any. */
  private withoutForgedHeaders(message: Buffer): Buffer {
    const own = this.ctx.policy.ownHeaders;
    if (!own) return message;
    const s = stripOwnHeaders(message, own);
    if (s.removed.length > 0) this.log.info({ removed: s.removed, authservId: own.authservId }, 'removed forged result headers');
    return s.message;
  }

  private async starttls(cmd: Command): Promise<void> {
    const context = this.ctx.tlsContext;
    if (!context) return this.error(reply(502, '5.5.1 Error: command not implemented'));
    if (this.secure) return this.error(reply(503, '5.5.1 Error: TLS already active'));
    if (cmd.arg) return this.error(reply(501, '5.5.4 Syntax: STARTTLS'));
    // Stop reading before answering, so the handshake bytes stay in the socket;
    // plaintext sent after STARTTLS is dropped (no command injection).
    const injected = this.input.pending > 0;
    if (injected) await this.doorFail('pipelining', 'commands sent after STARTTLS before the handshake');
    if (this.enforced) return void (await this.reply(this.enforced));
    this.input.detach();
    await this.writeReply(reply(220, '2.0.0 Ready to start TLS'));
    const plain = this.socket;
    const secure = new tls.TLSSocket(plain, { isServer: true, secureContext: context });
    secure.on('error', () => undefined);
    const ok = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), this.commandTimeoutMs());
      secure.once('secure', () => {
        clearTimeout(timer);
        resolve(true);
      });
      secure.once('error', (e) => {
        clearTimeout(timer);
        this.log.info({ err: e.message }, 'TLS handshake failed');
        resolve(false);
      });
      secure.once('close', () => {
        clearTimeout(timer);
        resolve(false);
      });
    });
    if (!ok) {
      secure.destroy();
      throw new EndSession();
    }
    this.socket = secure;
    secure.on('close', () => {
      this.closed = true;
    });
    this.input.attach(secure);
    this.secure = true;
    // RFC 3207: forget everything learnt before the handshake.
    await this.resetTransaction();
    if (this.link.open) await this.link.quit();
    this.greeting = undefined;
    this.env.helo = undefined;
    this.env.saslUser = undefined;
    this.env.attrs = { ...this.env.attrs, tls: 'yes' };
  }

  private async auth(cmd: Command, raw: Buffer): Promise<void> {
    const { cfg } = this.ctx;
    if (cfg.auth === 'refuse') return this.error(reply(503, '5.5.1 Error: authentication not enabled'));
    if (this.greeting !== 'EHLO') return this.error(reply(503, '5.5.1 Error: send EHLO first'));
    if (!this.secure && cfg.auth_requires_tls) return this.error(reply(538, '5.7.11 Encryption required for requested authentication mechanism'));
    if (this.env.saslUser !== undefined) return this.error(reply(503, '5.5.1 Error: already authenticated'));
    if (this.inTransaction) return this.error(reply(503, '5.5.1 Error: MAIL transaction in progress'));
    const [mech, initial] = cmd.arg.split(/\s+/);
    const mechanism = (mech ?? '').toUpperCase();
    if (!cfg.auth_mechanisms.includes(mechanism)) return this.error(reply(504, '5.5.4 Unrecognized authentication type'));
    try {
      await this.identify();
      await this.link.ensure(this.facts());
      if (!this.link.extensions.has('AUTH')) {
        this.log.warn('auth: passthrough is configured but the backend offers no AUTH');
        await this.reply(reply(454, '4.7.0 Temporary authentication failure'));
        return;
      }
      let user = initial && initial !== '=' ? saslUser(mechanism, initial, 0) : undefined;
      let r = await this.link.command(raw);
      let step = initial ? 1 : 0;
      while (r.code === 334) {
        if (!(await this.reply(r))) return;
        const line = await this.input.readLine(cfg.limits.command_line, this.commandTimeoutMs());
        if (line.kind === 'eof') throw new EndSession();
        if (line.kind === 'timeout') {
          await this.writeReply(reply(421, `4.4.2 ${this.ctx.hostname} Error: timeout exceeded`));
          throw new EndSession();
        }
        // A control character in a SASL answer: cancel the exchange ("*") rather than pass it on.
        const answer = line.kind === 'line' && !CONTROL.test(line.text) ? line.raw : Buffer.from('*');
        user ??= line.kind === 'line' ? saslUser(mechanism, line.text, step) : undefined;
        step++;
        r = await this.link.command(answer);
      }
      if (r.code === 235) {
        this.env.saslUser = user ?? 'unknown';
        this.log.info({ user: this.env.saslUser }, 'authenticated by the backend');
        await this.reply(r);
      } else await this.error(r);
    } catch (e) {
      if (e instanceof EndSession) throw e;
      await this.reply(this.backendFault(e, '4.7.0', 'AUTH'));
    }
  }

  /** XFORWARD from a trusted proxy: who the next transaction's client really is. */
  private async xforward(cmd: Command): Promise<void> {
    if (this.inTransaction) return this.error(reply(503, '5.5.1 Error: MAIL transaction in progress'));
    const attrs = parseXforward(cmd.arg);
    if (!attrs) return this.error(reply(501, '5.5.4 Bad XFORWARD command syntax'));
    const addr = attrs.get('ADDR');
    if (addr !== undefined && !isUnavailable(addr)) {
      try {
        attrs.set('ADDR', normaliseIp(addr));
      } catch {
        return this.error(reply(501, '5.5.4 Bad XFORWARD address'));
      }
    }
    for (const [k, v] of attrs) this.forwarded.set(k, v);
    await this.reply(reply(250, '2.0.0 Ok'));
  }

  /** Judge the forwarded client from now until the transaction ends. */
  private adoptForwarded(): void {
    const f = this.forwarded;
    const addr = f.get('ADDR');
    if (addr === undefined || isUnavailable(addr)) return;
    this.adopted = true;
    this.env.clientIp = addr;
    this.clientPort = Number(f.get('PORT')) || 0;
    const helo = f.get('HELO');
    this.env.helo = isUnavailable(helo) ? this.env.helo : helo;
    const name = f.get('NAME');
    this.clientName = { name: isUnavailable(name) ? undefined : name, tempFail: name === '[TEMPUNAVAIL]' };
    this.nameLookup = Promise.resolve(this.clientName);
    this.env.clientPtr = this.clientName.name;
    this.env.attrs = { ...this.env.attrs, client_port: String(this.clientPort), forwarded_by: this.peer.ip };
    this.tx = this.ctx.policy.transaction({ seesMessage: true });
    const connect = this.evaluate('connect');
    this.earlyVerdicts = [connect, connect.then(() => this.evaluate('helo'))];
    this.log.debug({ forwarded: Object.fromEntries(f) }, 'judging the client forwarded by XFORWARD');
  }

  /** The client's verified name, once looked up (at once when it was taken from this lookup before). */
  private identify(): Promise<void> | undefined {
    const lookup = this.nameLookup;
    if (this.identified === lookup) return undefined;
    return lookup.then((name) => {
      this.clientName = name;
      if (name.name) this.env.clientPtr = name.name;
      this.identified = lookup;
    });
  }

  // ---------------------------------------------------------------- policy

  private async evaluate(stage: Stage): Promise<Verdict> {
    const env: Envelope = { ...this.env, rcpts: [...this.env.rcpts] };
    let v: Verdict;
    try {
      v = await this.tx.evaluate(stage, env);
    } catch (e) {
      // A bug or outage in the policy is a fault: 4xx, never 5xx.
      this.log.error({ err: e, stage }, 'policy evaluation failed');
      v = { action: 'defer', code: 451, status: '4.3.0', text: 'Temporary failure in policy evaluation', headers: [], rule: 'gate:fault', stage, evidence: [] };
    }
    if (v.headers.length > 0) this.stageHeaders = v.headers;
    const decided = v.action !== 'continue' || stage === 'eom';
    const level = decided ? 'info' : 'debug';
    if (this.log.isLevelEnabled(level)) {
      const fields = { stage, action: v.action, rule: v.rule, code: v.code, text: v.text, evidence: v.evidence, wouldHave: v.wouldHave };
      if (level === 'info') this.infoLine(fields, 'verdict');
      else this.log.debug(fields, 'verdict');
    }
    if (decided) this.emit(v, env);
    return v;
  }

  /**
   * An info line written on every message: built directly (infoLine) rather
   * than through pino's generic path. Fields JSON cannot write (evidence is
   * plain data, so never expected) go through pino's safe serialiser instead.
   */
  private infoLine(fields: Record<string, unknown>, msg: string): void {
    try {
      infoLine(this.log, fields, msg);
    } catch {
      this.log.info(fields, msg);
    }
  }

  /** The reply that refuses the command for this verdict, or undefined when the dialogue goes on. */
  private refusal(v: Verdict): Reply | undefined {
    switch (v.action) {
      case 'reject':
        return verdictReply(v.code ?? 554, v.status ?? '5.7.1', v.text ?? 'Rejected by policy');
      case 'defer':
        return verdictReply(v.code ?? 450, v.status ?? '4.7.1', v.text ?? 'Try again later');
      case 'tarpit':
        this.startTarpit();
        return verdictReply(v.code ?? 450, v.status ?? '4.7.1', v.text ?? 'Try again later');
      default:
        return undefined;
    }
  }

  private startTarpit(): void {
    if (this.tarpitted) return;
    const key = this.ctx.clientKey(this.env.clientIp);
    const got = this.ctx.tarpit.acquire(key);
    if (got === true) {
      this.tarpitted = true;
      this.tarpitKey = key;
      this.log.info('tarpitted');
    } else if (got === 'full') this.log.info({ limit: 'tarpit.max_clients' }, 'tarpit full: plain replies');
    else this.log.info({ limit: 'tarpit.max_per_client', key }, `tarpit: ${key} holds its share of the slots: plain replies`);
  }

  private emit(v: Verdict, env: Envelope = this.env): void {
    try {
      this.ctx.onEvent?.(v, env);
    } catch (e) {
      this.log.error({ err: e }, 'onEvent handler failed');
    }
  }

  // ---------------------------------------------------------------- backend

  private facts(): ClientFacts {
    return {
      ip: this.env.clientIp,
      port: this.clientPort,
      name: this.clientName.name,
      nameTempFail: this.clientName.tempFail,
      reverseName: this.clientName.reverseName,
      helo: this.env.helo,
      proto: this.greeting === 'EHLO' ? 'ESMTP' : 'SMTP',
      login: this.env.saslUser,
      ident: this.id,
      destIp: this.peer.localIp,
      destPort: this.peer.localPort,
    };
  }

  /** The backend relays for outsiders (relay self-test): no MAIL goes to it. */
  private relayRefused(relay: RelayGuard): Reply {
    const r = relay.refusal as Reply;
    this.log.warn({ reason: relay.reason }, 'MAIL refused: the backend failed the relay self-test');
    this.emit({
      action: 'defer',
      code: r.code,
      status: '4.3.0',
      text: 'the backend relays for outside clients',
      headers: [],
      rule: 'gate:relay-test',
      stage: 'mail',
      evidence: [{ check: 'relay_self_test', result: 'fail', detail: relay.reason ?? '', ms: 0 }],
    });
    return r;
  }

  private backendFault(e: unknown, status: string, during: string): Reply {
    if (!isBackendError(e)) throw e;
    this.link.close();
    this.inTransaction = false;
    this.accepted = [];
    this.env.from = undefined;
    this.env.rcpts = [];
    // An identity fault was logged (error, naming the setting to change) where the link met it.
    if (e.kind !== 'identity') this.log.warn({ during, kind: e.kind, err: e.message }, 'backend fault: client gets 4xx');
    this.emit({
      action: 'defer',
      code: 451,
      status,
      text: 'mail server unavailable',
      headers: [],
      rule: 'gate:backend',
      stage: during === 'MAIL' ? 'mail' : during === 'RCPT' ? 'rcpt' : 'eom',
      evidence: [{ check: 'backend', result: 'temperror', detail: e.message, ms: 0 }],
    });
    return reply(451, `${status} Error: the mail server is not available; try again later`);
  }

  private received(): [string, string] {
    return receivedHeader({
      helo: this.env.helo,
      name: this.clientName.name,
      ip: this.env.clientIp,
      by: this.ctx.hostname,
      proto: `${this.greeting === 'EHLO' ? 'ESMTP' : 'SMTP'}${this.secure ? 'S' : ''}${this.env.saslUser ? 'A' : ''}`,
      id: this.id,
      rcpt: this.accepted.length === 1 ? this.accepted[0] : undefined,
      date: new Date(),
    });
  }

  /** Forget the client's transaction; end the backend's if one was open. */
  private async resetTransaction(): Promise<void> {
    const backendHadOne = this.inTransaction;
    this.inTransaction = false;
    this.accepted = [];
    this.declaredSize = undefined;
    this.env.from = undefined;
    this.env.rcpts = [];
    this.env.message = undefined;
    this.stageHeaders = [];
    this.tx = this.ctx.policy.transaction({ seesMessage: true });
    if (this.forwarded.size > 0) this.forwarded = new Map();
    if (this.adopted) {
      // Back to the peer itself until the next XFORWARD.
      this.adopted = false;
      this.env.clientIp = this.peer.ip;
      this.env.helo = this.ownHelo;
      this.env.clientPtr = undefined;
      this.clientPort = this.peer.port;
      this.clientName = { tempFail: false };
      this.nameLookup = this.ownNameLookup;
      this.identified = undefined;
      this.earlyVerdicts = this.ownEarlyVerdicts;
    }
    if (backendHadOne) await this.link.rset();
  }

  // ---------------------------------------------------------------- output

  private mayPipeline(afterData: boolean): boolean {
    if (afterData || this.current === 'QUIT') return true;
    return this.ctx.cfg.pipelining && this.greeting === 'EHLO' && GROUP_MIDDLE.has(this.current);
  }

  /**
   * Answer the current command. A client that already sent more than it was
   * allowed to before this reply fails the pipelining test; with `enforce`
   * it gets the refusal instead. Returns false when `r` was not sent.
   */
  private reply(r: Reply, afterData = false): boolean | Promise<boolean> {
    if (this.input.pending > 0 && !this.enforced && !this.mayPipeline(afterData)) return this.replyAfterReadAhead(r);
    // Nearly every reply: written at once, no promise.
    const writing = this.writeReply(r);
    return writing ? writing.then(() => true) : true;
  }

  private async replyAfterReadAhead(r: Reply): Promise<boolean> {
    let sent = r;
    await this.doorFail('pipelining', `${this.current || 'a line'} followed by more input before its reply`);
    if (this.enforced) sent = this.enforced;
    await this.writeReply(sent);
    return sent === r;
  }

  /** A reply to a client error; too many of them end the session. */
  private async error(r: Reply): Promise<void> {
    if (++this.errors > this.ctx.cfg.limits.errors) {
      await this.writeReply(reply(421, `4.7.0 ${this.ctx.hostname} Error: too many errors`));
      throw new EndSession();
    }
    await this.reply(r);
  }

  /** Write `r`: at once (undefined), or a byte at a time when tarpitted (a promise). */
  private writeReply(r: Reply): Promise<void> | undefined {
    if (!this.tarpitted) {
      this.write(formatReply(r));
      return undefined;
    }
    return this.stutterReply(r);
  }

  private async stutterReply(r: Reply): Promise<void> {
    const { stutter_ms, max_line_ms } = this.ctx.cfg.tarpit;
    for (const line of replyLines(r)) {
      await stutter((s) => this.write(s), () => !this.closed, line, stutter_ms, max_line_ms);
    }
  }

  private write(s: string): boolean {
    if (this.closed || this.socket.destroyed) return false;
    return this.socket.write(s);
  }

  private async finish(): Promise<void> {
    this.input.close();
    if (this.doorTested && !this.doorFailed && this.commands > 0) this.ctx.door.pass(this.peer.ip);
    if (this.tarpitted) this.ctx.tarpit.release(this.tarpitKey);
    this.tarpitted = false;
    await this.link.quit().catch(() => undefined);
    if (!this.socket.destroyed) this.socket.end();
    const s = this.socket;
    setTimeout(() => s.destroy(), 2000).unref();
  }
}

/** The login name in a SASL response: PLAIN's authcid, LOGIN's first answer. */
function saslUser(mechanism: string, b64: string, step: number): string | undefined {
  let text: string;
  try {
    text = Buffer.from(b64.trim(), 'base64').toString('utf8');
  } catch {
    return undefined;
  }
  if (mechanism === 'PLAIN') return text.split('\0')[1] || undefined;
  if (mechanism === 'LOGIN' && step === 0) return text || undefined;
  return undefined;
}
