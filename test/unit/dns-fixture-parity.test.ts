// Every name of the RFC 7208 suite's zonedata answers the same through the
// fixture DNS server and the network client as through the in-memory
// ZoneResolver, so the suite means the same in-process and over the wire.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import { DnsClient } from '../../src/dns/client.js';
import { parseServer } from '../../src/dns/servers.js';
import { ZoneResolver } from '../../src/dns/zone.js';
import type { Resolver } from '../../src/dns/types.js';
import { startFixtureDns, zonesFromYaml } from '../helpers/fixture-dns.js';
import { SPF_SUITE_PATH as suitePath } from '../helpers/spf-suite.js';

/** One question's outcome as comparable text; addresses are compared as lower-case. */
async function outcome(r: Resolver, method: 'a' | 'aaaa' | 'txt' | 'mx', name: string): Promise<string> {
  try {
    const v = await r[method](name);
    return JSON.stringify(v.map((x) => JSON.stringify(x).toLowerCase()).sort());
  } catch (e) {
    return `error ${(e as { code?: string }).code ?? (e as Error).message}`;
  }
}

test('fixture server + DnsClient answer the SPF suite zonedata like ZoneResolver', async () => {
  const text = readFileSync(suitePath, 'utf8');
  const zones = zonesFromYaml(text);
  const docs = parseAllDocuments(text).map((d) => d.toJS() as { zonedata?: Record<string, unknown> });
  let compared = 0;
  for (let i = 0; i < zones.length; i++) {
    const fx = await startFixtureDns(zones[i]);
    // TIMEOUT entries cost timeoutMs each; the questions run in parallel so those waits overlap.
    const client = new DnsClient({ servers: [parseServer(fx.server)], timeoutMs: 250, retries: 1 });
    const local = new ZoneResolver(zones[i]);
    try {
      const questions = Object.keys(docs[i].zonedata ?? {}).flatMap((name) => (['a', 'aaaa', 'txt', 'mx'] as const).map((method) => ({ name, method })));
      const results = await Promise.all(
        questions.map(async ({ name, method }) => ({ name, method, want: await outcome(local, method, name), got: await outcome(client, method, name) })),
      );
      for (const { name, method, want, got } of results) {
        assert.equal(got, want, `document ${i}: ${method.toUpperCase()} ${name}`);
        compared++;
      }
    } finally {
      client.close();
      await fx.close();
    }
  }
  assert.ok(compared > 1000, `compared only ${compared} questions`);
});
