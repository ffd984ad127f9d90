// Child process for the SIGKILL fault test: bans addresses (and adds list
// entries) in a loop on the SQLite store at argv[2], printing each one only
// after the store acknowledged it. Runs until killed.

import { SqliteStore } from '../../src/store/sqlite/store.js';

const path = process.argv[2];
const store = await SqliteStore.open({ backend: 'sqlite', path, pollMs: 0 }, { purgeIntervalSeconds: 0 });
process.stdout.write('ready\n');
for (let i = 0; ; i++) {
  const ip = `198.18.${(i >> 8) & 255}.${i & 255}`;
  if (i % 4 === 3) {
    await store.listAdd('learned', ip, { source: 'writer' });
    process.stdout.write(`list ${ip}/32\n`);
  } else {
    const r = await store.ban({ cidr: ip, reason: `loop ${i}`, category: 'probe', source: 'writer' });
    if (!r.refused) process.stdout.write(`ban ${r.ban.cidr}\n`);
  }
}
