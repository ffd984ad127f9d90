// The decision line's `evidence` field: every check's result word by check
// name, `{"spf":"pass","mx":"nomatch",…}` — as JSON text, joined from one
// `"check":"result"` piece per evidence entry, each frozen (shared) entry's
// piece made once. Building an object and serialising it per decision cost
// more than the rest of the line's fields together.

import type { Evidence } from '../core/types.js';
import { JsonText, jsonString } from '../log.js';

const pieces = new WeakMap<Evidence, string>();

function piece(e: Evidence): string {
  let p = pieces.get(e);
  if (p === undefined) {
    p = `${jsonString(e.check)}:${jsonString(e.result)}`;
    if (Object.isFrozen(e)) pieces.set(e, p);
  }
  return p;
}

/** What `Object.fromEntries(evidence.map((e) => [e.check, e.result]))` serialises to (a check named twice: its last result, in its first place). */
export function evidenceSummary(evidence: readonly Evidence[]): JsonText {
  const n = evidence.length;
  if (n === 0) return new JsonText('{}');
  for (let i = 1; i < n; i++) {
    for (let j = 0; j < i; j++) {
      if (evidence[i].check === evidence[j].check) return new JsonText(JSON.stringify(Object.fromEntries(evidence.map((e) => [e.check, e.result]))));
    }
  }
  const parts = new Array<string>(n);
  for (let i = 0; i < n; i++) parts[i] = piece(evidence[i]);
  parts[0] = `{${parts[0]}`;
  parts[n - 1] += '}';
  return new JsonText(parts.join(','));
}
