// The RFC 7208 conformance suite, all 203 tests, in-process against the Zone
// resolver. Prints the pass count.

import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ZoneResolver } from '../../src/dns/zone.js';
import { checkHost } from '../../src/checks/spf/evaluate.js';
import { SPF_SUITE_OPTIONS, loadSpfSuite, mismatch, scenarioZone, suiteParams } from '../helpers/spf-suite.js';

const scenarios = loadSpfSuite();
const total = scenarios.reduce((n, s) => n + s.tests.length, 0);
let passed = 0;

test('the suite file holds 16 scenarios and 203 tests', () => {
  assert.equal(scenarios.length, 16);
  assert.equal(total, 203);
});

for (const scenario of scenarios) {
  describe(scenario.description, () => {
    for (const t of scenario.tests) {
      test(t.name, async () => {
        const resolver = new ZoneResolver(scenarioZone(scenario));
        const r = await checkHost(suiteParams(t), resolver, SPF_SUITE_OPTIONS);
        const why = mismatch(t, r);
        assert.equal(why, undefined, why);
        passed++;
      });
    }
  });
}

after(() => {
  console.log(`SPF suite (in-process, ZoneResolver): ${passed}/${total} passed`);
});
