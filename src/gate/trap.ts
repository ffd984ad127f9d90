// The trap listener: an address that is no MX of any domain, so nothing
// legitimate ever connects to it. Whoever does is a scanner: logged, answered
// 554 and hung up on, and reported through onTrap (the ban store bans it).

import net from 'node:net';
import type { Logger } from 'pino';
import type { Envelope, Verdict } from '../core/types.js';
import { normaliseIp } from '../dns/reverse.js';
import { formatHostPort, type HostPort } from './host-port.js';
import type { ClientKey } from './client-key.js';
import { formatReply, reply } from './reply.js';

export interface TrapOptions {
  listen: HostPort;
  text: string;
  hostname: string;
  logger: Logger;
  /** `cidr`: what to ban, the address or its network as clientKey says. */
  onTrap?: (ip: string, cidr: string) => void;
  clientKey?: ClientKey;
  onEvent?: (verdict: Verdict, env: Envelope) => void;
}

export interface Trap {
  address: string;
  close(): Promise<void>;
}

export async function startTrap(opts: TrapOptions): Promise<Trap> {
  const server = net.createServer((socket) => {
    socket.on('error', () => undefined);
    const ip = normaliseIp(socket.remoteAddress ?? '0.0.0.0');
    opts.logger.warn({ client: ip, trap: true }, 'scanner connected to the trap listener');
    socket.end(formatReply(reply(554, `${opts.hostname} ${opts.text}`)));
    setTimeout(() => socket.destroy(), 1000).unref();
    try {
      opts.onTrap?.(ip, opts.clientKey?.(ip) ?? ip);
      opts.onEvent?.(
        {
          action: 'reject',
          code: 554,
          status: '5.7.1',
          text: 'connected to the trap listener',
          headers: [],
          rule: 'gate:trap',
          stage: 'connect',
          evidence: [{ check: 'trap', result: 'listed', detail: `${ip} connected to the trap address`, ms: 0 }],
        },
        { clientIp: ip, rcpts: [] },
      );
    } catch (e) {
      opts.logger.error({ err: e }, 'onTrap handler failed');
    }
  });
  server.maxConnections = 1000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.listen.port, opts.listen.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const a = server.address() as net.AddressInfo;
  return {
    address: formatHostPort(a.address, a.port),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
