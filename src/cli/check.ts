// `frontline check`: run the policy on one envelope (flags) or on one JSON
// envelope per stdin line, and show the verdict, the deciding rule and every
// piece of evidence.

import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { STAGES, type Envelope, type Evidence, type Stage, type Verdict } from '../core/types.js';
import { loadConfig, type Config } from '../config/load.js';
import { normaliseIp } from '../dns/reverse.js';
import { createLogger } from '../log.js';
import { actionFor, headerToPrepend } from '../postfix/reply.js';
import type { Policy } from '../policy/index.js';
import { buildRuntime, splitList } from './runtime.js';
import { openConfiguredStore } from './store.js';
import { InputError } from './input-error.js';

export interface CheckOptions {
  ip?: string;
  helo?: string;
  from?: string;
  rcpt?: string[];
  auth?: string;
  config?: string;
  dns?: string;
  dnsTimeout?: string;
  json?: boolean;
  stage?: string;
  stdin?: boolean;
}

export interface CheckIo {
  stdin: Readable;
  stdout: Writable;
  stderr: Writable;
}

/** One envelope to judge, as given by flags or a stdin line. */
export interface CheckInput {
  ip: string;
  helo?: string;
  from?: string;
  rcpt: string[];
  auth?: string;
  stage: Stage;
}

export interface RecipientResult {
  rcpt: string;
  action: Verdict['action'];
  code?: number;
  status?: string;
  text?: string;
  rule: string;
  postfix: string;
}

export interface CheckResult {
  ip: string;
  helo?: string;
  from?: string;
  rcpt: string[];
  auth?: string;
  stage: Stage;
  action: Verdict['action'];
  code?: number;
  status?: string;
  text?: string;
  rule: string;
  /** What the Postfix policy server would answer (`action=` value). */
  postfix: string;
  headers: Array<[string, string]>;
  evidence: Evidence[];
  wouldHave?: Verdict['wouldHave'];
  score?: number;
  /** One entry per recipient when there are several (each RCPT is judged in turn). */
  recipients?: RecipientResult[];
}

export { InputError };

/** Returns the process exit code: 0 when every envelope was judged, 1 on bad input or config. */
export async function check(opts: CheckOptions, io: CheckIo): Promise<number> {
  const config = loadConfig(opts.config, { dns: splitList(opts.dns) });
  if (opts.dnsTimeout !== undefined) {
    const ms = Number(opts.dnsTimeout);
    if (!Number.isInteger(ms) || ms <= 0) throw new InputError(`--dns-timeout: expected milliseconds (a positive whole number), got ${JSON.stringify(opts.dnsTimeout)}`);
    config.dns.timeout_ms = ms;
  }
  // Results go to stdout; the log (warnings only) goes to stderr.
  const logger = createLogger({ level: config.log.level === 'info' ? 'warn' : config.log.level, stream: 'stderr', buffered: false });
  // An empty in-memory store: the store's rules run, but check neither reads nor changes the server's state
  // (no greylist entry is made, no rate-limit token taken, nobody banned).
  const store = await openConfiguredStore(config, { memory: true });
  const runtime = buildRuntime(config, logger, store);
  try {
    if (opts.stdin) return await checkLines(runtime.policy, config, io);
    const input = inputOf({ ip: opts.ip, helo: opts.helo, from: opts.from, rcpt: opts.rcpt, auth: opts.auth, stage: opts.stage });
    const result = await judge(runtime.policy, config, input);
    io.stdout.write(opts.json ? `${JSON.stringify(result)}\n` : table(result));
    return 0;
  } finally {
    runtime.close();
    await store.close();
  }
}

