// The decision line's evidence field, joined from cached pieces: the same
// JSON as serialising the check → result object, and what pino writes of it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { evidenceSummary } from '../../src/postfix/evidence-summary.js';
import { JsonText } from '../../src/log.js';
import type { Evidence } from '../../src/core/types.js';

const ev = (check: string, result: string): Evidence => ({ check, result, detail: '', ms: 0 }) as Evidence;

test('evidenceSummary is the JSON of the check → result object, a check named twice included', () => {
  const lists: Evidence[][] = [
    [],
    [ev('spf', 'pass')],
    [Object.freeze(ev('spf', 'pass')), ev('mx', 'nomatch'), ev('list:allow', 'unlisted'), ev('odd"name', 'x\\y')],
    [ev('spf', 'pass'), ev('mx', 'nomatch'), ev('spf', 'fail')],
  ];
  for (const evidence of lists) {
    const expected = JSON.stringify(Object.fromEntries(evidence.map((e) => [e.check, e.result])));
    const summary = evidenceSummary(evidence);
    assert.ok(summary instanceof JsonText);
    assert.equal(summary.text, expected);
    // Serialised by anyone else (pino's own path), it is the same object.
    assert.equal(JSON.stringify({ evidence: summary }), `{"evidence":${expected}}`);
  }
  const shared = Object.freeze(ev('banned', 'unlisted'));
  assert.equal(evidenceSummary([shared]).text, evidenceSummary([shared]).text);
});
