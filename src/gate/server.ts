// The SMTP gate's listeners: the client port (each connection admitted by the
// connection limits, then run as a GateSession) and the optional trap port.

import net from 'node:net';
import os from 'node:os';
import tls from 'node:tls';
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { childLogger } from '../log.js';
import { systemClock, type Clock, type Envelope, type Verdict } from '../core/types.js';
import type { Resolver } from '../dns/types.js';
import { normaliseIp } from '../dns/reverse.js';
import { IpList } from '../checks/lists.js';
import { gateConfig, type GateConfig, type GateConfigInput } from './config.js';
import { DoorCache } from './door.js';
import { formatHostPort, parseHostPort } from './host-port.js';
import { ConnectionLimits } from './limits.js';
import { clientKeyer } from './client-key.js';
import type { GatePolicy } from './policy-port.js';
import { formatReply, reply } from './reply.js';
import { GateSession, type GateContext } from './session.js';
import { TarpitSlots } from './tarpit.js';
import { startTrap, type Trap } from './trap.js';
import { RelayGuard, type Scheduler } from './relay-test.js';
import { MessageMemory } from './memory-budget.js';
import { readProxyHeader } from './proxy-protocol.js';
import type { BatvRewriter } from '../checks/batv-rewrite.js';

export interface StartGateOptions {
  /** The whole config (its `gate` and `my_networks` are read) or just the gate section. */
  config: WholeConfig | GateConfigInput;
  policy: GatePolicy;
  logger: Logger;
  /** `host:port` to listen on; overrides gate.listen. */
  listen?: string;
  /** `host:port` of the MTA behind the gate; overrides gate.backend. */
  backend?: string;
  /** Every decision the gate acts on (policy verdicts, door tests, backend faults). */
  onEvent?: (verdict: Verdict, env: Envelope) => void;
  /** A client connected to the trap listener; `cidr` is what to ban (its address, or its IPv6 /64 as limits.ipv6_prefix). */
  onTrap?: (ip: string, cidr: string) => void;
  /** For the client name given to the backend (XCLIENT NAME) and the envelope's clientPtr. */
  resolver?: Resolver;
  clock?: Clock;
  /** Timers of the hourly relay self-test (tests inject their own). */
  scheduler?: Scheduler;
  /** BATV's rewrites, for gate.outbound (required by it). */
  batv?: BatvRewriter;
}

export interface RunningGate {
  /** `host:port` the gate listens on (the real port when 0 was asked for). */
  address: string;
  port: number;
  trapAddress?: string;
  /** Sessions open now. */
  readonly connections: number;
  /** The relay self-test (backend_identity xclient); undefined in the other modes. */
  relay?: RelayGuard;
  /** Counts since start, for /metrics. */
  readonly stats: GateStats;
  close(): Promise<void>;
}

/** Plain counts the gate keeps for /metrics (src/report/metrics/). */
export interface GateStats {
  /** Client connections accepted on the listener (before the connection limits). */
  connections: number;
  /** Connections refused by a connection limit (421), by limit. */
  refusedByLimit: Record<string, number>;
  /** Door tests failed, by test and by what was done (enforce, drop, ignore). */
  doorFailures: Record<string, number>;
  /** Messages the backend took (2xx at the end of DATA); refused by it (4xx/5xx). */
  relayed: number;
  backendRefused: number;
}

/** The parts of the main config the gate reads. */
export interface WholeConfig {
  gate?: GateConfigInput;
  my_networks?: readonly string[];
}

function isWholeConfig(c: StartGateOptions['config']): c is WholeConfig {
  return typeof c === 'object' && c !== null && ('gate' in c || 'my_networks' in c);
}

