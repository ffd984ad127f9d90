// `frontline serve`: load the config, open the store, build the policy, run
// the Postfix policy server (and the gate) until SIGTERM/SIGINT. Every
// decision goes to the store's decision log.

import { resolve } from 'node:path';
import type { AddressInfo } from 'node:net';
import { loadConfig } from '../config/load.js';
import { parseListenAddress } from '../config/address.js';
import { SOCKET_MODE, secureDataDir, secureSocket } from './file-modes.js';
import { createLogger } from '../log.js';
import { PolicyServer } from '../postfix/policy-server.js';
import { buildRuntime, splitList } from './runtime.js';
import { startGate, type RunningGate } from '../gate/server.js';
import { DecisionLog, type Store } from '../store/index.js';
import { openConfiguredStore, pruneEvents } from './store.js';
import { openAsnFile } from '../store/asn-file.js';
import { createIntelJobs } from './intel-jobs.js';
import { loadWebAuth } from '../report/web/auth.js';
import { webListenAddress } from '../report/web/config.js';
import { startWebServer, type RunningWeb } from '../report/web/server.js';
import { startConfiguredFirewall } from './firewall.js';
import { startZone, type RunningZone } from '../enforce/zone/index.js';
import { startFeeds, type RunningFeeds } from '../enforce/feed/index.js';
import { systemClock } from '../core/types.js';
import { reportQueries } from './report-context.js';
import { BanCensus, Metrics, timedStore } from '../report/metrics/index.js';
import { workerScrape } from '../report/metrics/cluster.js';
import { DnsClient } from '../dns/index.js';
import cluster from 'node:cluster';
import { readFileSync } from 'node:fs';
import { readBatvKeys } from '../checks/batv-tag.js';
import { batvMaps } from '../postfix/batv-map.js';
import { batvRewriter, type BatvRewriteOptions } from '../checks/batv-rewrite.js';
import { startSocketmapServer, type RunningSocketmap } from '../postfix/socketmap.js';
import { formatHostPort } from '../gate/host-port.js';
import { startMilter, type RunningMilter } from '../milter/server.js';
import { parseMilterAddress } from '../milter/listen-address.js';
import { startReportSchedule } from './report-schedule.js';
import { runsHostJobs } from './cluster.js';

export interface ServeOptions {
  config?: string;
  policyListen?: string;
  policySocket?: string;
  dns?: string;
  dataDir?: string;
  /** `--gate-listen` / `--gate-backend`: override gate.listen / gate.backend; the gate runs when both are set. */
  gateListen?: string;
  gateBackend?: string;
  /** `--milter-listen`: inet:host:port or unix:path (overrides milter.listen). */
  milterListen?: string;
  /** `--web-listen`: host:port of the dashboard and /metrics, or off (overrides web.listen). */
  webListen?: string;
}

export interface Serving {
  /** The bound TCP address (port 0 in the config becomes the real port). */
  policyAddress: AddressInfo;
  policySocket?: string;
  gate?: RunningGate;
  /** The milter frontend, when milter.listen is set. */
  milter?: RunningMilter;
  /** The web listener (dashboard, /metrics); undefined when web.listen is off. */
  web?: RunningWeb;
  /** The DNSBL/DNSWL zone server, when zone.listen is set. */
  zone?: RunningZone;
  store: Store;
  close(): Promise<void>;
}

