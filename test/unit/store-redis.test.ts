// The Store conformance suite on Redis: a private redis-server (free loopback
// port, no persistence, temp dir) for this file, a fresh key prefix per test.

import { requireBinary } from '../helpers/binaries.js';
import { startRedis, type PrivateRedis } from '../helpers/redis-server.js';
import { storeConformance } from '../helpers/store-conformance.js';
import { RedisStore } from '../../src/store/redis/store.js';

const missing = requireBinary('redis-server') ? undefined : 'redis-server not installed';
let n = 0;

storeConformance(
  'redis',
  async () => {
    const redis = (await startRedis()) as PrivateRedis;
    return {
      async fresh() {
        const prefix = `t${++n}:`;
        return { open: (deps) => RedisStore.open({ backend: 'redis', url: redis.url, prefix }, deps) };
      },
      close: () => redis.close(),
    };
  },
  { skip: missing },
);
