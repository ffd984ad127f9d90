// What RFC 6376 requires of a DKIM-Signature field (§3.5, §6.1.1) and of the
// key record it names (§3.6.1, §6.1.2), checked before mailauth's crypto is
// trusted: mailauth skips what it cannot parse without a word and lets pass
// signatures whose i= lies outside d=, whose key forbids their hash (h=) or
// their identity (t=s), or whose query method is not dns/txt.
//
// Two kinds of verdict, in RFC 8601's words (§2.7.1):
// - permerror: the signature or key breaks a rule of RFC 6376 — a malformed
//   tag-list, a required tag missing, i= outside d=, From not signed, q=
//   without dns/txt, and every key problem. A retry cannot change it.
// - neutral: a well-formed signature this verifier cannot process — an
//   algorithm (rsa-md5) or canonicalisation it does not implement, a version
//   other than 1. That is not the signer's error (new algorithms may be
//   registered), only one we cannot judge.

import { colonList, parseTagList, type TagList } from './dkim-tags.js';

/** A DKIM-Signature that passed §6.1.1: what the key lookup and the key checks need. */
export interface SignatureTags {
  /** d=, lower-cased. */
  domain: string;
  selector: string;
  /** a=, lower-cased. */
  algorithm: string;
  hash: string;
  keyType: string;
  /** The domain of i= (lower-cased); d= when i= is absent. */
  identityDomain: string;
  /** b= without whitespace: what pairs this signature with mailauth's result. */
  b: string;
}

/** A signature refused before its key was asked for: the verdict, and what could be read of it. */
export interface SignatureProblem {
  result: 'permerror' | 'neutral';
  comment: string;
  domain: string;
  selector: string;
  algorithm: string;
  b: string;
}

const REQUIRED = ['v', 'a', 'b', 'bh', 'd', 'h', 's'];
const ALGORITHMS = new Set(['rsa-sha256', 'rsa-sha1', 'ed25519-sha256']);
const CANONICALISATIONS = new Set(['simple', 'relaxed']);

/** Read one DKIM-Signature field value; a problem when §6.1.1 (or our algorithms) says not to verify it. */
export function readSignature(value: string): { sig: SignatureTags } | { problem: SignatureProblem } {
  const parsed = parseTagList(value);
  if ('error' in parsed) return { problem: problem('permerror', `signature syntax error: ${parsed.error}`, new Map()) };
  const tags = parsed.tags;
  const fail = (result: SignatureProblem['result'], comment: string) => ({ problem: problem(result, comment, tags) });
  for (const tag of REQUIRED) {
    if (!tags.get(tag)) return fail('permerror', `signature missing required tag ${tag}=`);
  }
  const v = tags.get('v') as string;
  if (v !== '1') return fail('neutral', `incompatible version v=${clip(v)}`);
  const algorithm = (tags.get('a') as string).toLowerCase();
  if (!ALGORITHMS.has(algorithm)) return fail('neutral', `unsupported algorithm a=${clip(algorithm)}`);
  const c = (tags.get('c') ?? 'simple/simple').toLowerCase().split('/');
  if (c.length > 2 || !c.every((x) => CANONICALISATIONS.has(x.trim()))) return fail('neutral', `unknown canonicalization c=${clip(tags.get('c') as string)}`);
  const domain = (tags.get('d') as string).toLowerCase().replace(/\.$/, '');
  const i = tags.get('i');
  let identityDomain = domain;
  if (i !== undefined) {
    const at = i.lastIndexOf('@');
    if (at < 0) return fail('permerror', `i=${clip(i)} is not an identity (no @)`);
    identityDomain = i.slice(at + 1).toLowerCase().replace(/\.$/, '');
    if (identityDomain !== domain && !identityDomain.endsWith(`.${domain}`)) {
      return fail('permerror', `domain mismatch: i= domain ${clip(identityDomain)} is not d=${domain} or below it`);
    }
  }
  if (!colonList(tags.get('h') as string).includes('from')) return fail('permerror', 'From field not signed');
  const q = tags.get('q');
  if (q !== undefined && !colonList(q).includes('dns/txt')) return fail('permerror', `query method q=${clip(q)} is not dns/txt`);
  const [keyType, hash] = algorithm.split('-');
  return { sig: { domain, selector: tags.get('s') as string, algorithm, hash, keyType, identityDomain, b: stripSpace(tags.get('b') as string) } };
}

/**
 * Why the key record `record` may not verify `sig` (§3.6.1, §6.1.2), or
 * undefined when it may. Every reason is a permerror. mailauth still checks
 * the key itself (base64, type, length).
 */
export function keyProblem(record: string, sig: SignatureTags): string | undefined {
  const parsed = parseTagList(record);
  if ('error' in parsed) return `key syntax error: ${parsed.error}`;
  const tags: TagList = parsed.tags;
  const v = tags.get('v');
  if (v !== undefined && v !== 'DKIM1') return `unknown key version v=${clip(v)}`;
  const h = tags.get('h');
  if (h !== undefined && !colonList(h).includes(sig.hash)) return `inappropriate hash algorithm: the key allows h=${clip(h)}, not ${sig.hash}`;
  const k = tags.get('k');
  if (k !== undefined && k.toLowerCase() !== sig.keyType) return `inappropriate key algorithm: k=${clip(k)} for a=${sig.algorithm}`;
  const s = tags.get('s');
  if (s !== undefined && !colonList(s).some((t) => t === '*' || t === 'email')) return `key is not for email (s=${clip(s)})`;
  const p = tags.get('p');
  if (p === undefined) return 'key syntax error: no p=';
  if (stripSpace(p) === '') return 'key revoked';
  const t = tags.get('t');
  if (t !== undefined && colonList(t).includes('s') && sig.identityDomain !== sig.domain) {
    return `domain mismatch: the key's t=s wants i= in d=${sig.domain} exactly, not ${clip(sig.identityDomain)}`;
  }
  return undefined;
}

function problem(result: SignatureProblem['result'], comment: string, tags: TagList): SignatureProblem {
  return {
    result,
    comment,
    domain: clip((tags.get('d') ?? '').toLowerCase()),
    selector: clip(tags.get('s') ?? ''),
    algorithm: clip((tags.get('a') ?? '').toLowerCase()),
    b: stripSpace(tags.get('b') ?? ''),
  };
}

function stripSpace(s: string): string {
  return s.replace(/\s+/g, '');
}

// Texts from the message go into comments and logs: bounded.
function clip(s: string): string {
  return s.length > 64 ? `${s.slice(0, 64)}...` : s;
}
