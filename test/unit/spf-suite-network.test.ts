// The RFC 7208 conformance suite, all 203 tests, as production runs it: the
// fixture DNS server on a loopback port serves each scenario's zone, and
// checkHost() asks it through our network client and cache (createResolver).
// TIMEOUT names are silent, so the client's short timeout makes temperror.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createResolver } from '../../src/dns/index.js';
import { checkHost } from '../../src/checks/spf/evaluate.js';
import { type FixtureDns, startFixtureDns } from '../helpers/fixture-dns.js';
import { SPF_SUITE_OPTIONS, loadSpfSuite, mismatch, scenarioZone, suiteParams } from '../helpers/spf-suite.js';

const scenarios = loadSpfSuite();
const total = scenarios.reduce((n, s) => n + s.tests.length, 0);
let passed = 0;
let dns: FixtureDns;

before(async () => {
  dns = await startFixtureDns(scenarioZone(scenarios[0]));
});

after(async () => {
  await dns?.close();
  console.log(`SPF suite (network: fixture DNS + createResolver): ${passed}/${total} passed`);
});

for (const scenario of scenarios) {
  describe(scenario.description, () => {
    for (const t of scenario.tests) {
      test(t.name, async () => {
        dns.setZone(scenarioZone(scenario));
        // A fresh cache per test: scenarios reuse names with different data.
        const resolver = createResolver({ servers: [dns.server], timeoutMs: 300, retries: 0 });
        try {
          const r = await checkHost(suiteParams(t), resolver, SPF_SUITE_OPTIONS);
          const why = mismatch(t, r);
          assert.equal(why, undefined, why);
          passed++;
        } finally {
          resolver.close();
        }
      });
    }
  });
}
