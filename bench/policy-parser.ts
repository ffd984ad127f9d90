// The Postfix policy protocol's request parser alone (src/postfix/protocol.ts):
// 30-attribute RCPT requests, one chunk each, in the order the test client
// sends them and in Postfix's own order, then both orders alternating on one
// parser (every name guess wrong at each switch). Printed only; bench/README.md
// is not rewritten.
//
//   npm run bench -- policy-parser
//   BENCH_REQUESTS=200000 BENCH_ROUNDS=5 …

import { RequestParser, formatRequest } from '../src/postfix/protocol.js';
import { rcptRequest } from '../test/helpers/policy-client.js';

const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 200_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);

/** Postfix 3.8's order (smtpd_check.c), as far as these attributes go. */
const POSTFIX_ORDER = [
  'request', 'protocol_state', 'protocol_name', 'helo_name', 'queue_id', 'sender', 'recipient', 'recipient_count',
  'client_address', 'client_name', 'reverse_client_name', 'instance', 'sasl_method', 'sasl_username', 'sasl_sender',
  'size', 'ccert_subject', 'ccert_issuer', 'ccert_fingerprint', 'ccert_pubkey_fingerprint', 'encryption_protocol',
  'encryption_cipher', 'encryption_keysize', 'etrn_domain', 'stress', 'client_port', 'policy_context', 'server_address',
  'server_port',
];

function wire(i: number, postfixOrder: boolean): Buffer {
  const attrs = rcptRequest({ instance: `${i}.bench`, recipient: `user${i}@dest.example` });
  const ordered = postfixOrder ? Object.fromEntries(POSTFIX_ORDER.filter((n) => n in attrs).map((n) => [n, attrs[n]])) : attrs;
  return Buffer.from(formatRequest(ordered), 'latin1');
}

function measure(label: string, requests: Buffer[]): void {
  const parser = new RequestParser();
  const us: number[] = [];
  let parsed = 0;
  for (let r = 0; r <= ROUNDS; r++) {
    const t0 = performance.now();
    for (let i = 0; i < REQUESTS; i++) parsed += parser.push(requests[i % requests.length]).length;
    if (r > 0) us.push(((performance.now() - t0) * 1000) / REQUESTS); // round 0 warms up
  }
  if (parsed !== REQUESTS * (ROUNDS + 1)) throw new Error(`${label}: parsed ${parsed} requests, expected ${REQUESTS * (ROUNDS + 1)}`);
  const sorted = [...us].sort((a, b) => a - b);
  console.log(`  ${label.padEnd(28)} ${sorted[Math.floor(sorted.length / 2)].toFixed(2)} µs per request (median; rounds ${us.map((u) => u.toFixed(2)).join(', ')})`);
}

console.log(`policy parser: ${REQUESTS.toLocaleString('en-US')} requests × ${ROUNDS} rounds after one to warm up, from source (tsx)`);
const client = Array.from({ length: 100 }, (_, i) => wire(i, false));
const postfix = Array.from({ length: 100 }, (_, i) => wire(i, true));
measure("test client's order", client);
measure("Postfix's order", postfix);
measure('both orders, alternating', client.flatMap((b, i) => [b, postfix[i]]));
