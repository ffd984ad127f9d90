// The envelopes of the policy-server benchmarks (the end-to-end test's fixture
// DNS world, test/fixtures/world.yaml), with the answer each must get.

export const CASES: Array<{ name: string; attrs: Record<string, string>; expect: RegExp }> = [
  {
    name: 'provider, bad HELO, SPF pass',
    attrs: { client_address: '198.51.100.10', reverse_client_name: 'mta10.outbound.bigprovider-mail.test', helo_name: 'out-of-sync.bigprovider.test', sender: 'alice@bigprovider.test' },
    expect: /^PREPEND Authentication-Results:/,
  },
  {
    name: 'home PC forging an ISP',
    attrs: { client_address: '192.0.2.77', reverse_client_name: 'cpe-192-0-2-77.cable.homenet.test', helo_name: 'DESKTOP-4F2K9', sender: 'bob@bigisp.test' },
    expect: /^554 5\.7\.1 /,
  },
  {
    name: 'small server, MX match',
    attrs: { client_address: '203.0.113.5', reverse_client_name: 'mail.small.test', helo_name: 'mail.small.test', sender: 'info@small.test' },
    expect: /^PREPEND Authentication-Results:/,
  },
  {
    name: 'IPv6 provider host',
    attrs: { client_address: '2001:db8:25::25', reverse_client_name: 'unknown', helo_name: 'mx6.bigprovider.test', sender: 'alice@bigprovider.test' },
    expect: /^PREPEND Authentication-Results:/,
  },
  {
    name: 'authenticated user',
    attrs: { client_address: '192.0.2.99', helo_name: 'laptop', sender: 'joe@bigisp.test', sasl_method: 'PLAIN', sasl_username: 'joe' },
    expect: /^(DUNNO|PREPEND )/,
  },
];
