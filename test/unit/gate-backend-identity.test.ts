// How the backend learns the real client (gate.backend_identity) and the
// relay self-test (issue 16, item 1): any 2xx to XCLIENT is success (Postfix
// answers 220, smtp-sink and nginx 250); a backend that relays for the outside
// client 192.0.2.1 gets no mail (451 4.3.0) until a later test is refused.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { spawn } from 'node:child_process';
import { startTestGate } from '../helpers/gate-world.js';
import { SmtpTalk } from '../helpers/smtp-talk.js';
import { captureLogger } from '../helpers/log-capture.js';
import { requireBinary } from '../helpers/binaries.js';
import { freePort } from '../helpers/ports.js';
import type { Scheduler } from '../../src/gate/relay-test.js';

const MESSAGE = 'From: a@example.com\r\nTo: b@example.net\r\nSubject: hi\r\n\r\nHello.\r\n';

/** Timers that fire only when the test says so. */
class ManualScheduler implements Scheduler {
  timers: Array<{ ms: number; fn: () => void; cancelled: boolean }> = [];
  after(ms: number, fn: () => void) {
    const t = { ms, fn, cancelled: false };
    this.timers.push(t);
    return { cancel: () => void (t.cancelled = true) };
  }
  /** The one timer armed now. */
  get armed() {
    const live = this.timers.filter((t) => !t.cancelled);
    assert.equal(live.length, 1, 'one timer armed');
    return live[0];
  }
  fire(): void {
    const t = this.armed;
    t.cancelled = true;
    t.fn();
  }
}

interface Scripted {
  port: number;
  /** Every command line, with the XCLIENT ADDR the connection had then. */
  seen: Array<{ line: string; addr: string; conn: number }>;
  /** Relay for everyone (as an open relay) instead of for 127.0.0.0/8 only. */
  openRelay: boolean;
  close(): Promise<void>;
}

/**
 * A backend in the manner of nginx or smtp-sink: XCLIENT answered 250 (not
 * Postfix's 220), relaying for 127.0.0.0/8 (the XCLIENT ADDR when given).
 */
