// The decision log's evidence as it crosses to the writer thread: the JSON
// text of the compacted evidence, made once per frozen (shared) evidence object.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compactEvidence, compactEvidenceJson, compactEvidencePieces } from '../../src/store/events.js';
import type { Evidence } from '../../src/core/types.js';

test('compactEvidenceJson is JSON.stringify(compactEvidence(…)), detail cut, data kept bounded', () => {
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
  // What a condition can compare is kept (frontline replay); a function is not data, and is named as left out.
  assert.deepEqual(back[0].data, { domain: 'a.example' });
  assert.deepEqual((back[0] as { dataCut?: string[] }).dataCut, ['fn']);
  assert.equal(compactEvidenceJson([]), '[]');
  // With the pieces made already (Redis: one set for the stream and the rollups), the same text, the pieces unchanged.
  const pieces = compactEvidencePieces(evidence);
  const before = pieces.slice();
  assert.equal(compactEvidenceJson(evidence, pieces), json);
  assert.deepEqual(pieces, before);
});

test('evidence data is bounded: long texts, long lists, nested objects and too many keys are cut and named', () => {
  const data: Record<string, unknown> = {
    score: 3,
    ok: true,
    zones: ['a.example', 'b.example'],
    long: 'y'.repeat(1000),
    many: Array.from({ length: 100 }, (_, i) => i),
    nested: { a: 1 },
  };
  for (let i = 0; i < 30; i++) data[`k${i}`] = i;
  const [e] = compactEvidence([{ check: 'dnsbl', result: 'listed', detail: 'd', ms: 0, data }]);
  assert.equal(e.data?.score, 3);
  assert.equal(e.data?.ok, true);
  assert.deepEqual(e.data?.zones, ['a.example', 'b.example']);
  assert.equal((e.data?.long as string).length, 200);
  assert.equal((e.data?.many as number[]).length, 32);
  assert.equal(e.data?.nested, undefined);
  assert.equal(Object.keys(e.data ?? {}).length, 16);
  for (const k of ['long', 'many', 'nested']) assert.ok(e.dataCut?.includes(k), k);
  // Past 16 names, `*`: every key not kept (k29 among them) is known to be missing, not absent.
  assert.equal(e.dataCut?.length, 16);
  assert.equal(e.dataCut?.[15], '*');
  assert.equal(e.data?.k29, undefined);
  // JSON that set a prototype stays plain data.
  const [p] = compactEvidence([{ check: 'x', result: 'none', detail: '', ms: 0, data: JSON.parse('{"__proto__": {"polluted": 1}, "a": 1}') as Record<string, unknown> }]);
  assert.deepEqual(p.data, { a: 1 });
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
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
