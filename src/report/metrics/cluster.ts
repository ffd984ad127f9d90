// /metrics with `--workers N`: any worker may take the scrape (they share
// the web port), so the one that does asks the primary, which asks every
// worker for its families (prom-client's JSON form) over the cluster IPC
// channel, sums them with prom-client's AggregatorRegistry and sends the
// text back. Counters thus count the whole server, not one worker. A worker
// that does not answer within WORKER_WAIT_MS (one still starting) is left
// out of that scrape.

import cluster, { type Worker } from 'node:cluster';
import { AggregatorRegistry, type Registry } from 'prom-client';

const WORKER_WAIT_MS = 1000;
const SCRAPE_WAIT_MS = 5000;

interface ScrapeRequest {
  frontline: 'metrics-scrape';
  id: number;
}
interface ScrapeAnswer {
  frontline: 'metrics-text';
  id: number;
  text?: string;
  error?: string;
}
interface FamiliesRequest {
  frontline: 'metrics-get';
  id: number;
}
interface FamiliesAnswer {
  frontline: 'metrics-json';
  id: number;
  families: unknown[];
}

function is<T extends { frontline: string }>(m: unknown, kind: T['frontline']): m is T {
  return typeof m === 'object' && m !== null && (m as { frontline?: unknown }).frontline === kind && typeof (m as { id?: unknown }).id === 'number';
}

/**
 * In a worker: answer the primary's requests for this registry's families,
 * and return the scrape function (the whole cluster's text, from the primary).
 */
export function workerScrape(registry: Registry): () => Promise<string> {
  let next = 0;
  const waiting = new Map<number, { resolve: (t: string) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  process.on('message', (m: unknown) => {
    if (is<FamiliesRequest>(m, 'metrics-get')) {
      void registry.getMetricsAsJSON().then(
        (families) => process.send?.({ frontline: 'metrics-json', id: m.id, families } satisfies FamiliesAnswer),
        () => process.send?.({ frontline: 'metrics-json', id: m.id, families: [] } satisfies FamiliesAnswer),
      );
    } else if (is<ScrapeAnswer>(m, 'metrics-text')) {
      const w = waiting.get(m.id);
      if (w === undefined) return;
      waiting.delete(m.id);
      clearTimeout(w.timer);
      if (m.text !== undefined) w.resolve(m.text);
      else w.reject(new Error(m.error ?? 'no metrics from the primary'));
    }
  });
  return () =>
    new Promise<string>((resolve, reject) => {
      const id = next++;
      const timer = setTimeout(() => {
        waiting.delete(id);
        reject(new Error('the cluster primary did not answer the scrape in time'));
      }, SCRAPE_WAIT_MS);
      waiting.set(id, { resolve, reject, timer });
      process.send?.({ frontline: 'metrics-scrape', id } satisfies ScrapeRequest);
    });
}

/** In the primary: answer the workers' scrapes with every worker's families summed. */
export function servePrimaryScrapes(): void {
  let next = 0;
  const gathering = new Map<number, { families: unknown[][]; pending: Set<Worker>; done: () => void }>();
  cluster.on('message', (worker: Worker, m: unknown) => {
    if (is<FamiliesAnswer>(m, 'metrics-json')) {
      const g = gathering.get(m.id);
      if (g === undefined || !g.pending.delete(worker)) return;
      g.families.push(m.families);
      if (g.pending.size === 0) g.done();
      return;
    }
    if (!is<ScrapeRequest>(m, 'metrics-scrape')) return;
    const answer = (a: Omit<ScrapeAnswer, 'frontline' | 'id'>): void => {
      if (worker.isConnected()) worker.send({ frontline: 'metrics-text', id: m.id, ...a } satisfies ScrapeAnswer);
    };
    const id = next++;
    const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined && w.isConnected());
    const g = { families: [] as unknown[][], pending: new Set(workers), done: () => undefined as void };
    const all = new Promise<void>((resolve) => {
      g.done = resolve;
      setTimeout(resolve, WORKER_WAIT_MS).unref();
    });
    gathering.set(id, g);
    for (const w of workers) w.send({ frontline: 'metrics-get', id } satisfies FamiliesRequest);
    if (workers.length === 0) g.done();
    void all
      .then(() => {
        gathering.delete(id);
        return AggregatorRegistry.aggregate(g.families as never).metrics();
      })
      .then(
        (text) => answer({ text }),
        (err: unknown) => answer({ error: (err as Error).message }),
      );
  });
}
