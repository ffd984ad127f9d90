// A static look at a JavaScript regular expression for the shapes that make a
// backtracking engine take exponential (or high-degree polynomial) time:
//
// - a repetition of something that itself varies in length (`(a+)+`,
//   `(\w+\s?)*`, and fixed or small counts too: `(\d*){12}`, `(.*a){12}`
//   and `(a+){2,5}` are as bad on a 40-byte line: a count of k over a body
//   that can split its input n ways tries about n^k splits);
// - a repetition of something that can match the empty string (`(a?){12}`,
//   `(a|){20}`): each iteration may take a character or nothing;
// - a repetition of alternatives that can start with the same character
//   (`(a|a)*`, `(\w|\d)+`).
//
// Content rules and custom log patterns with such shapes are refused when the
// config loads. What this misses (polynomial blow-ups of adjacent repetitions
// such as `a*a*a*b`) is stopped elsewhere: content rules run in workers with a
// per-message deadline, custom log patterns run on RE2 (linear time). The
// analysis is conservative: it would rather refuse a safe pattern than accept
// a dangerous one, but it accepts the common safe forms where each repetition
// ends (or starts) at a delimiter the inner repetition cannot match, such as
// `([a-z0-9-]+\.)+`, `(?:,\s*\w+)*` and `(\d{1,3}\.){3}`.

/** A set of characters: exact for ASCII, one bit for everything else. */
class CharSet {
  constructor(
    readonly ascii: bigint = 0n,
    readonly other = false,
  ) {}
  static readonly EMPTY = new CharSet();
  static readonly ANY = new CharSet((1n << 128n) - 1n, true);
  static of(code: number): CharSet {
    return code < 128 ? new CharSet(1n << BigInt(code)) : new CharSet(0n, true);
  }
  static range(from: number, to: number): CharSet {
    let bits = 0n;
    for (let c = from; c <= Math.min(to, 127); c++) bits |= 1n << BigInt(c);
    return new CharSet(bits, to >= 128);
  }
  union(o: CharSet): CharSet {
    return new CharSet(this.ascii | o.ascii, this.other || o.other);
  }
  intersects(o: CharSet): boolean {
    return (this.ascii & o.ascii) !== 0n || (this.other && o.other);
  }
  negate(): CharSet {
    return new CharSet(~this.ascii & ((1n << 128n) - 1n), true);
  }
  /** Add the other case of every ASCII letter (the `i` flag). */
  caseFolded(): CharSet {
    let bits = this.ascii;
    for (let c = 65; c <= 90; c++) {
      const upper = 1n << BigInt(c);
      const lower = 1n << BigInt(c + 32);
      if (bits & (upper | lower)) bits |= upper | lower;
    }
    return new CharSet(bits, this.other);
  }
}

const DIGIT = CharSet.range(48, 57);
const WORD = DIGIT.union(CharSet.range(65, 90)).union(CharSet.range(97, 122)).union(CharSet.of(95));
const SPACE = [9, 10, 11, 12, 13, 32].reduce((s, c) => s.union(CharSet.of(c)), new CharSet(0n, true));

type Node =
  | { t: 'atom'; set: CharSet }
  | { t: 'empty' } // assertions: ^ $ \b \B, and lookarounds (their body kept for the nested check)
  | { t: 'look'; body: Node }
  | { t: 'backref' }
  | { t: 'seq'; items: Node[] }
  | { t: 'alt'; alts: Node[] }
  | { t: 'quant'; body: Node; min: number; max: number };

/** Repetition counts at or above this are treated as unbounded. */
const LARGE = 10;

class Parser {
  private i = 0;
  constructor(
    private readonly src: string,
    private readonly fold: boolean,
  ) {}

  parse(): Node {
    return this.alternation();
  }

  private peek(): string {
    return this.src[this.i] ?? '';
  }

  private alternation(): Node {
    const alts = [this.sequence()];
    while (this.peek() === '|') {
      this.i++;
      alts.push(this.sequence());
    }
    return alts.length === 1 ? alts[0] : { t: 'alt', alts };
  }

  private sequence(): Node {
    const items: Node[] = [];
    while (this.i < this.src.length && this.peek() !== '|' && this.peek() !== ')') {
      let atom = this.atom();
      atom = this.quantified(atom);
      items.push(atom);
    }
    return items.length === 1 ? items[0] : { t: 'seq', items };
  }

  private quantified(atom: Node): Node {
    const c = this.peek();
    let min: number;
    let max: number;
    if (c === '*') [min, max] = [0, Infinity];
    else if (c === '+') [min, max] = [1, Infinity];
    else if (c === '?') [min, max] = [0, 1];
    else if (c === '{') {
      const m = /^\{(\d+)(,(\d*))?\}/.exec(this.src.slice(this.i));
      if (!m) return atom; // a literal brace
      min = Number(m[1]);
      max = m[2] === undefined ? min : m[3] === '' ? Infinity : Number(m[3]);
      this.i += m[0].length - 1;
    } else return atom;
    this.i++;
    if (this.peek() === '?') this.i++; // lazy: same backtracking, other order
    return { t: 'quant', body: atom, min, max };
  }