async function scriptedBackend(opts: { xclientReply?: string; mailFromNull?: string } = {}): Promise<Scripted> {
  const sockets = new Set<net.Socket>();
  let conns = 0;
  const s: Scripted = { port: 0, seen: [], openRelay: false, close: async () => undefined };
  const server = net.createServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    const conn = ++conns;
    let addr = '127.0.0.1';
    let buf = '';
    let inData = false;
    sock.write('220 scripted ESMTP\r\n');
    sock.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      let nl: number;
      while ((nl = buf.indexOf('\r\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 2);
        if (inData) {
          if (line === '.') {
            inData = false;
            sock.write('250 2.0.0 Ok: queued as SCRIPTED\r\n');
          }
          continue;
        }
        s.seen.push({ line, addr, conn });
        const verb = line.split(' ')[0].toUpperCase();
        if (verb === 'EHLO') sock.write('250-scripted\r\n250-PIPELINING\r\n250 XCLIENT NAME ADDR PROTO HELO\r\n');
        else if (verb === 'XCLIENT') {
          addr = /ADDR=(\S+)/.exec(line)?.[1] ?? addr;
          sock.write(`${opts.xclientReply ?? '250 2.0.0 Ok'}\r\n`);
        } else if (verb === 'MAIL') sock.write(line === 'MAIL FROM:<>' && opts.mailFromNull ? `${opts.mailFromNull}\r\n` : '250 2.1.0 Ok\r\n');
        else if (verb === 'RCPT') {
          const outside = /@(example\.invalid|outside\.example)>/.test(line);
          sock.write(outside && !s.openRelay && !addr.startsWith('127.') ? '454 4.7.1 Relay access denied\r\n' : '250 2.1.5 Ok\r\n');
        } else if (verb === 'DATA') {
          inData = true;
          sock.write('354 go ahead\r\n');
        } else if (verb === 'QUIT') sock.end('221 2.0.0 Bye\r\n');
        else sock.write('250 2.0.0 Ok\r\n');
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  s.port = (server.address() as net.AddressInfo).port;
  s.close = async () => {
    for (const k of sockets) k.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  };
  return s;
}

async function sendOne(port: number, rcpt = 'b@example.net'): Promise<{ mail: number; mailText: string; rcpt?: number; final?: number }> {
  const c = await SmtpTalk.connect(port);
  try {
    assert.equal((await c.reply()).code, 220);
    assert.equal((await c.command('EHLO client.example.com')).code, 250);
    const mail = await c.command('MAIL FROM:<a@example.com>');
    if (mail.code !== 250) return { mail: mail.code, mailText: mail.text };
    const r = await c.command(`RCPT TO:<${rcpt}>`);
    if (r.code !== 250) return { mail: mail.code, mailText: mail.text, rcpt: r.code };
    assert.equal((await c.command('DATA')).code, 354);
    c.sendRaw(`${MESSAGE}.\r\n`);
    return { mail: mail.code, mailText: mail.text, rcpt: r.code, final: (await c.reply()).code };
  } finally {
    c.close();
  }
}

describe('backend identity', () => {
  test('a backend that answers XCLIENT with 250 (nginx, smtp-sink) is a backend that took it: the message is delivered', async () => {
    const b = await scriptedBackend({ xclientReply: '250 2.0.0 Ok' });
    const t = await startTestGate({ backend: `127.0.0.1:${b.port}` });
    try {
      const r = await sendOne(t.port);
      assert.deepEqual([r.mail, r.rcpt, r.final], [250, 250, 250], r.mailText);
      const session = b.seen.filter((x) => x.conn === Math.max(...b.seen.map((y) => y.conn)));
      assert.match(session[1].line, /^XCLIENT .*ADDR=127\.0\.0\.1/);
      assert.equal(session[2].line, 'EHLO client.example.com', 'EHLO again, with the client\'s name, after XCLIENT');
    } finally {
      await t.close();
      await b.close();
    }
  });

  test('a backend that refuses XCLIENT gets no mail: 451 4.3.0 at MAIL and an error naming the setting', async () => {
    const b = await scriptedBackend({ xclientReply: '550 5.7.0 Error: insufficient authorization' });
    const log = captureLogger();
    const t = await startTestGate({ backend: `127.0.0.1:${b.port}`, logger: log.logger });
    try {
      const r = await sendOne(t.port);
      assert.equal(r.mail, 451);
      assert.match(r.mailText, /^4\.3\.0 /);
      assert.ok(log.errors().some((l) => /refused XCLIENT: 550 5\.7\.0 .*smtpd_authorized_xclient_hosts/.test(l.msg)), JSON.stringify(log.errors()));
      assert.ok(!b.seen.some((x) => x.line.startsWith('MAIL FROM:<a@')), 'the client\'s MAIL never reached the backend');
    } finally {
      await t.close();
      await b.close();
    }
  });

  test('backend_identity xforward and none are explicit choices, each announced with its cost in the log', async () => {
    for (const identity of ['xforward', 'none'] as const) {
      const log = captureLogger();
      const t = await startTestGate({ sink: { xclient: false, xforward: true }, gate: { backend_identity: identity }, logger: log.logger });
      try {
        const r = await sendOne(t.port);
        assert.equal(r.final, 250);
        assert.ok(log.lines.some((l) => l.level === 40 && /backend_identity is .*judges relaying for the gate's own address/.test(l.msg)));
        assert.equal(t.gate.relay, undefined, 'no self-test: only XCLIENT can speak as an outside client');
        assert.equal(t.sink.messages[0].xforward.ADDR === '127.0.0.1', identity === 'xforward');
      } finally {
        await t.close();
      }
    }
  });
});

describe('relay self-test', () => {
  test('at start and every hour: XCLIENT ADDR=192.0.2.1, MAIL FROM:<>, RCPT TO:<relay-test@example.invalid>, RSET, QUIT', async () => {
    const b = await scriptedBackend();
    const clock = new ManualScheduler();
    const t = await startTestGate({ backend: `127.0.0.1:${b.port}`, scheduler: clock });
    try {
      assert.deepEqual(t.gate.relay?.last, { kind: 'closed', reply: '454 4.7.1 Relay access denied' });
      assert.deepEqual(
        b.seen.map((x) => x.line.replace(/^(XCLIENT|EHLO) .*/, '$1')),
        ['EHLO', 'XCLIENT', 'EHLO', 'MAIL FROM:<>', 'RCPT TO:<relay-test@example.invalid>', 'RSET', 'QUIT'],
      );
      assert.match(b.seen[1].line, /^XCLIENT ADDR=192\.0\.2\.1 NAME=\[UNAVAILABLE\] HELO=\[192\.0\.2\.1\] PROTO=ESMTP$/);
      assert.equal(b.seen[0].line, 'EHLO gate.test');
      assert.equal(clock.armed.ms, 3_600_000, 'the next test in an hour');
      b.seen.length = 0;
      clock.fire();
      await t.gate.relay?.run();
      assert.ok(b.seen.some((x) => x.line === 'RCPT TO:<relay-test@example.invalid>' && x.addr === '192.0.2.1'));
      assert.equal(clock.armed.ms, 3_600_000);
    } finally {
      await t.close();
      await b.close();
    }
  });

  test('a backend that relays for outsiders: every MAIL gets 451 4.3.0 and the log says why, until a later test is refused', async () => {
    const b = await scriptedBackend();
    b.openRelay = true;
    const clock = new ManualScheduler();
    const log = captureLogger();
    const t = await startTestGate({ backend: `127.0.0.1:${b.port}`, scheduler: clock, logger: log.logger, gate: { relay_test_interval_s: 600 } });
    try {
      assert.equal(t.gate.relay?.last?.kind, 'open');
      assert.ok(log.errors().some((l) => /^relay self-test FAILED: the backend accepted RCPT TO:<relay-test@example\.invalid> from the outside client 192\.0\.2\.1 \(250 2\.1\.5 Ok\)/.test(l.msg)));
      const refused = await sendOne(t.port);
      assert.equal(refused.mail, 451);
      assert.match(refused.mailText, /^4\.3\.0 /);
      assert.ok(!b.seen.some((x) => x.line.startsWith('MAIL FROM:<a@')), 'nothing reached the backend');
      assert.ok(log.lines.some((l) => l.msg === 'MAIL refused: the backend failed the relay self-test' && /relays for anyone/.test(String(l.reason))));
      assert.ok(t.events.some((e) => e.verdict.rule === 'gate:relay-test' && e.verdict.code === 451));
      // Still open at the next test: still refused.
      assert.equal(clock.armed.ms, 600_000);
      clock.fire();
      await t.gate.relay?.run();
      assert.equal((await sendOne(t.port)).mail, 451);
      // The admin fixed the backend: the next test is refused, and mail flows.
      b.openRelay = false;
      clock.fire();
      await t.gate.relay?.run();
      assert.equal(t.gate.relay?.last?.kind, 'closed');
      assert.ok(log.lines.some((l) => /relay self-test passed again/.test(l.msg)));
      assert.equal((await sendOne(t.port)).final, 250);
    } finally {
      await t.close();
      await b.close();
    }
  });

  test('a test that cannot conclude (MAIL FROM:<> refused) changes nothing and is tried again in a minute', async () => {
    const b = await scriptedBackend({ mailFromNull: '550 5.7.1 no bounces here' });
    const clock = new ManualScheduler();
    const log = captureLogger();
    const t = await startTestGate({ backend: `127.0.0.1:${b.port}`, scheduler: clock, logger: log.logger });
    try {
      assert.equal(t.gate.relay?.last?.kind, 'inconclusive');
      assert.ok(log.lines.some((l) => l.level === 40 && /relay self-test inconclusive: the backend refused MAIL FROM:<>/.test(l.msg)));
      assert.equal(clock.armed.ms, 60_000);
      assert.equal((await sendOne(t.port)).final, 250);
    } finally {
      await t.close();
      await b.close();
    }
  });

  test('the first MAIL waits for the first test rather than pass before it', async () => {
    const b = await scriptedBackend();
    b.openRelay = true;
    // The backend is slow to greet the self-test: a client's MAIL arrives meanwhile.
    const slow = net.createServer((sock) => {
      const up = net.connect(b.port, '127.0.0.1');
      setTimeout(() => {
        sock.pipe(up);
        up.pipe(sock);
      }, 300);
      sock.on('error', () => up.destroy());
      up.on('error', () => sock.destroy());
    });
    await new Promise<void>((r) => slow.listen(0, '127.0.0.1', () => r()));
    const { startGate } = await import('../../src/gate/server.js');
    const { scriptedPolicy } = await import('../helpers/gate-world.js');
    const pino = (await import('pino')).default;
    const gate = await startGate({
      config: { hostname: 'gate.test', greet_wait_ms: 0 },
      policy: scriptedPolicy(),
      logger: pino({ level: 'silent' }),
      listen: '127.0.0.1:0',
      backend: `127.0.0.1:${(slow.address() as net.AddressInfo).port}`,
      scheduler: new ManualScheduler(),
    });
    try {
      assert.ok(gate.relay?.first, 'the first test is still running');
      assert.equal((await sendOne(gate.port)).mail, 451);
    } finally {
      await gate.close();
      slow.close();
      await b.close();
    }
  });
});

describe('relay self-test and shutdown', () => {
  test('closing the gate cuts off a self-test the backend never answers', async () => {
    let closedAt = 0;
    const mute = net.createServer((sock) => {
      sock.write('220 mute ESMTP\r\n'); // then silence: EHLO is read, never answered
      sock.resume();
      sock.on('close', () => (closedAt = Date.now()));
      sock.on('error', () => undefined);
    });
    await new Promise<void>((r) => mute.listen(0, '127.0.0.1', () => r()));
    const { startGate } = await import('../../src/gate/server.js');
    const { scriptedPolicy } = await import('../helpers/gate-world.js');
    const pino = (await import('pino')).default;
    const gate = await startGate({
      config: { hostname: 'gate.test', greet_wait_ms: 0 },
      policy: scriptedPolicy(),
      logger: pino({ level: 'silent' }),
      listen: '127.0.0.1:0',
      backend: `127.0.0.1:${(mute.address() as net.AddressInfo).port}`,
      scheduler: new ManualScheduler(),
    });
    await new Promise((r) => setTimeout(r, 200));
    assert.ok(gate.relay?.first, 'the first test waits for EHLO');
    const t0 = Date.now();
    await gate.close();
    // Without the cut the connection would stay until the backend command timeout (120 s).
    for (let i = 0; i < 200 && closedAt === 0; i++) await new Promise((r) => setTimeout(r, 50));
    assert.ok(closedAt > 0 && closedAt - t0 < 10_000, 'the self-test connection is closed with the gate');
    mute.close();
  });
});

describe("Postfix's own smtp-sink as the backend (it answers XCLIENT with 250)", () => {
  async function smtpSink(args: string[]): Promise<{ port: number; stop(): void }> {
    const bin = requireBinary('smtp-sink');
    if (!bin) throw new Error('unreachable');
    const port = await freePort();
    // As root smtp-sink must drop to a user (-u) once its socket is open.
    const child = spawn(bin, [...(process.getuid?.() === 0 ? ['-u', 'nobody'] : []), ...args, `127.0.0.1:${port}`, '16'], { stdio: 'ignore' });
    for (let i = 0; ; i++) {
      const up = await new Promise<boolean>((r) => {
        const s = net.connect(port, '127.0.0.1', () => {
          s.destroy();
          r(true);
        });
        s.on('error', () => r(false));
      });
      if (up) break;
      if (i > 50) throw new Error('smtp-sink did not start');
      await new Promise((r) => setTimeout(r, 100));
    }
    return { port, stop: () => child.kill() };
  }

  test('smtp-sink accepts any recipient: XCLIENT 250 is taken, the self-test finds an open relay and mail is refused 451', async (t) => {
    if (!requireBinary('smtp-sink', t)) return;
    const sink = await smtpSink([]);
    const log = captureLogger();
    const g = await startTestGate({ backend: `127.0.0.1:${sink.port}`, logger: log.logger, scheduler: new ManualScheduler() });
    try {
      assert.equal(g.gate.relay?.last?.kind, 'open', JSON.stringify(g.gate.relay?.last));
      assert.equal((await sendOne(g.port)).mail, 451);
      assert.ok(!log.errors().some((l) => /XCLIENT/.test(l.msg)), 'XCLIENT answered 250 is no error');
    } finally {
      await g.close();
      sink.stop();
    }
  });

  test('smtp-sink refusing RCPT (-r RCPT): the self-test passes and MAIL goes through after XCLIENT answered 250', async (t) => {
    if (!requireBinary('smtp-sink', t)) return;
    const sink = await smtpSink(['-r', 'RCPT']);
    const g = await startTestGate({ backend: `127.0.0.1:${sink.port}`, scheduler: new ManualScheduler() });
    try {
      assert.equal(g.gate.relay?.last?.kind, 'closed', JSON.stringify(g.gate.relay?.last));
      const r = await sendOne(g.port);
      assert.equal(r.mail, 250, r.mailText);
      assert.ok(r.rcpt !== undefined && r.rcpt >= 400 && r.rcpt < 500, 'smtp-sink\'s own 4xx to RCPT, relayed');
    } finally {
      await g.close();
      sink.stop();
    }
  });
});
