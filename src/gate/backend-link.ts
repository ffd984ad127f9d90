// One client session's link to the backend MTA: opened when the client starts
// its first transaction (or AUTH), identified as the real client as
// gate.backend_identity says (backend-identity.ts), reused for the session's later transactions, kept alive with
// NOOP while the client sends DATA. Every failure is a BackendError and leaves
// the link closed; the next transaction opens a new one.

import type { Logger } from 'pino';
import { BackendConnection, BackendError, isBackendError } from './backend.js';
import { expect, introduce, type BackendIdentity, type ForwardMode } from './backend-identity.js';
import type { GateConfig } from './config.js';
import { xforwardCommand, type ClientFacts } from './forward.js';
import { formatHostPort, type HostPort } from './host-port.js';
import type { Reply } from './reply.js';

export class BackendLink {
  private conn: BackendConnection | undefined;
  /** Made once and restarted for each message: a timer per message was a cost of every message. */
  private keepaliveTimer: NodeJS.Timeout | undefined;
  private keepaliveOn = false;
  /** Who the backend was told the client is (XCLIENT happens once per connection). */
  private introduced = '';
  mode: ForwardMode = 'none';

  constructor(
    private readonly address: HostPort,
    private readonly opts: GateConfig['backend_options'],
    private readonly identity: BackendIdentity,
    private readonly hostname: string,
    private readonly logger: Logger,
  ) {}

  get open(): boolean {
    return this.conn !== undefined && !this.conn.closed;
  }

  /** The backend's EHLO keywords (after the client was introduced). */
  get extensions(): Map<string, string> {
    return this.conn?.extensions ?? new Map();
  }

  /** Open the connection and introduce the client, unless already open (then at once, without a promise). */
  ensure(facts: ClientFacts): Promise<void> | undefined {
    if (this.open && this.mode !== 'xclient') return undefined;
    const who = `${facts.ip} ${facts.port} ${facts.helo ?? ''} ${facts.name ?? ''}`;
    if (this.open && who === this.introduced) return undefined;
    return this.reopen(facts, who);
  }

  private async reopen(facts: ClientFacts, who: string): Promise<void> {
    // A client forwarded by a trusted proxy changed: XCLIENT it afresh on a new connection.
    if (this.open) await this.quit();
    this.conn = undefined;
    const conn = await BackendConnection.open({
      host: this.address.host,
      port: this.address.port,
      connectTimeoutMs: this.opts.connect_timeout_ms,
      commandTimeoutMs: this.opts.command_timeout_s * 1000,
    });
    try {
      this.mode = await introduce(conn, this.identity, facts, this.hostname, formatHostPort(this.address.host, this.address.port));
    } catch (e) {
      conn.destroy();
      // One error line for every connection attempt the backend cannot be told the client on.
      if (isBackendError(e) && e.kind === 'identity') this.logger.error({ backend: formatHostPort(this.address.host, this.address.port) }, e.message);
      throw e;
    }
    this.conn = conn;
    this.introduced = who;
    this.logger.debug({ backend: `${this.address.host}:${this.address.port}`, mode: this.mode }, 'backend connection open');
  }

  /** Start a transaction: XFORWARD (when that is the mode) then the client's MAIL line as sent. */
  mail(line: Buffer, facts: ClientFacts): Promise<Reply> {
    let conn: BackendConnection;
    try {
      conn = this.connection();
    } catch (e) {
      return Promise.reject(e);
    }
    const cmd = this.mode === 'xforward' ? xforwardCommand(conn.extensions.get('XFORWARD') ?? '', facts) : undefined;
    return cmd ? this.forwardThenMail(conn, cmd, line) : conn.command(line);
  }

  private async forwardThenMail(conn: BackendConnection, cmd: string, line: Buffer): Promise<Reply> {
    if (conn.extensions.has('PIPELINING')) {
      const [x, m] = await conn.pipeline([cmd, line]);
      expect(x, 250, 'XFORWARD');
      return m;
    }
    expect(await conn.command(cmd), 250, 'XFORWARD');
    return conn.command(line);
  }

  /** Any other command line, relayed as sent. */
  command(line: Buffer | string): Promise<Reply> {
    return this.connection().command(line);
  }

  /**
   * The message (its parts, in order) to the backend: one `BDAT n LAST` when it offers CHUNKING,
   * else DATA, the message and the final dot. The backend's final reply (or
   * its refusal of DATA).
   */
  async data(message: Buffer[]): Promise<Reply> {
    const conn = this.connection();
    if (this.opts.chunking && conn.extensions.has('CHUNKING')) return conn.sendChunk(message, this.opts.data_timeout_s * 1000);
    const r = await conn.command('DATA');
    if (r.code !== 354) return r;
    return conn.sendMessage(message, this.opts.data_timeout_s * 1000);
  }

  /** End the backend's transaction after the client's was refused or reset. Failure closes the link. */
  async rset(): Promise<void> {
    if (!this.open) return;
    try {
      const r = await this.connection().command('RSET');
      if (r.code !== 250) this.close();
    } catch {
      this.close();
    }
  }

  /** NOOP now and then while the client is slow to send its message: every keepalive_s from now. */
  startKeepalive(): void {
    if (this.opts.keepalive_s <= 0) return;
    this.keepaliveOn = true;
    if (this.keepaliveTimer) {
      this.keepaliveTimer.refresh();
      return;
    }
    this.keepaliveTimer = setInterval(() => {
      if (!this.keepaliveOn || !this.open) return;
      this.connection()
        .command('NOOP')
        .catch(() => undefined);
    }, this.opts.keepalive_s * 1000);
    this.keepaliveTimer.unref();
  }

  stopKeepalive(): void {
    this.keepaliveOn = false;
  }

  close(): void {
    this.dropKeepalive();
    this.conn?.destroy();
    this.conn = undefined;
  }

  /** QUIT politely, then close. */
  async quit(): Promise<void> {
    this.dropKeepalive();
    const c = this.conn;
    this.conn = undefined;
    if (c) await c.quit();
  }

  private dropKeepalive(): void {
    this.keepaliveOn = false;
    clearInterval(this.keepaliveTimer);
    this.keepaliveTimer = undefined;
  }

  private connection(): BackendConnection {
    if (!this.conn || this.conn.closed) {
      throw new BackendError('closed', this.conn?.closeReason ?? 'backend connection is not open');
    }
    return this.conn;
  }
}
