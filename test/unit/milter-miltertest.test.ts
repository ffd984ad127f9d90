// Debian's miltertest (the OpenDKIM project's milter test driver) plays the
// MTA: the Lua scripts in test/milter/ drive frontline's milter frontend
// through the protocol, over the same world as test/unit/milter-session.test.ts.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { ZoneResolver } from '../../src/dns/zone.js';
import { parseConfig } from '../../src/config/load.js';
import { Policy } from '../../src/policy/policy.js';
import { startMilter, type RunningMilter } from '../../src/milter/server.js';
import { parseMilterAddress } from '../../src/milter/listen-address.js';
import { requireBinary } from '../helpers/binaries.js';
import { MILTER_TEST_CONFIG, milterTestZone } from '../helpers/milter-world.js';

const SCRIPTS = fileURLToPath(new URL('../milter/', import.meta.url));

function miltertest(bin: string, script: string, port: number): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile(bin, ['-D', `port=${port}`, '-s', `${SCRIPTS}${script}`], { timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, output: `${stdout}${stderr}` });
    });
  });
}

describe('miltertest scripts against the milter frontend', () => {
  let milter: RunningMilter;
  let port: number;
  before(async () => {
    const policy = Policy.fromConfig(parseConfig(MILTER_TEST_CONFIG, 'test.yaml'), { resolver: new ZoneResolver(milterTestZone()) });
    milter = await startMilter(parseMilterAddress('inet:127.0.0.1:0')!, { policy, logger: pino({ level: 'silent' }), maxBody: 4096 });
    port = Number(/:(\d+)$/.exec(milter.address)![1]);
  });
  after(() => milter.close());

  for (const script of ['accept.lua', 'refuse.lua', 'skip.lua']) {
    test(script, async (t) => {
      const bin = requireBinary('miltertest', t);
      if (!bin) return;
      const r = await miltertest(bin, script, port);
      assert.equal(r.code, 0, r.output);
      assert.match(r.output, new RegExp(`${script.replace('.', '\\.')}: ok`), r.output);
    });
  }
});