async function checkLines(policy: Policy, config: Config, io: CheckIo): Promise<number> {
  const lines = createInterface({ input: io.stdin, crlfDelay: Infinity });
  let n = 0;
  for await (const line of lines) {
    n++;
    if (line.trim() === '') continue;
    let out: unknown;
    try {
      let raw: unknown;
      try {
        raw = JSON.parse(line);
      } catch (e) {
        throw new InputError(`not JSON: ${(e as Error).message}`);
      }
      if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new InputError('expected a JSON object like {"ip","helo","from","rcpt"}');
      out = await judge(policy, config, inputOf(raw as Record<string, unknown>));
    } catch (e) {
      out = { error: (e as Error).message, line: n };
    }
    io.stdout.write(`${JSON.stringify(out)}\n`);
  }
  return 0;
}

/** Validate loose input (flags or a JSON object) into a CheckInput. Throws InputError. */
export function inputOf(raw: Record<string, unknown>): CheckInput {
  const str = (key: string): string | undefined => {
    const v = raw[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string') throw new InputError(`"${key}" must be a string`);
    return v;
  };
  const ipText = str('ip');
  if (ipText === undefined || ipText === '') throw new InputError('"ip" (--ip) is required: the client IP address');
  let ip: string;
  try {
    ip = normaliseIp(ipText);
  } catch {
    throw new InputError(`"ip": ${JSON.stringify(ipText)} is not an IP address`);
  }
  const stageText = str('stage') ?? 'rcpt';
  if (!(STAGES as readonly string[]).includes(stageText)) throw new InputError(`"stage": expected one of ${STAGES.join('|')}, got ${JSON.stringify(stageText)}`);
  const stage = stageText as Stage;
  let rcpt: string[] = [];
  const r = raw.rcpt;
  if (typeof r === 'string') rcpt = r === '' ? [] : [r];
  else if (Array.isArray(r) && r.every((x) => typeof x === 'string')) rcpt = r as string[];
  else if (r !== undefined && r !== null) throw new InputError('"rcpt" must be a string or a list of strings');
  let from = str('from');
  if (from === '<>') from = '';
  if (from !== undefined) from = from.replace(/^<(.*)>$/, '$1');
  const input: CheckInput = { ip, rcpt: rcpt.map((a) => a.replace(/^<(.*)>$/, '$1')), stage };
  const helo = str('helo');
  if (helo) input.helo = helo;
  if (from !== undefined) input.from = from;
  const auth = str('auth');
  if (auth) input.auth = auth;
  for (const [key, v] of Object.entries(input)) {
    if (typeof v === 'string' && /[\r\n\0]/.test(v)) throw new InputError(`"${key}" contains a line break or NUL`);
  }
  return input;
}

/** Judge one envelope the way the Postfix policy server would: one transaction, each RCPT in turn. */
export async function judge(policy: Policy, config: Config, input: CheckInput): Promise<CheckResult> {
  const tx = policy.transaction({ seesMessage: false });
  const base: Envelope = { clientIp: input.ip, rcpts: [] };
  if (input.helo !== undefined) base.helo = input.helo;
  if (input.from !== undefined) base.from = input.from;
  if (input.auth !== undefined) base.saslUser = input.auth;
  const replyOpts = { acceptReply: config.postfix.accept_reply, onFault: config.postfix.on_fault };
  const prepended = new Set<string>();
  const perRcpt = input.stage === 'rcpt' && input.rcpt.length > 1;
  const rounds = perRcpt ? input.rcpt.map((_, i) => input.rcpt.slice(0, i + 1)) : [input.rcpt];
  const recipients: RecipientResult[] = [];
  let verdict: Verdict | undefined;
  let postfix = '';
  for (const rcpts of rounds) {
    verdict = await tx.evaluate(input.stage, { ...base, rcpts });
    postfix = actionFor(verdict, replyOpts, headerToPrepend(verdict, replyOpts, prepended));
    recipients.push({ rcpt: rcpts[rcpts.length - 1], action: verdict.action, code: verdict.code, status: verdict.status, text: verdict.text, rule: verdict.rule, postfix });
  }
  const v = verdict!;
  const result: CheckResult = {
    ...input,
    action: v.action,
    code: v.code,
    status: v.status,
    text: v.text,
    rule: v.rule,
    postfix,
    headers: v.headers,
    evidence: v.evidence,
    wouldHave: v.wouldHave?.length ? v.wouldHave : undefined,
    score: v.score,
  };
  if (perRcpt) result.recipients = recipients;
  return result;
}

/** The human-readable report. */
export function table(r: CheckResult): string {
  const lines: string[] = [];
  const who = [`client ${r.ip}`, r.helo !== undefined ? `helo ${r.helo}` : undefined, r.from !== undefined ? `from <${r.from}>` : undefined, r.rcpt.length ? `rcpt ${r.rcpt.map((a) => `<${a}>`).join(' ')}` : undefined, r.auth ? `auth ${r.auth}` : undefined]
    .filter(Boolean)
    .join(', ');
  lines.push(`${who} — stage ${r.stage}`);
  lines.push(`verdict   ${verdictLine(r)}`);
  lines.push(`rule      ${ruleLine(r)}`);
  lines.push(`postfix   action=${r.postfix}`);
  if (r.score !== undefined) lines.push(`score     ${r.score}`);
  for (const w of r.wouldHave ?? []) lines.push(`test mode rule ${w.rule} would have: ${w.action}${w.code ? ` ${w.code}` : ''}${w.text ? ` ${w.text}` : ''}`);
  for (const rr of r.recipients ?? []) lines.push(`rcpt      <${rr.rcpt}>: ${outcomeWord(rr.action)}${rr.code ? ` ${rr.code}` : ''} (rule ${rr.rule})`);
  for (const [name, value] of r.headers) lines.push(`header    ${name}: ${value}`);
  lines.push('');
  const rows = r.evidence.map((e) => [e.check, e.result, e.ms.toFixed(1), e.detail]);
  const head = ['check', 'result', 'ms', 'detail'];
  const w0 = Math.max(head[0].length, ...rows.map((x) => x[0].length));
  const w1 = Math.max(head[1].length, ...rows.map((x) => x[1].length));
  const w2 = Math.max(head[2].length, ...rows.map((x) => x[2].length));
  const fmt = (x: string[]) => `${x[0].padEnd(w0)}  ${x[1].padEnd(w1)}  ${x[2].padStart(w2)}  ${x[3]}`;
  lines.push(fmt(head));
  for (const row of rows) lines.push(fmt(row));
  if (rows.length === 0) lines.push('(no evidence was needed)');
  return `${lines.join('\n')}\n`;
}

/**
 * What the admin reads first. A `continue` verdict is a pass — nothing refused
 * the message (rule `default`), or a rule can only decide at a later stage —
 * and Postfix hears DUNNO (or PREPEND, a pass that adds a header), not
 * "CONTINUE".
 */
function verdictLine(r: CheckResult): string {
  const reply = r.code !== undefined ? ` ${r.code}${r.status ? ` ${r.status}` : ''}${r.text ? ` ${r.text}` : ''}` : '';
  const gets = r.postfix.startsWith('PREPEND ') ? 'PREPEND (a pass that adds a header)' : r.postfix.split(' ')[0];
  if (r.action === 'continue') {
    return r.rule === 'default' ? `PASS: no rule refused it (Postfix gets ${gets})` : `PASS for now: rule ${r.rule} decides at a later stage (Postfix gets ${gets})`;
  }
  if (r.action === 'accept') return `ACCEPT (Postfix gets ${gets})`;
  if (r.action === 'tag') return `PASS, tagged${r.text ? `: ${r.text}` : ''} (Postfix gets ${gets})`;
  return `${r.action.toUpperCase()}${reply}`;
}

function ruleLine(r: CheckResult): string {
  if (r.action === 'continue' && r.rule === 'default') return 'none (every rule let it through)';
  if (r.action === 'continue') return `${r.rule} (not decidable at stage ${r.stage})`;
  return r.rule;
}

function outcomeWord(action: Verdict['action']): string {
  return action === 'continue' ? 'PASS' : action.toUpperCase();
}
