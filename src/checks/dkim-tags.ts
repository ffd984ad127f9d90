// The tag=value list of RFC 6376 §3.2, the one format of both a
// DKIM-Signature field and a DKIM key record. Strict where the RFC is: a tag
// name is ALPHA *(ALPHA / DIGIT / "_"), every tag-spec has "=", and a
// duplicated tag makes the whole list invalid. Lenient where refusing would
// only punish harmless noise: empty specs (";;") and a trailing ";" are
// skipped. Values keep their inner folding whitespace, trimmed at both ends;
// callers that need it removed (b=, bh=, p=) remove it. Tag names are
// case-sensitive (§3.2): `D=` is an unknown tag, not d=.

export type TagList = ReadonlyMap<string, string>;

const TAG_NAME = /^[A-Za-z][A-Za-z0-9_]*$/;

/** The tags of `text`, or the reason it is not a tag-list. */
export function parseTagList(text: string): { tags: TagList } | { error: string } {
  const tags = new Map<string, string>();
  for (const spec of text.split(';')) {
    if (spec.trim() === '') continue;
    const eq = spec.indexOf('=');
    if (eq < 0) return { error: `"${clip(spec.trim())}" is not tag=value` };
    const name = spec.slice(0, eq).trim();
    if (!TAG_NAME.test(name)) return { error: `"${clip(name)}" is not a tag name` };
    if (tags.has(name)) return { error: `tag ${name}= appears twice` };
    tags.set(name, spec.slice(eq + 1).trim());
  }
  return { tags };
}

/** A colon-separated tag value (h=, q=, s=, t=, and the key's h=) as lower-cased items. */
export function colonList(value: string): string[] {
  return value
    .split(':')
    .map((v) => v.trim().toLowerCase())
    .filter((v) => v !== '');
}

function clip(s: string): string {
  return s.length > 40 ? `${s.slice(0, 40)}...` : s;
}
