// The worker thread that runs content rules, so that a pattern which takes
// too long can be stopped by terminating the thread (content-pool.ts) while
// the gate's event loop goes on serving other clients.

import { parentPort } from 'node:worker_threads';
import { matchContent, type RegexCache } from './content-match.js';
import type { WorkerJob, WorkerReply } from './content-pool.js';

const MAX_CACHED_PATTERNS = 1000;
const cache: RegexCache = new Map();

parentPort?.on('message', (job: WorkerJob) => {
  let reply: WorkerReply;
  try {
    if (cache.size > MAX_CACHED_PATTERNS) cache.clear();
    reply = { id: job.id, ok: true, result: matchContent(job.message, job.rules, job.limits, cache) };
  } catch (e) {
    reply = { id: job.id, ok: false, error: (e as Error).message };
  }
  parentPort?.postMessage(reply);
});
parentPort?.postMessage({ ready: true } satisfies WorkerReply);
