// Command lines as the client sends them: a verb and its argument, and the
// reverse/forward path of MAIL FROM and RCPT TO with their ESMTP parameters.

export interface Command {
  verb: string;
  arg: string;
}

export function parseCommand(line: string): Command {
  const m = /^\s*([A-Za-z]+)(?:\s+(.*))?$/.exec(line);
  if (!m) return { verb: '', arg: line.trim() };
  return { verb: m[1].toUpperCase(), arg: (m[2] ?? '').trim() };
}

export interface PathArg {
  /** Address without angle brackets; '' for the null path `<>`. */
  address: string;
  /** ESMTP parameters, upper-case keyword → value ('' when there is none). */
  params: Map<string, string>;
}

const FROM_RE = /^FROM:\s*(.*)$/i;
const TO_RE = /^TO:\s*(.*)$/i;

/**
 * `FROM:<a@b> SIZE=123` or `TO:<a@b>` (a space after the colon and a missing
 * pair of brackets are tolerated, as most MTAs do). Undefined on bad syntax.
 */
export function parsePath(arg: string, keyword: 'FROM' | 'TO'): PathArg | undefined {
  const m = (keyword === 'FROM' ? FROM_RE : TO_RE).exec(arg);
  if (!m) return undefined;
  const rest = m[1];
  let address: string;
  let tail: string;
  if (rest.startsWith('<')) {
    const close = rest.indexOf('>');
    if (close < 0) return undefined;
    address = rest.slice(1, close);
    tail = rest.slice(close + 1);
  } else {
    const sp = rest.search(/\s/);
    address = sp < 0 ? rest : rest.slice(0, sp);
    tail = sp < 0 ? '' : rest.slice(sp);
  }
  // A source route (`<@a,@b:user@c>`) is obsolete; keep only the mailbox.
  const colon = address.startsWith('@') ? address.indexOf(':') : -1;
  if (colon >= 0) address = address.slice(colon + 1);
  if (/[\s<>]/.test(address)) return undefined;
  if (keyword === 'TO' && address === '') return undefined;
  const params = new Map<string, string>();
  for (const p of tail.trim().split(/\s+/).filter(Boolean)) {
    const eq = p.indexOf('=');
    const key = (eq < 0 ? p : p.slice(0, eq)).toUpperCase();
    if (!/^[A-Z0-9][A-Z0-9-]*$/.test(key)) return undefined;
    params.set(key, eq < 0 ? '' : p.slice(eq + 1));
  }
  return { address, params };
}

/**
 * The MAIL or RCPT line for `address` with the parameters of a parsed one:
 * what the gate sends the backend when it rewrote the address (gate.outbound).
 */
export function pathLine(verb: 'MAIL' | 'RCPT', address: string, params: ReadonlyMap<string, string>): Buffer {
  const ps = [...params].map(([k, v]) => (v === '' ? ` ${k}` : ` ${k}=${v}`)).join('');
  return Buffer.from(`${verb} ${verb === 'MAIL' ? 'FROM' : 'TO'}:<${address}>${ps}\r\n`, 'utf8');
}
