// Where log watching sends its bans. The store's `Store.ban` satisfies this;
// log watching depends on nothing more, so it can be tested (and dry-run)
// without a store.

export interface BanRequest {
  /** Canonical address with prefix length: `192.0.2.7/32`, `2001:db8::1/128` (or a /64 when configured). */
  cidr: string;
  reason: string;
  category: string;
  /** `log:<source>` — the file path, `journal` or `stdin` the events came from. */
  source: string;
}

export interface BanSink {
  ban(input: BanRequest): Promise<unknown>;
}

/** The store answers `{ refused: true, why }` when the address is on the never-ban list. */
export function refusal(result: unknown): string | undefined {
  if (typeof result !== 'object' || result === null) return undefined;
  const r = result as { refused?: unknown; why?: unknown };
  return r.refused === true ? (typeof r.why === 'string' ? r.why : 'refused') : undefined;
}
