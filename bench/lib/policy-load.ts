// The load generator of the policy-protocol benchmarks: N connections that
// each play one Postfix smtpd process, sending one request and waiting for
// its answer before the next (Postfix never pipelines policy requests).
//
// Built to cost the machine as little as it can, because it shares the two
// vCPUs with the server it measures: each request is one string built from
// a pre-encoded fixed part plus the attributes that change, the next request
// is sent from inside the data handler (no promise or timer per request),
// and an answer is found with one indexOf. The test suite's PolicyClient is
// the general client (pipelining, raw bytes, close handling); this one only
// measures.

import net from 'node:net';

/** One request: its bytes, and a judge of the answer (the `action=` value). */
export interface LoadRequest {
  wire: string;
  ok: (action: string) => boolean;
}

export interface PolicyLoadOptions {
  host: string;
  port: number;
  /** A unix socket to connect to instead of host:port. */
  path?: string;
  connections: number;
  warmupS: number;
  seconds: number;
  /** The n-th request overall, for connection `conn`. */
  next: (n: number, conn: number) => LoadRequest;
  /** Told when the measured window starts and ends (to read CPU counters). */
  onWindow?: (edge: 'start' | 'end') => void;
}

export interface PolicyLoadResult {
  /** Latencies (ms) of the answers received inside the measured window, sorted. */
  sorted: Float64Array;
  elapsed: number;
  /** Answers in the window by their first word. */
  byKind: Map<string, number>;
  /** Answers in the window, whole, counted (for callers that classify them further). */
  answers: Map<string, number>;
  wrong: number;
  wrongExamples: string[];
}

/** The fixed part of a request: every attribute but the ones that change per request, each `name=value\n`. */
export function encodeAttributes(attrs: Record<string, string>): string {
  let s = '';
  for (const k in attrs) s += `${k}=${attrs[k]}\n`;
  return s;
}

export async function runPolicyLoad(o: PolicyLoadOptions): Promise<PolicyLoadResult> {
  let seq = 0;
  let measuring = false;
  let stopping = false;
  let latencies = new Float64Array(1 << 20);
  let count = 0;
  const byKind = new Map<string, number>();
  const answers = new Map<string, number>();
  let wrong = 0;
  const wrongExamples: string[] = [];
  const finished: Array<Promise<void>> = [];

  const record = (ms: number, action: string, ok: boolean): void => {
    if (count === latencies.length) {
      const bigger = new Float64Array(latencies.length * 2);
      bigger.set(latencies);
      latencies = bigger;
    }
    latencies[count++] = ms;
    answers.set(action, (answers.get(action) ?? 0) + 1);
    if (!ok) {
      wrong++;
      if (wrongExamples.length < 5) wrongExamples.push(action);
    }
  };

  const sockets: net.Socket[] = [];
  for (let id = 0; id < o.connections; id++) {
    const socket = o.path !== undefined ? net.connect({ path: o.path }) : net.connect({ host: o.host, port: o.port });
    if (o.path === undefined) socket.setNoDelay(true);
    socket.setEncoding('latin1');
    sockets.push(socket);
    let buffer = '';
    let current: LoadRequest | undefined;
    let t0 = 0;
    const send = (): void => {
      if (stopping) {
        socket.end();
        return;
      }
      current = o.next(seq++, id);
      t0 = performance.now();
      socket.write(current.wire);
    };
    finished.push(
      new Promise<void>((resolve, reject) => {
        socket.once('connect', send);
        socket.once('close', () => resolve());
        socket.once('error', (e) => (stopping ? resolve() : reject(e)));
      }),
    );
    socket.on('data', (chunk: string) => {
      buffer = buffer.length === 0 ? chunk : buffer + chunk;
      const end = buffer.indexOf('\n\n');
      if (end < 0) return;
      const ms = performance.now() - t0;
      // "action=..." up to the blank line; Postfix sends one request at a time, so one answer is due.
      const action = buffer.slice(7, end);
      buffer = buffer.slice(end + 2);
      if (measuring && current) record(ms, action, current.ok(action));
      send();
    });
  }

  await new Promise((r) => setTimeout(r, o.warmupS * 1000));
  o.onWindow?.('start');
  measuring = true;
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, o.seconds * 1000));
  measuring = false;
  const elapsed = (performance.now() - t0) / 1000;
  o.onWindow?.('end');
  stopping = true;
  await Promise.all(finished);

  for (const [action, n] of answers) {
    const kind = action.split(/[ :]/)[0];
    byKind.set(kind, (byKind.get(kind) ?? 0) + n);
  }
  return { sorted: latencies.slice(0, count).sort(), elapsed, byKind, answers, wrong, wrongExamples };
}