  private set(s: CharSet): Node {
    return { t: 'atom', set: this.fold ? s.caseFolded() : s };
  }

  private atom(): Node {
    const c = this.src[this.i++];
    switch (c) {
      case '^':
      case '$':
        return { t: 'empty' };
      case '.':
        return this.set(CharSet.ANY);
      case '[':
        return this.set(this.charClass());
      case '(':
        return this.group();
      case '\\':
        return this.escape(false) as Node;
      default:
        return this.set(CharSet.of(c.codePointAt(0) ?? 0));
    }
  }

  private group(): Node {
    let look = false;
    if (this.src.startsWith('?:', this.i)) this.i += 2;
    else if (this.src.startsWith('?=', this.i) || this.src.startsWith('?!', this.i)) [look, this.i] = [true, this.i + 2];
    else if (this.src.startsWith('?<=', this.i) || this.src.startsWith('?<!', this.i)) [look, this.i] = [true, this.i + 3];
    else if (this.src.startsWith('?<', this.i)) this.i = this.src.indexOf('>', this.i) + 1;
    const body = this.alternation();
    if (this.peek() === ')') this.i++;
    return look ? { t: 'look', body } : body;
  }

  /** After a backslash. In a class, returns a CharSet; outside, a Node. */
  private escape(inClass: boolean): Node | CharSet {
    const c = this.src[this.i++] ?? '';
    const set = (s: CharSet): Node | CharSet => (inClass ? s : this.set(s));
    switch (c) {
      case 'd':
        return set(DIGIT);
      case 'D':
        return set(DIGIT.negate());
      case 'w':
        return set(WORD);
      case 'W':
        return set(WORD.negate());
      case 's':
        return set(SPACE);
      case 'S':
        return set(SPACE.negate());
      case 'b':
        return inClass ? CharSet.of(8) : { t: 'empty' };
      case 'B':
        return inClass ? CharSet.of(66) : { t: 'empty' };
      case 'p':
      case 'P':
        if (this.peek() === '{') this.i = this.src.indexOf('}', this.i) + 1;
        return set(CharSet.ANY);
      case 'k':
        if (this.peek() === '<') this.i = this.src.indexOf('>', this.i) + 1;
        return inClass ? CharSet.of(107) : { t: 'backref' };
      case 'x': {
        const m = /^[0-9a-fA-F]{2}/.exec(this.src.slice(this.i));
        if (!m) return set(CharSet.of(120));
        this.i += 2;
        return set(CharSet.of(parseInt(m[0], 16)));
      }
      case 'u': {
        const m = /^(\{[0-9a-fA-F]+\}|[0-9a-fA-F]{4})/.exec(this.src.slice(this.i));
        if (!m) return set(CharSet.of(117));
        this.i += m[0].length;
        return set(CharSet.of(parseInt(m[0].replace(/[{}]/g, ''), 16)));
      }
      case 'c':
        this.i++;
        return set(CharSet.range(0, 31));
      case 't':
        return set(CharSet.of(9));
      case 'n':
        return set(CharSet.of(10));
      case 'r':
        return set(CharSet.of(13));
      case 'v':
        return set(CharSet.of(11));
      case 'f':
        return set(CharSet.of(12));
      case '0':
        return set(CharSet.of(0));
      default:
        if (/[1-9]/.test(c) && !inClass) {
          while (/[0-9]/.test(this.peek())) this.i++;
          return { t: 'backref' };
        }
        return set(CharSet.of(c.codePointAt(0) ?? 0));
    }
  }

  private classChar(): CharSet | number {
    const c = this.src[this.i++];
    if (c === '\\') {
      const save = this.i;
      const r = this.escape(true) as CharSet;
      // a single escaped character can start a range
      const text = this.src.slice(save, this.i);
      if (/^(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|[^dDwWsSpP])$/.test(text)) {
        const codes = [...Array(128).keys()].filter((k) => (r.ascii >> BigInt(k)) & 1n);
        if (codes.length === 1) return codes[0];
      }
      return r;
    }
    return c.codePointAt(0) ?? 0;
  }

  private charClass(): CharSet {
    let negated = false;
    if (this.peek() === '^') [negated, this.i] = [true, this.i + 1];
    let s = CharSet.EMPTY;
    while (this.i < this.src.length && this.peek() !== ']') {
      const a = this.classChar();
      if (typeof a === 'number' && this.peek() === '-' && this.src[this.i + 1] !== ']' && this.i + 1 < this.src.length) {
        this.i++;
        const b = this.classChar();
        s = s.union(typeof b === 'number' ? CharSet.range(a, b) : CharSet.of(a).union(CharSet.of(45)).union(b));
      } else s = s.union(typeof a === 'number' ? CharSet.of(a) : a);
    }
    this.i++; // ]
    if (this.fold) s = s.caseFolded();
    return negated ? s.negate() : s;
  }
}

function isEmptySet(s: CharSet): boolean {
  return s.ascii === 0n && !s.other;
}

