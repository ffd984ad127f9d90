// The milter listener: TCP or a unix socket, one MilterSession per MTA
// connection, a cap on connections (one over it is closed at once, and the
// MTA applies milter_default_action), and a graceful close.

import cluster from 'node:cluster';
import net from 'node:net';
import { chmod } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { Envelope, Verdict } from '../core/types.js';
import { removeStaleSocket } from '../core/unix-socket.js';
import { BODY_CHUNK } from './protocol.js';
import { MilterSession, type SessionStats } from './session.js';
import { formatMilterAddress, type MilterAddress } from './listen-address.js';
import type { MilterPolicy } from './policy-port.js';

export interface MilterServerOptions {
  policy: MilterPolicy;
  logger: Logger;
  /** Body bytes read per message (milter.max_body). */
  maxBody: number;
  /** Header fields and header bytes per message; more is refused 552 5.3.4. */
  maxHeaders?: number;
  maxHeaderBytes?: number;
  /** Simultaneous MTA connections (milter.max_connections). */
  maxConnections?: number;
  /** milter.idle_timeout_s. */
  idleTimeoutS?: number;
  /** milter.decision_timeout_ms: below Postfix's milter_command_timeout (30 s). */
  decisionTimeoutMs?: number;
  onDecision?: (verdict: Verdict, env: Envelope, sessionId: string | undefined) => void;
}

/**
 * The largest packet: a body chunk (65535 bytes, the protocol's cap when no
 * larger size was agreed) or a header field (Postfix cuts a header at
 * header_size_limit, 102400 bytes), with room for the command and NULs.
 */
export const MAX_PACKET = 128 * 1024;
export const DEFAULTS = { maxHeaders: 1000, maxHeaderBytes: 1024 * 1024, maxConnections: 500, idleTimeoutS: 3600, decisionTimeoutMs: 25_000 } as const;

export interface MilterServerStats extends SessionStats {
  connections: number;
  refusedConnections: number;
  open: number;
}

export interface RunningMilter {
  /** Where it listens, as `inet:host:port` (the real port) or `unix:/path`. */
  address: string;
  stats: MilterServerStats;
  close(graceMs?: number): Promise<void>;
}

export async function startMilter(where: MilterAddress, opts: MilterServerOptions): Promise<RunningMilter> {
  if (BODY_CHUNK + 1 > MAX_PACKET) throw new Error('MAX_PACKET below a body chunk');
  const stats: MilterServerStats = { connections: 0, refusedConnections: 0, open: 0, messages: 0, refused: 0, faults: 0, protocolErrors: 0 };
  const sessions = new Set<MilterSession>();
  const maxConnections = opts.maxConnections ?? DEFAULTS.maxConnections;
  const sessionOpts = {
    policy: opts.policy,
    logger: opts.logger,
    limits: { maxBody: opts.maxBody, maxHeaders: opts.maxHeaders ?? DEFAULTS.maxHeaders, maxHeaderBytes: opts.maxHeaderBytes ?? DEFAULTS.maxHeaderBytes },
    maxPacket: MAX_PACKET,
    decisionTimeoutMs: opts.decisionTimeoutMs ?? DEFAULTS.decisionTimeoutMs,
    idleTimeoutMs: (opts.idleTimeoutS ?? DEFAULTS.idleTimeoutS) * 1000,
    onDecision: opts.onDecision,
  };
  let closing = false;
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    if (closing) return void socket.destroy();
    stats.connections++;
    if (sessions.size >= maxConnections) {
      stats.refusedConnections++;
      opts.logger.warn({ limit: 'max_connections', maxConnections }, 'milter connection limit reached: closing a new connection (the MTA applies milter_default_action)');
      socket.destroy();
      return;
    }
    const session = new MilterSession(socket, sessionOpts, stats);
    sessions.add(session);
    stats.open = sessions.size;
    void session.closed.then(() => {
      sessions.delete(session);
      stats.open = sessions.size;
    });
  });
  server.on('error', (err) => opts.logger.error({ err }, 'milter server error'));
  // In a cluster worker the socket is the primary's, shared by every worker.
  if (where.kind === 'unix' && !cluster.isWorker) await removeStaleSocket(where.path);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(where.kind === 'unix' ? { path: where.path } : { host: where.host, port: where.port }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  if (where.kind === 'unix') await chmod(where.path, 0o660);
  const bound = server.address();
  const address = where.kind === 'unix' || bound === null || typeof bound === 'string' ? formatMilterAddress(where) : formatMilterAddress({ kind: 'inet', host: bound.address, port: bound.port });
  return {
    address,
    stats,
    async close(graceMs = 5000) {
      closing = true;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of sessions) s.closeWhenIdle();
      const timer = setTimeout(() => {
        for (const s of sessions) s.destroy();
      }, graceMs);
      timer.unref();
      await Promise.all([closed, ...[...sessions].map((s) => s.closed)]);
      clearTimeout(timer);
    },
  };
}
