// How the backend learns who the real client is: Postfix's XCLIENT (the
// backend then applies its own client restrictions to the real address, as if
// the client had connected to it) or XFORWARD (logging and Received headers
// only, re-sent before every transaction). Values are xtext (RFC 3461), and
// only attributes the backend announced are sent.

export interface ClientFacts {
  ip: string;
  port: number;
  /** Verified client host name; undefined = unknown. */
  name?: string;
  /** `[TEMPUNAVAIL]` instead of `[UNAVAILABLE]` when the name lookup failed temporarily. */
  nameTempFail?: boolean;
  /** The PTR name, verified or not. */
  reverseName?: string;
  helo?: string;
  /** SMTP or ESMTP, as the client greeted. */
  proto: 'SMTP' | 'ESMTP';
  /** SASL login the backend itself accepted earlier in this session (XCLIENT LOGIN on a new link). */
  login?: string;
  /** Session id (XFORWARD IDENT). */
  ident?: string;
  /** The gate's own address the client connected to. */
  destIp?: string;
  destPort?: number;
}

/** RFC 3461 xtext: every byte outside "!".."~", and "+" and "=", as +HH. */
export function xtext(value: string): string {
  let out = '';
  for (const b of Buffer.from(value, 'utf8')) {
    out += b < 0x21 || b > 0x7e || b === 0x2b || b === 0x3d ? `+${b.toString(16).toUpperCase().padStart(2, '0')}` : String.fromCharCode(b);
  }
  return out;
}

/** Postfix writes IPv6 client addresses with an `IPV6:` prefix. */
function addr(ip: string): string {
  return ip.includes(':') ? `IPV6:${ip}` : ip;
}

function unavailable(f: ClientFacts): string {
  return f.nameTempFail ? '[TEMPUNAVAIL]' : '[UNAVAILABLE]';
}

function build(verb: string, announced: string, attrs: Array<[string, string | undefined]>): string | undefined {
  const names = new Set(announced.toUpperCase().split(/\s+/).filter(Boolean));
  const parts = attrs.filter(([k, v]) => v !== undefined && names.has(k)).map(([k, v]) => `${k}=${xtext(v as string)}`);
  return parts.length > 0 ? `${verb} ${parts.join(' ')}` : undefined;
}

/** The XCLIENT command for the backend's announced attribute list, or undefined when none applies. */
export function xclientCommand(announced: string, f: ClientFacts): string | undefined {
  return build('XCLIENT', announced, [
    ['ADDR', addr(f.ip)],
    ['PORT', String(f.port)],
    ['NAME', f.name ?? unavailable(f)],
    ['REVERSE_NAME', f.reverseName ?? unavailable(f)],
    ['HELO', f.helo ?? '[UNAVAILABLE]'],
    ['PROTO', f.proto],
    ['DESTADDR', f.destIp ? addr(f.destIp) : undefined],
    ['DESTPORT', f.destPort !== undefined ? String(f.destPort) : undefined],
    ['LOGIN', f.login],
  ]);
}

/** The XFORWARD command for the backend's announced attribute list, or undefined when none applies. */
export function xforwardCommand(announced: string, f: ClientFacts): string | undefined {
  return build('XFORWARD', announced, [
    ['NAME', f.name ?? '[UNAVAILABLE]'],
    ['ADDR', addr(f.ip)],
    ['PORT', String(f.port)],
    ['PROTO', f.proto],
    ['HELO', f.helo ?? '[UNAVAILABLE]'],
    ['IDENT', f.ident],
    ['SOURCE', 'REMOTE'],
  ]);
}

/** The attributes of one XFORWARD command a trusted peer sent us; undefined on bad syntax. */
export function parseXforward(arg: string): Map<string, string> | undefined {
  const out = new Map<string, string>();
  const parts = arg.split(/\s+/).filter(Boolean);
  if (parts.length === 0) return undefined;
  for (const p of parts) {
    const m = /^([A-Za-z_]+)=(.*)$/.exec(p);
    if (!m) return undefined;
    const key = m[1].toUpperCase();
    if (!XFORWARD_ATTRS.includes(key)) return undefined;
    out.set(key, unxtext(m[2]));
  }
  return out;
}

export const XFORWARD_ATTRS = ['NAME', 'ADDR', 'PORT', 'PROTO', 'HELO', 'IDENT', 'SOURCE'];

function unxtext(v: string): string {
  return v.replace(/\+([0-9A-Fa-f]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
}

/** NAME/HELO values that mean "not known". */
export function isUnavailable(v: string | undefined): boolean {
  return v === undefined || v === '' || v === '[UNAVAILABLE]' || v === '[TEMPUNAVAIL]';
}