function nullable(n: Node): boolean {
  switch (n.t) {
    case 'atom':
      return false;
    case 'seq':
      return n.items.every(nullable);
    case 'alt':
      return n.alts.some(nullable);
    case 'quant':
      return n.min === 0 || nullable(n.body);
    default:
      return true;
  }
}

/** Characters a match of `n` can start with (`end`: end with). */
function edge(n: Node, end: boolean): CharSet {
  switch (n.t) {
    case 'atom':
      return n.set;
    case 'backref':
      return CharSet.ANY;
    case 'seq': {
      let s = CharSet.EMPTY;
      const items = end ? [...n.items].reverse() : n.items;
      for (const item of items) {
        s = s.union(edge(item, end));
        if (!nullable(item)) break;
      }
      return s;
    }
    case 'alt':
      return n.alts.reduce((s, a) => s.union(edge(a, end)), CharSet.EMPTY);
    case 'quant':
      return n.max === 0 ? CharSet.EMPTY : edge(n.body, end);
    default:
      return CharSet.EMPTY;
  }
}

/** Every character a match of `n` can consume. */
function consumed(n: Node): CharSet {
  switch (n.t) {
    case 'atom':
      return n.set;
    case 'backref':
      return CharSet.ANY;
    case 'seq':
      return n.items.reduce((s, i) => s.union(consumed(i)), CharSet.EMPTY);
    case 'alt':
      return n.alts.reduce((s, a) => s.union(consumed(a)), CharSet.EMPTY);
    case 'quant':
      return consumed(n.body);
    default:
      return CharSet.EMPTY;
  }
}

/** Can the body of `q` follow itself, so that two iterations compete for the same characters? */
function iterates(q: { max: number }): boolean {
  return q.max >= 2;
}

/** Does `q` match a variable number of iterations (`?`, `*`, `{1,4}`)? */
function varies(q: { min: number; max: number }): boolean {
  return q.max > q.min;
}

/** Repetitions of variable length inside `n` (backreferences count: they match any length). */
function innerRepetitions(n: Node): Node[] {
  switch (n.t) {
    case 'backref':
      return [n];
    case 'seq':
      return n.items.flatMap(innerRepetitions);
    case 'alt':
      return n.alts.flatMap(innerRepetitions);
    case 'look':
      return innerRepetitions(n.body);
    case 'quant':
      return varies(n) ? [n, ...innerRepetitions(n.body)] : innerRepetitions(n.body);
    default:
      return [];
  }
}

/** Single characters every match of `body` must consume, at its top level. */
function delimiters(body: Node): CharSet[] {
  const items = body.t === 'seq' ? body.items : [body];
  return items.flatMap((i) => (i.t === 'atom' ? [i.set] : i.t === 'quant' && i.min >= 1 && i.min === i.max && i.body.t === 'atom' ? [i.body.set] : []));
}

/** Iterations of `body` can only be told apart one way: a mandatory delimiter no inner repetition can eat, and no overlap where one iteration ends and the next begins. */
function unambiguouslyDelimited(body: Node, inner: Node[]): boolean {
  const eaten = inner.reduce((s, n) => s.union(n.t === 'quant' ? consumed(n.body) : CharSet.ANY), CharSet.EMPTY);
  // Alternatives (`(re:|fwd?:)*`): each needs a delimiter of its own.
  const branches = body.t === 'alt' ? body.alts : [body];
  if (!branches.every((b) => delimiters(b).some((d) => !d.intersects(eaten)))) return false;
  return !edge(body, false).intersects(edge(body, true));
}

function problems(n: Node, out: string[]): void {
  switch (n.t) {
    case 'seq':
      n.items.forEach((i) => problems(i, out));
      return;
    case 'alt':
      n.alts.forEach((a) => problems(a, out));
      return;
    case 'look':
      problems(n.body, out);
      return;
    case 'quant': {
      if (iterates(n)) {
        const inner = innerRepetitions(n.body);
        if (nullable(n.body) && !isEmptySet(consumed(n.body))) {
          out.push('a repetition of something that can match the empty string (like (a?){12} or (\\d*)+): matching can take exponential time');
        } else if (inner.length > 0 && !unambiguouslyDelimited(n.body, inner)) {
          out.push('a repetition contains another repetition (like (a+)+ or (.*a){12}): matching can take exponential time');
        }
      }
      if (n.max >= LARGE) {
        if (n.body.t === 'alt') {
          const firsts = n.body.alts.map((a) => edge(a, false));
          const overlap = firsts.some((f, i) => firsts.some((g, j) => j > i && f.intersects(g)));
          if (overlap) out.push('a repetition of alternatives that can start with the same character (like (a|ab)*): matching can take exponential time');
        }
      }
      problems(n.body, out);
      return;
    }
    default:
      return;
  }
}

/**
 * Why `source` (with `flags`) risks catastrophic backtracking, or [] when no
 * risky shape was found. Call only with a source that compiles.
 */
export function backtrackingRisks(source: string, flags = ''): string[] {
  const out: string[] = [];
  problems(new Parser(source, flags.includes('i')).parse(), out);
  return [...new Set(out)];
}
