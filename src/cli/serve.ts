// `frontline serve`: load the config, build the policy, run the Postfix policy
// server until SIGTERM/SIGINT.

import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import type { AddressInfo } from 'node:net';
import { loadConfig } from '../config/load.js';
import { parseListenAddress } from '../config/address.js';
import { createLogger } from '../log.js';
import { PolicyServer } from '../postfix/policy-server.js';
import { buildRuntime, splitList } from './runtime.js';
import { startGate, type RunningGate } from '../gate/server.js';

export interface ServeOptions {
  config?: string;
  policyListen?: string;
  policySocket?: string;
  dns?: string;
  dataDir?: string;
  /** `--gate-listen` / `--gate-backend`: override gate.listen / gate.backend; the gate runs when both are set. */
  gateListen?: string;
  gateBackend?: string;
}

export interface Serving {
  /** The bound TCP address (port 0 in the config becomes the real port). */
  policyAddress: AddressInfo;
  policySocket?: string;
  gate?: RunningGate;
  close(): Promise<void>;
}

export async function serve(opts: ServeOptions, say: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): Promise<Serving> {
  const config = loadConfig(opts.config, { policyListen: opts.policyListen, dns: splitList(opts.dns) });
  if (opts.policySocket !== undefined) config.listen.policy_socket = opts.policySocket;
  if (opts.dataDir !== undefined) config.data_dir = opts.dataDir;
  const logger = createLogger({ level: config.log.level, file: config.log.file });
  const dataDir = resolve(config.data_dir);
  mkdirSync(dataDir, { recursive: true });

  const runtime = buildRuntime(config, logger);
  const server = new PolicyServer({
    policy: runtime.policy,
    logger,
    acceptReply: config.postfix.accept_reply,
    onFault: config.postfix.on_fault,
    maxRequestBytes: config.postfix.max_request_bytes,
    idleTimeoutS: config.postfix.idle_timeout_s,
  });
  const listen = parseListenAddress(config.listen.policy)!;
  let policyAddress: AddressInfo;
  try {
    policyAddress = await server.listenTcp(listen.host, listen.port);
    if (config.listen.policy_socket) await server.listenUnix(config.listen.policy_socket);
  } catch (err) {
    await server.close(0);
    runtime.close();
    throw err;
  }
  runtime.policy.start();

  let gate: RunningGate | undefined;
  const gateListen = opts.gateListen ?? config.gate.listen;
  const gateBackend = opts.gateBackend ?? config.gate.backend;
  if (gateListen || gateBackend) {
    try {
      gate = await startGate({ config, policy: runtime.policy, logger, listen: gateListen ?? undefined, backend: gateBackend ?? undefined, resolver: runtime.resolver });
    } catch (err) {
      await server.close(0);
      runtime.close();
      throw err;
    }
    say(`frontline gate on ${gate.address}, backend ${gateBackend}`);
  }

  const where = `${policyAddress.family === 'IPv6' ? `[${policyAddress.address}]` : policyAddress.address}:${policyAddress.port}`;
  const sock = config.listen.policy_socket ? ` and unix:${config.listen.policy_socket}` : '';
  logger.info({ policy: where, socket: config.listen.policy_socket ?? undefined, dataDir, dns: config.dns.servers }, 'frontline ready');
  say(`frontline ready: policy server on ${where}${sock}, DNS ${config.dns.servers.join(',')}, data ${dataDir}`);

  let closing: Promise<void> | undefined;
  return {
    policyAddress,
    policySocket: config.listen.policy_socket ?? undefined,
    gate,
    close() {
      closing ??= (async () => {
        logger.info('frontline stopping');
        await gate?.close();
        await server.close();
        runtime.close();
        await new Promise<void>((r) => logger.flush(() => r()));
      })();
      return closing;
    },
  };
}