export async function serve(opts: ServeOptions, say: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): Promise<Serving> {
  const config = loadConfig(opts.config, { policyListen: opts.policyListen, dns: splitList(opts.dns), webListen: opts.webListen });
  if (opts.policySocket !== undefined) config.listen.policy_socket = opts.policySocket;
  if (opts.dataDir !== undefined) config.data_dir = opts.dataDir;
  const logger = createLogger({ level: config.log.level, file: config.log.file });
  // Before anything opens: a web listener off loopback without web.auth is refused.
  const webAuth = loadWebAuth(config.web, logger.child({ room: 'web' }));
  const dataDir = resolve(config.data_dir);
  secureDataDir(dataDir, config.file_group, logger.child({ room: 'files' }));

  // /metrics (docs/metrics.md): off with web.metrics: false or no web listener, and then nothing is timed.
  const metrics = config.web.metrics && webListenAddress(config.web) !== undefined ? new Metrics() : undefined;
  const scrape = metrics && (cluster.isWorker ? workerScrape(metrics.registry) : () => metrics.text());
  let store: Store;
  try {
    store = await openConfiguredStore(config, { logger: logger.child({ room: 'store' }), purge: true });
  } catch (err) {
    throw new Error(`store: cannot open the ${config.store.backend} store: ${(err as Error).message}`, { cause: err });
  }
  if (metrics) store = timedStore(store, metrics.store);
  const decisions = new DecisionLog(store, logger.child({ room: 'store' }));
  // The IP-to-AS table for AS lists, reloaded when the file changes.
  const asnFile = config.asn.table === null ? undefined : await openAsnFile(resolve(config.asn.table), { checkIntervalS: config.asn.check_interval_s, logger: logger.child({ room: 'store' }) });
  // Retention of the decision log, on the purge interval (the store purges expired entries itself).
  const prune = setInterval(() => {
    pruneEvents(store, config).catch((err: unknown) => logger.warn({ err: (err as Error).message }, 'decision log prune failed'));
  }, config.store.purge_interval_s * 1000);
  prune.unref();
  const closeStore = async (): Promise<void> => {
    clearInterval(prune);
    asnFile?.close();
    await decisions.flush();
    await store.close();
  };

  // What has started so far, undone in reverse order when a later part cannot start.
  const started: Array<() => unknown> = [closeStore];
  const abandonStart = async (): Promise<void> => {
    for (const undo of started.splice(0).reverse()) await undo();
  };

  // With --workers N, the jobs that act for the whole host run in one worker (src/cli/cluster.ts).
  const hostJobs = runsHostJobs();
  // Log watching, SPF-walked whitelist, list imports, learned correspondents (started once the server listens).
  const intel = createIntelJobs(config, { store, logger, hostJobs });
  const runtime = buildRuntime(config, logger, store, { correspondents: intel.correspondents, asn: asnFile?.database, onCheckRun: metrics?.onCheckRun });
  started.push(() => runtime.close());
  const counts = metrics?.decisions;
  const server = new PolicyServer({
    onDecision: (verdict, envelope, sessionId) => {
      counts?.count(0, verdict);
      decisions.record(verdict, envelope, sessionId);
      intel.onDecision(verdict, envelope);
    },
    policy: runtime.policy,
    logger,
    acceptReply: config.postfix.accept_reply,
    onFault: config.postfix.on_fault,
    maxRequestBytes: config.postfix.max_request_bytes,
    idleTimeoutS: config.postfix.idle_timeout_s,
  });
  started.push(() => server.close(0));
  const listen = parseListenAddress(config.listen.policy)!;
  let policyAddress: AddressInfo;
  try {
    policyAddress = await server.listenTcp(listen.host, listen.port);
    if (config.listen.policy_socket) {
      await server.listenUnix(config.listen.policy_socket, SOCKET_MODE);
      secureSocket(config.listen.policy_socket, config.file_group, logger.child({ room: 'files' }));
    }
  } catch (err) {
    await abandonStart();
    throw err;
  }
  runtime.policy.start();

  // BATV's keys and domains, for the socketmap (batv.listen) and the gate in the outbound path (gate.outbound).
  let batv: BatvRewriteOptions | undefined;
  if (config.batv.enabled) {
    try {
      batv = {
        keys: readBatvKeys(config.batv.keys, (f) => readFileSync(f, 'utf8')),
        domains: new Set(config.batv.domains),
        validDays: config.batv.valid_days,
        clock: systemClock,
      };
    } catch (err) {
      await abandonStart();
      throw new Error(`batv.keys: ${(err as Error).message}`, { cause: err });
    }
  }

  let gate: RunningGate | undefined;
  const gateListen = opts.gateListen ?? config.gate.listen;
  const gateBackend = opts.gateBackend ?? config.gate.backend;
  if (gateListen || gateBackend) {
    try {
      gate = await startGate({
        config,
        batv: batv && batvRewriter(batv),
        policy: runtime.policy,
        logger,
        listen: gateListen ?? undefined,
        backend: gateBackend ?? undefined,
        resolver: runtime.resolver,
        onEvent: (verdict, envelope) => {
          counts?.count(1, verdict);
          decisions.record(verdict, envelope);
        },
        // A client of the trap listener is a scanner: banned (category probe), an IPv6 one by its /64.
        onTrap: (ip, cidr) => {
          store
            .ban({ cidr, reason: `${ip} connected to the trap listener`, category: 'probe', source: 'gate:trap' })
            .catch((err: unknown) => logger.warn({ err: (err as Error).message, client: ip }, 'trap ban failed'));
        },
      });
    } catch (err) {
      await abandonStart();
      throw err;
    }
    say(`frontline gate on ${gate.address}, backend ${gateBackend}`);
    const startedGate = gate;
    started.push(() => startedGate.close());
  }

  let milter: RunningMilter | undefined;
  const milterListen = opts.milterListen ?? config.milter.listen;
  if (milterListen) {
    const where = parseMilterAddress(milterListen);
    try {
      if (!where) throw new Error(`expected inet:host:port or unix:/path, got ${JSON.stringify(milterListen)}`);
      const mc = config.milter;
      milter = await startMilter(where, {
        policy: runtime.policy,
        logger: logger.child({ room: 'milter' }),
        maxBody: mc.max_body,
        maxConnections: mc.max_connections,
        idleTimeoutS: mc.idle_timeout_s,
        decisionTimeoutMs: mc.decision_timeout_ms,
        onDecision: (verdict, envelope, sessionId) => {
          counts?.count(2, verdict);
          decisions.record(verdict, envelope, sessionId);
          intel.onDecision(verdict, envelope);
        },
      });
      if (where.kind === 'unix') secureSocket(where.path, config.file_group, logger.child({ room: 'files' }));
    } catch (err) {
      await abandonStart();
      throw new Error(`milter.listen: ${(err as Error).message}`, { cause: err });
    }
    say(`frontline milter on ${milter.address}`);
    const startedMilter = milter;
    started.push(() => startedMilter.close());
  }

  let census: BanCensus | undefined;
  if (metrics) {
    // Every worker would count the same store: the host-jobs worker counts, the primary takes its count.
    if (hostJobs) {
      census = new BanCensus(store, (err) => logger.warn({ err: (err as Error).message }, 'metrics: counting bans failed'));
      void census.start(30_000);
      const startedCensus = census;
      started.push(() => startedCensus.stop());
    }
    const counted = census;
    const client = runtime.resolver.upstream;
    const evidenceCache = runtime.policy.evidenceCache;
    const running = gate;
    metrics.sources = {
      policyServer: () => server.stats,
      evidenceCache: evidenceCache && (() => evidenceCache.stats),
      dnsCache: () => ({ ...runtime.resolver.stats, size: runtime.resolver.size }),
      dnsClient: client instanceof DnsClient ? () => client.stats : undefined,
      gate: running && (() => ({ ...running.stats, sessions: running.connections })),
      logwatch: () => intel.logwatchStats(),
      bans: counted && (() => counted.byCategory()),
      selfCheck: intel.selfCheck && (() => intel.selfCheck!.last),
    };
  }
  let web: RunningWeb | undefined;
  if (webListenAddress(config.web) !== undefined) {
    try {
      const services = {
        zones: () => runtime.policy.zoneStates(),
        selfCheck: intel.selfCheck && (() => intel.selfCheck!.last),
        report: await reportQueries(store, config),
        metrics: metrics && scrape ? { text: scrape, contentType: metrics.contentType } : undefined,
      };
      web = await startWebServer({ config, store, logger, auth: webAuth, services });
      const startedWeb = web;
      started.push(() => startedWeb.close());
    } catch (err) {
      await abandonStart();
      throw new Error(`web: cannot listen on ${webListenAddress(config.web)}: ${(err as Error).message}`, { cause: err });
    }
  }
  let zone: RunningZone | undefined;
  try {
    zone = await startZone(config, { store, logger: logger.child({ room: 'zone' }) });
    const startedZone = zone;
    if (startedZone) started.push(() => startedZone.close());
  } catch (err) {
    await abandonStart();
    throw err;
  }
  if (zone) say(`frontline zone ${config.zone.bl_name}${config.zone.wl_name ? ` and ${config.zone.wl_name}` : ''} on ${zone.addresses.join(', ')}`);

  // Ban feeds served to and pulled from peers (enforce.feed); a feed listener that cannot start stops serve.
  // Every worker serves the feed (they share its port); one pulls the peers.
  let feeds: RunningFeeds | undefined;
  const feedCfg = hostJobs ? config.enforce.feed : { ...config.enforce.feed, pull: [] };
  if (feedCfg.listen || feedCfg.pull.length > 0) {
    try {
      feeds = await startFeeds(feedCfg, { store, clock: systemClock, logger: logger.child({ room: 'enforce' }) });
      const startedFeeds = feeds;
      started.push(() => startedFeeds.stop());
    } catch (err) {
      await abandonStart();
      throw new Error(`enforce.feed: ${(err as Error).message}`, { cause: err });
    }
  }

  // BATV's Postfix lookup tables (batv.listen): sender signing and tag stripping.
  let batvMap: RunningSocketmap | undefined;
  if (batv && config.batv.listen) {
    const hp = parseListenAddress(config.batv.listen)!;
    try {
      const maps = batvMaps(batv);
      batvMap = await startSocketmapServer(hp.host, hp.port, { maps, logger: logger.child({ room: 'batv' }) });
    } catch (err) {
      await abandonStart();
      throw new Error(`batv.listen: ${(err as Error).message}`, { cause: err });
    }
    say(`frontline BATV socketmap on ${formatHostPort(batvMap.address.host, batvMap.address.port)} (maps batv-sign, batv-strip)`);
  }

  await intel.start(runtime.resolver);
  // The daily report on report.schedule; with --workers N the cluster primary mails it, not each worker.
  const reports = cluster.isWorker ? undefined : startReportSchedule(config, { withStore: (fn) => fn(store), logger });
  // The store's bans into the packet filter (enforce.firewall); a firewall that refuses is logged, never fatal.
  const firewall = hostJobs ? startConfiguredFirewall(config, store, logger.child({ room: 'enforce' })) : undefined;
  const where = `${policyAddress.family === 'IPv6' ? `[${policyAddress.address}]` : policyAddress.address}:${policyAddress.port}`;
  const sock = config.listen.policy_socket ? ` and unix:${config.listen.policy_socket}` : '';
  const sentinel = config.store.redis.sentinel;
  const redisName = `redis ${config.store.redis.url.replace(/\/\/[^@/]*@/, '//***@')}${sentinel ? ` via sentinel ${sentinel.name} at ${sentinel.hosts.join(',')}` : ''}`;
  const storeName = config.store.backend === 'redis' ? redisName : 'sqlite';
  const webWhere = `${web ? `, web ${web.url}` : ''}${feeds?.address ? `, feed http://${feeds.address}` : ''}`;
  logger.info({ policy: where, socket: config.listen.policy_socket ?? undefined, dataDir, dns: config.dns.servers, store: storeName, web: web?.url }, 'frontline ready');
  say(`frontline ready: policy server on ${where}${sock}, DNS ${config.dns.servers.join(',')}, data ${dataDir}, store ${storeName}${webWhere}`);

  let closing: Promise<void> | undefined;
  return {
    policyAddress,
    policySocket: config.listen.policy_socket ?? undefined,
    gate,
    milter,
    web,
    zone,
    store,
    close() {
      closing ??= (async () => {
        logger.info('frontline stopping');
        await reports?.stop();
        await web?.close().catch((err: unknown) => logger.error({ err }, 'web close failed'));
        await census?.stop();
        await gate?.close();
        await milter?.close();
        await zone?.close();
        await server.close();
        await intel.stop();
        await firewall?.stop();
        await feeds?.stop().catch((err: unknown) => logger.error({ err }, 'feed stop failed'));
        await batvMap?.close();
        runtime.close();
        await closeStore().catch((err: unknown) => logger.error({ err }, 'store close failed'));
        await new Promise<void>((r) => logger.flush(() => r()));
      })();
      return closing;
    },
  };
}
