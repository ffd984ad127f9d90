// The decision log's evidence as it crosses to the writer thread: the JSON
// text of the compacted evidence, made once per frozen (shared) evidence object.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compactEvidence, compactEvidenceJson } from '../../src/store/events.js';
import type { Evidence } from '../../src/core/types.js';

test('compactEvidenceJson is JSON.stringify(compactEvidence(…)), detail cut, data dropped', () => {
  const long = 'x'.repeat(400);
  const evidence: Evidence[] = [
    { check: 'spf', result: 'pass', detail: 'authorised "by" \\ record\u2028', ms: 1.5, data: { domain: 'a.example', fn: () => 1 } },
    { check: 'dnsbl', result: 'listed', detail: long, ms: 0 },
    { check: 'auth', result: 'none', detail: '', ms: 0 },
  ];
  const json = compactEvidenceJson(evidence);
  assert.equal(json, JSON.stringify(compactEvidence(evidence)));
  const back = JSON.parse(json) as Array<{ check: string; detail?: string; data?: unknown }>;
  assert.equal(back[1].detail?.length, 300);
  assert.ok(back[1].detail?.endsWith('…'));
  assert.equal(back[0].data, undefined);
  assert.equal(compactEvidenceJson([]), '[]');
});

test('frozen evidence (the evidence cache’s) is compacted once; fresh evidence is read afresh every time', () => {
  const shared = Object.freeze({ check: 'mx', result: 'match', detail: 'an MX host', ms: 0 }) as Evidence;
  const a = compactEvidence([shared])[0];
  assert.equal(compactEvidence([shared])[0], a, 'the same compact copy');
  assert.ok(Object.isFrozen(a));
  assert.equal(compactEvidence([a])[0], a, 'a compact copy is its own compact form');
  const fresh: Evidence = { check: 'mx', result: 'match', detail: 'one', ms: 0 };
  assert.equal(compactEvidenceJson([fresh]), '[{"check":"mx","result":"match","detail":"one","ms":0}]');
  fresh.detail = 'two';
  assert.equal(compactEvidenceJson([fresh]), '[{"check":"mx","result":"match","detail":"two","ms":0}]');
  assert.equal(compactEvidenceJson([shared, fresh]), `[${JSON.stringify(a)},{"check":"mx","result":"match","detail":"two","ms":0}]`);
});
