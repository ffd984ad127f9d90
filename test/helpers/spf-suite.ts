// The OpenSPF / RFC 7208 test suite (test/fixtures/conformance/spf), loaded
// unchanged, with the reference driver's conventions (see that folder's
// README): one Zone per scenario, names under `error.` time out, the default
// explanation is the literal `DEFAULT`, an empty MAIL FROM means the HELO
// identity, and a result may be a list of acceptable results.

import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { Zone } from '../../src/dns/zone.js';
import { spfIdentity } from '../../src/checks/spf.js';
import type { CheckHostOptions, CheckHostParams, SpfResult } from '../../src/checks/spf/evaluate.js';

export const SPF_SUITE_PATH = resolve(dirname(fileURLToPath(import.meta.url)), '../fixtures/conformance/spf/rfc7208-tests.yml');

export interface SpfSuiteTest {
  scenario: string;
  name: string;
  helo: string;
  /** Client IP. */
  host: string;
  mailfrom: string;
  /** Acceptable results. */
  results: string[];
  explanation?: string;
  spec?: string;
}

export interface SpfSuiteScenario {
  description: string;
  zonedata: Record<string, unknown>;
  tests: SpfSuiteTest[];
}

/** The driver's check_host() options: the default explanation is the literal `DEFAULT`. */
export const SPF_SUITE_OPTIONS: CheckHostOptions = { defaultExplanation: 'DEFAULT' };

export function loadSpfSuite(path = SPF_SUITE_PATH): SpfSuiteScenario[] {
  const docs = parseAllDocuments(readFileSync(path, 'utf8'));
  if (!Array.isArray(docs)) throw new Error(`${path}: not a YAML stream`);
  return docs.map((doc, i) => {
    if (doc.errors.length > 0) throw new Error(`${path} document ${i + 1}: ${doc.errors[0].message}`);
    const data = doc.toJS() as { description: string; tests: Record<string, Record<string, unknown>>; zonedata?: Record<string, unknown> };
    const tests = Object.entries(data.tests).map(([name, t]): SpfSuiteTest => {
      const result = t.result as string | string[];
      const test: SpfSuiteTest = {
        scenario: data.description,
        name,
        helo: String(t.helo),
        host: String(t.host),
        mailfrom: String(t.mailfrom ?? ''),
        results: Array.isArray(result) ? result.map(String) : [String(result)],
      };
      if (t.explanation !== undefined) test.explanation = String(t.explanation);
      if (t.spec !== undefined) test.spec = String(t.spec);
      return test;
    });
    return { description: data.description, zonedata: data.zonedata ?? {}, tests };
  });
}

/** The scenario's DNS world. */
export function scenarioZone(s: SpfSuiteScenario): Zone {
  return new Zone(s.zonedata, { timeoutPrefix: 'error.' });
}

/** check_host() arguments for a test: an empty MAIL FROM checks postmaster@<helo>. */
export function suiteParams(t: SpfSuiteTest): CheckHostParams {
  const id = spfIdentity('mailfrom', t.mailfrom, t.helo);
  if (!id) throw new Error(`${t.name}: no identity`);
  return { ip: t.host, domain: id.domain, sender: id.sender, helo: t.helo };
}

/** Why a result does not satisfy the test, or undefined when it does. */
export function mismatch(t: SpfSuiteTest, r: SpfResult): string | undefined {
  if (!t.results.includes(r.result)) {
    return `${t.name}: got ${r.result}, expected ${t.results.join(' or ')}${r.problem ? ` (${r.problem})` : ''}`;
  }
  if (t.explanation !== undefined && r.explanation !== t.explanation) {
    return `${t.name}: explanation ${JSON.stringify(r.explanation)}, expected ${JSON.stringify(t.explanation)}`;
  }
  return undefined;
}
