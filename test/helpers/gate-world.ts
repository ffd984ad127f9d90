// A gate between a test and a sink backend: a scripted policy (or a real
// one), the gate on a loopback port, every event it reports.

import pino, { type Logger } from 'pino';
import type { Envelope, Stage, Verdict } from '../../src/core/types.js';
import type { GateConfigInput } from '../../src/gate/config.js';
import type { GatePolicy } from '../../src/gate/policy-port.js';
import { startGate, type RunningGate } from '../../src/gate/server.js';
import type { Scheduler } from '../../src/gate/relay-test.js';
import type { Resolver } from '../../src/dns/types.js';
import type { BatvRewriter } from '../../src/checks/batv-rewrite.js';
import { startSink, type Sink, type SinkOptions } from './smtp-sink.js';

export type Decide = (stage: Stage, env: Envelope) => Partial<Verdict> | undefined | Promise<Partial<Verdict> | undefined>;

export interface ScriptedPolicy extends GatePolicy {
  calls: Array<{ stage: Stage; env: Envelope }>;
}

/** A policy that says `continue` (with the given eom headers) unless `decide` says otherwise. */
export function scriptedPolicy(decide?: Decide, eomHeaders: Array<[string, string]> = [['Authentication-Results', 'gate.test; spf=pass smtp.mailfrom=example.com']]): ScriptedPolicy {
  const calls: ScriptedPolicy['calls'] = [];
  return {
    calls,
    transaction() {
      return {
        async evaluate(stage, env) {
          calls.push({ stage, env });
          const d = (await decide?.(stage, env)) ?? {};
          return {
            action: 'continue',
            headers: stage === 'eom' ? eomHeaders : [],
            rule: 'default',
            stage,
            evidence: [],
            ...d,
          } as Verdict;
        },
      };
    },
  };
}

export interface TestGate {
  gate: RunningGate;
  sink: Sink;
  port: number;
  events: Array<{ verdict: Verdict; env: Envelope }>;
  trapped: string[];
  /** What the trap asked to ban (an IPv6 client's network). */
  banned: string[];
  close(): Promise<void>;
}

export async function startTestGate(
  opts: {
    gate?: GateConfigInput;
    sink?: SinkOptions;
    policy?: GatePolicy;
    backend?: string;
    resolver?: Resolver;
    logLevel?: string;
    /** Where the gate's log lines go (JSON lines), e.g. to assert on them; default stdout. */
    logStream?: pino.DestinationStream;
    /** The gate's logger (wins over logStream), e.g. a captureLogger(). */
    logger?: Logger;
    /** Timers of the relay self-test. */
    scheduler?: Scheduler;
    /** The config's my_networks (the gate reads it for its limits and gate.outbound). */
    myNetworks?: string[];
    /** BATV's rewrites, for gate.outbound. */
    batv?: BatvRewriter;
  } = {},
): Promise<TestGate> {
  const sink = await startSink({ xclient: true, ...opts.sink });
  const events: TestGate['events'] = [];
  const trapped: string[] = [];
  const banned: string[] = [];
  const gate = await startGate({
    config: { gate: { hostname: 'gate.test', greet_wait_ms: 0, ...opts.gate }, ...(opts.myNetworks ? { my_networks: opts.myNetworks } : {}) },
    batv: opts.batv,
    policy: opts.policy ?? scriptedPolicy(),
    logger:
      opts.logger ??
      (opts.logStream
        ? pino({ level: opts.logLevel ?? 'info' }, opts.logStream)
        : pino({ level: opts.logLevel ?? process.env.GATE_TEST_LOG ?? 'silent' })),
    listen: '127.0.0.1:0',
    backend: opts.backend ?? sink.address,
    resolver: opts.resolver,
    onEvent: (verdict, env) => events.push({ verdict, env }),
    onTrap: (ip, cidr) => {
      trapped.push(ip);
      banned.push(cidr);
    },
    scheduler: opts.scheduler,
  });
  // The relay self-test's own backend connection is not the tests' business.
  await gate.relay?.first;
  sink.forgetSessions();
  return {
    gate,
    sink,
    port: gate.port,
    events,
    trapped,
    banned,
    async close() {
      await gate.close();
      await sink.close();
    },
  };
}