export async function startGate(opts: StartGateOptions): Promise<RunningGate> {
  const whole: WholeConfig = isWholeConfig(opts.config) ? opts.config : { gate: opts.config };
  const cfg = gateConfig(whole.gate ?? {});
  const listenSpec = opts.listen ?? cfg.listen;
  const backendSpec = opts.backend ?? cfg.backend;
  if (!listenSpec) throw new Error('gate: no listen address (gate.listen or --gate-listen)');
  if (!backendSpec) throw new Error('gate: no backend address (gate.backend or --gate-backend)');
  const listen = hostPort('listen', listenSpec);
  const backend = hostPort('backend', backendSpec);
  const clock = opts.clock ?? systemClock;
  const logger = childLogger(opts.logger, { room: 'gate' });
  const clientKey = clientKeyer(cfg.limits.ipv4_prefix, cfg.limits.ipv6_prefix);
  if (cfg.outbound && !opts.batv) throw new Error('gate.outbound needs batv.enabled: the gate signs with its keys and domains');

  const ctx: GateContext = {
    cfg,
    hostname: cfg.hostname ?? os.hostname(),
    policy: opts.policy,
    logger,
    backend,
    limits: new ConnectionLimits(
      {
        connections: cfg.limits.connections,
        perIp: cfg.limits.connections_per_ip,
        perIpPerMinute: cfg.limits.connections_per_ip_per_minute,
        overloadFraction: cfg.overload.fraction,
        exempt: IpList.from([...(cfg.limits.exempt ?? whole.my_networks ?? []), ...cfg.xforward_hosts]),
        key: clientKey,
      },
      clock,
    ),
    door: new DoorCache(cfg.door_cache_ttl_s * 1000, clock),
    tarpit: new TarpitSlots(cfg.tarpit.max_clients, cfg.tarpit.max_per_client),
    clientKey,
    memory: new MessageMemory(cfg.limits.memory_mb * 1024 * 1024),
    tlsContext: cfg.tls ? tlsContext(cfg.tls) : undefined,
    xforwardHosts: IpList.from(cfg.xforward_hosts),
    outbound: cfg.outbound && opts.batv ? { rewrite: opts.batv, myNetworks: IpList.from(whole.my_networks ?? []) } : undefined,
    resolver: opts.resolver,
    onEvent: opts.onEvent,
    stats: { connections: 0, refusedByLimit: {}, doorFailures: {}, relayed: 0, backendRefused: 0 },
  };
  if (cfg.backend_identity === 'xclient') {
    ctx.relay = new RelayGuard(backend, cfg, ctx.hostname, logger, opts.scheduler);
  } else {
    logger.warn(
      { backend: backendSpec, backend_identity: cfg.backend_identity },
      `gate.backend_identity is ${cfg.backend_identity}: the backend judges relaying for the gate's own address, not the client's. ` +
        `Keep that address out of the backend's trusted networks (Postfix mynetworks) unless a front MTA already checked relaying (smtpd_proxy_filter)`,
    );
  }
  const trusted = IpList.from(cfg.proxy_protocol.trusted);
  const stats = ctx.stats;
  const sessions = new Set<GateSession>();
  const sockets = new Set<net.Socket>();

  const server = net.createServer((socket) => {
    socket.on('error', () => undefined);
    stats.connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    void admit(socket);
  });

  async function admit(socket: net.Socket): Promise<void> {
    const peerIp = normaliseIp(socket.remoteAddress ?? '0.0.0.0');
    let ip = peerIp;
    let port = socket.remotePort ?? 0;
    let localIp = normaliseIp(socket.localAddress ?? '0.0.0.0');
    let localPort = socket.localPort ?? 0;
    let head: Buffer | undefined;
    if (trusted.has(peerIp)) {
      // A load balancer in front: the real client is in the PROXY header.
      try {
        const { info, rest } = await readProxyHeader(socket, { timeoutMs: 10_000 });
        if (info.kind === 'proxy') {
          ip = info.sourceAddress;
          port = info.sourcePort;
          localIp = info.destAddress;
          localPort = info.destPort;
        }
        head = rest;
      } catch (e) {
        logger.warn({ peer: peerIp, err: (e as Error).message }, 'bad PROXY protocol header: connection closed');
        socket.destroy();
        return;
      }
    }
    const admission = ctx.limits.admit(ip);
    if (!admission.ok) {
      stats.refusedByLimit[admission.reason] = (stats.refusedByLimit[admission.reason] ?? 0) + 1;
      logger.info({ client: ip, limit: admission.reason, detail: admission.detail }, 'connection refused by limit');
      opts.onEvent?.(
        {
          action: 'defer',
          code: 421,
          status: '4.7.0',
          text: admission.detail,
          headers: [],
          rule: `gate:limit-${admission.reason}`,
          stage: 'connect',
          evidence: [{ check: 'gate_limits', result: 'fail', detail: admission.detail, ms: 0 }],
        },
        { clientIp: ip, rcpts: [] },
      );
      socket.end(formatReply(reply(421, `4.7.0 ${ctx.hostname} Error: too many connections; try again later`)));
      setTimeout(() => socket.destroy(), 2000).unref();
      return;
    }
    if (head && head.length > 0) socket.unshift(head);
    const session = new GateSession(socket, { ip, port, localIp, localPort }, ctx);
    sessions.add(session);
    try {
      await session.run();
    } finally {
      sessions.delete(session);
      ctx.limits.release(ip);
    }
  }

  server.maxConnections = cfg.limits.connections + 100; // headroom so over-limit clients still hear 421
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = server.address() as net.AddressInfo;
  ctx.relay?.start();

  let trap: Trap | undefined;
  if (cfg.trap_listen) {
    trap = await startTrap({
      listen: parseHostPort(cfg.trap_listen),
      text: cfg.trap_text,
      hostname: ctx.hostname,
      logger,
      onTrap: opts.onTrap,
      clientKey,
      onEvent: opts.onEvent,
    });
  }
  logger.info({ listen: formatHostPort(bound.address, bound.port), backend: backendSpec, trap: trap?.address }, 'gate listening');

  return {
    address: formatHostPort(bound.address, bound.port),
    port: bound.port,
    trapAddress: trap?.address,
    get connections() {
      return sessions.size;
    },
    relay: ctx.relay,
    stats: ctx.stats,
    async close() {
      ctx.relay?.stop();
      const closing = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of sessions) s.shutdown();
      // Give the 421s a moment to leave, then cut whatever is still open.
      for (let i = 0; i < 10 && sockets.size > 0; i++) await new Promise((r) => setTimeout(r, 50));
      for (const s of sockets) s.destroy();
      await Promise.all([closing, trap?.close()]);
    },
  };
}

function hostPort(what: string, spec: string) {
  try {
    return parseHostPort(spec);
  } catch (e) {
    throw new Error(`gate: ${what} address ${(e as Error).message}`);
  }
}

function tlsContext(t: NonNullable<GateConfig['tls']>): tls.SecureContext {
  try {
    return tls.createSecureContext({ cert: readFileSync(t.cert_file), key: readFileSync(t.key_file) });
  } catch (e) {
    throw new Error(`gate: tls: ${(e as Error).message}`);
  }
}
