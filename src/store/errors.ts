// Typed errors of the store room. Callers decide on the type, never on the
// message: a StoreUnavailableError becomes a 4xx (or "continue"), never a 5xx.

/** The backend cannot answer now (Redis down or timing out, SQLite busy or I/O error). Retry later. */
export class StoreUnavailableError extends Error {
  readonly code = 'STORE_UNAVAILABLE';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreUnavailableError';
  }
}

/** An entry that is not what its list or field expects (bad CIDR, bad ASN, bad list name…). */
export class InvalidEntryError extends Error {
  readonly code = 'INVALID_ENTRY';
  constructor(message: string) {
    super(message);
    this.name = 'InvalidEntryError';
  }
}

export function isStoreUnavailable(e: unknown): e is StoreUnavailableError {
  return e instanceof StoreUnavailableError;
}
