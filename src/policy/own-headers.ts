// Result headers a message brings with it that only frontline may write: an
// Authentication-Results claiming our authserv-id (RFC 8601 §5: a receiver
// MUST remove those that claim to come from inside its trust boundary) and
// every header named as one of ours (headers.checks, headers.tag). They are
// removed from the message's header section before the gate passes it on,
// so what the next hop reads under our name is what we wrote. The body is
// never touched.

export interface OwnHeaders {
  /** Our authserv-id (headers.authserv_id, or the host name). */
  authservId: string;
  /** Names of the headers we add besides Authentication-Results. */
  names: readonly string[];
}

export interface Stripped {
  /** The message without them: the same buffer when there were none. */
  message: Buffer;
  /** Names of the fields removed, as the message spelt them. */
  removed: string[];
}

const AR = 'authentication-results';
const CRLFCRLF = Buffer.from('\r\n\r\n');

const filters = new WeakMap<OwnHeaders, RegExp>();

/** A field whose name may be ours, at the start of the header section or of a line. */
function candidates(own: OwnHeaders): RegExp {
  let re = filters.get(own);
  if (!re) {
    const names = [AR, ...own.names].map((n) => n.replace(/[.*+?^${}()|[\]\\-]/g, '\\$&'));
    re = new RegExp(`(?:^|\\n)(?:${names.join('|')})[ \\t]*:`, 'i');
    filters.set(own, re);
  }
  return re;
}

export function stripOwnHeaders(message: Buffer, own: OwnHeaders): Stripped {
  // The header section ends at the first empty line (the message is CRLF lines).
  const blank = message.indexOf(CRLFCRLF);
  const end = message.length >= 2 && message[0] === 13 && message[1] === 10 ? 0 : blank < 0 ? message.length : blank + 2;
  if (end === 0) return { message, removed: [] };
  // latin1: one character per byte, so string offsets are byte offsets.
  const head = message.toString('latin1', 0, end);
  if (!candidates(own).test(head)) return { message, removed: [] };
  const names = new Set(own.names.map((n) => n.toLowerCase()));
  const id = own.authservId.toLowerCase();
  const kept: Buffer[] = [];
  const removed: string[] = [];
  let keptFrom = 0;
  let field = 0;
  while (field < end) {
    // A field runs to the CRLF not followed by a space or tab (its folded lines).
    let next = field;
    do {
      const crlf = head.indexOf('\r\n', next);
      next = crlf < 0 ? end : crlf + 2;
    } while (next < end && (head[next] === ' ' || head[next] === '\t'));
    const colon = head.indexOf(':', field);
    const name = colon > field && colon < next ? head.slice(field, colon).trim() : '';
    const lower = name.toLowerCase();
    if (names.has(lower) || (lower === AR && authservIdOf(head.slice(colon + 1, next)) === id)) {
      if (field > keptFrom) kept.push(message.subarray(keptFrom, field));
      keptFrom = next;
      removed.push(name);
    }
    field = next;
  }
  if (removed.length === 0) return { message, removed };
  kept.push(message.subarray(keptFrom));
  return { message: Buffer.concat(kept), removed };
}

/** The authserv-id an Authentication-Results value starts with (after comments), lower-case. */
export function authservIdOf(value: string): string {
  let i = 0;
  // CFWS: white space and (possibly nested) comments.
  for (;;) {
    while (i < value.length && /\s/.test(value[i])) i++;
    if (value[i] !== '(') break;
    let depth = 0;
    for (; i < value.length; i++) {
      if (value[i] === '\\') i++;
      else if (value[i] === '(') depth++;
      else if (value[i] === ')' && --depth === 0) {
        i++;
        break;
      }
    }
  }
  if (value[i] === '"') {
    let out = '';
    for (i++; i < value.length && value[i] !== '"'; i++) out += value[i] === '\\' ? value[++i] ?? '' : value[i];
    return out.toLowerCase();
  }
  const m = /^[^\s;()]+/.exec(value.slice(i));
  return (m?.[0] ?? '').toLowerCase();
}
