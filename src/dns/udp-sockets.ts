// The UDP sockets DNS queries leave from. An off-path attacker who wants us to
// believe a forged answer must guess the query id (16 bits) and the port it
// left from; one socket on one port for the life of the process gives away
// the port after the first query it sees. So queries leave from a small pool
// of sockets, each on a port the kernel picks at random, each picked at random
// per query and replaced after a number of queries or an age: the port is as
// unpredictable as the id (RFC 5452 §9.2). A socket per query would do the
// same at one bind per query; the pool costs one bind per `maxQueries`.
//
// Sockets are bound in the resolver's address family, and to the loopback
// address when the resolver is on loopback, so nothing outside the host can
// reach them at all.

import dgram from 'node:dgram';
import { performance } from 'node:perf_hooks';
import { randomInt } from 'node:crypto';
import ipaddr from 'ipaddr.js';

/** Where datagrams for one resolver go, and the local address to send them from. */
export interface UdpRoute {
  type: 'udp4' | 'udp6';
  /** The resolver's address as the socket family writes it (an IPv4-mapped IPv6 address becomes IPv4). */
  sendTo: string;
  /** `127.0.0.1` / `::1` for a resolver on loopback, else the family's wildcard. */
  bindTo: string;
}

export function routeTo(host: string): UdpRoute {
  let addr: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    addr = ipaddr.process(host);
  } catch {
    // Forms ipaddr.js does not read (a zone id): the family's wildcard, the address as given.
    return host.includes(':') ? { type: 'udp6', sendTo: host, bindTo: '::' } : { type: 'udp4', sendTo: host, bindTo: '0.0.0.0' };
  }
  const loopback = addr.range() === 'loopback';
  if (addr.kind() === 'ipv4') return { type: 'udp4', sendTo: addr.toString(), bindTo: loopback ? '127.0.0.1' : '0.0.0.0' };
  return { type: 'udp6', sendTo: host, bindTo: loopback ? '::1' : '::' };
}

export interface UdpPoolOptions<P> {
  /** Sockets open at once for each local address. */
  size: number;
  /** Queries a socket sends before it is replaced. */
  maxQueries: number;
  /** Milliseconds a socket is used for before it is replaced. */
  maxAgeMs: number;
  /** Every datagram that arrives on any socket. */
  onMessage(socket: PooledSocket<P>, msg: Buffer, rinfo: dgram.RemoteInfo): void;
}

/** One socket with the queries waiting on it, by id. */
export class PooledSocket<P> {
  readonly pending = new Map<number, P>();
  uses = 0;
  retired = false;
  readonly born = performance.now();
  constructor(readonly socket: dgram.Socket) {}

  /** A random id not waiting on this socket. */
  freeId(): number {
    for (;;) {
      const id = randomInt(0, 65536);
      if (!this.pending.has(id)) return id;
    }
  }
}

export class UdpSocketPool<P> {
  /** Live sockets by local address. Retired ones leave this list and close once their last query is settled. */
  private readonly live = new Map<string, PooledSocket<P>[]>();
  private readonly all = new Set<PooledSocket<P>>();
  /** Sockets opened so far (for tests and stats). */
  opened = 0;

  constructor(private readonly opts: UdpPoolOptions<P>) {}

  /** A socket for one query to `route`; call `settled` when that query is done with it. */
  acquire(route: UdpRoute): PooledSocket<P> {
    const key = `${route.type} ${route.bindTo}`;
    let list = this.live.get(key);
    if (!list) this.live.set(key, (list = []));
    const now = performance.now();
    for (let i = list.length - 1; i >= 0; i--) {
      if (now - list[i].born >= this.opts.maxAgeMs) this.retire(list[i], list);
    }
    const s = list.length < this.opts.size ? this.open(route, list) : list[randomInt(0, list.length)];
    // Its last query is about to be added: retired now, closed when that query settles.
    if (++s.uses >= this.opts.maxQueries) this.retire(s, list, false);
    return s;
  }

  /** A query on `s` is over (its id already removed from `s.pending`). */
  settled(s: PooledSocket<P>): void {
    if (s.retired && s.pending.size === 0) this.close(s);
  }

  /** Local addresses and ports of the open sockets. */
  addresses(): { address: string; port: number }[] {
    const out: { address: string; port: number }[] = [];
    for (const s of this.all) {
      try {
        out.push(s.socket.address());
      } catch {
        // not bound yet
      }
    }
    return out;
  }

  closeAll(): void {
    for (const s of this.all) s.socket.close();
    this.all.clear();
    this.live.clear();
  }

  private open(route: UdpRoute, list: PooledSocket<P>[]): PooledSocket<P> {
    const socket = dgram.createSocket({ type: route.type, ipv6Only: route.type === 'udp6' });
    const s = new PooledSocket<P>(socket);
    this.opened++;
    this.all.add(s);
    list.push(s);
    // Port 0: the kernel picks a free ephemeral port at random. Sends made before the bind
    // completes are queued by node and go out from the bound port.
    socket.bind({ port: 0, address: route.bindTo, exclusive: true });
    // Errors on an unconnected UDP socket concern one datagram (or a failed bind, after which
    // sends fail); the attempt's timer deals with the silence. The socket is not reused.
    socket.on('error', () => this.retire(s, list));
    socket.on('message', (msg, rinfo) => this.opts.onMessage(s, msg, rinfo));
    // Pending attempts keep the process alive through their timers, not through the socket.
    socket.unref();
    return s;
  }

  private retire(s: PooledSocket<P>, list: PooledSocket<P>[], closeIfIdle = true): void {
    if (s.retired) return;
    s.retired = true;
    const i = list.indexOf(s);
    if (i >= 0) list.splice(i, 1);
    if (closeIfIdle && s.pending.size === 0) this.close(s);
  }

  private close(s: PooledSocket<P>): void {
    if (!this.all.delete(s)) return;
    s.socket.close();
  }
}
