// Failures that end an SPF evaluation early. A syntax error is the
// publisher's fault (permerror, RFC 7208 §4.6); the evaluator turns both into
// results, so callers of checkHost never see these thrown.

/** A record or macro-string that breaks the RFC 7208 grammar. */
export class SpfSyntaxError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SpfSyntaxError';
  }
}

/** Ends the whole check_host() with permerror or temperror, however deep in include/redirect. */
export class SpfAbort extends Error {
  constructor(
    public readonly result: 'permerror' | 'temperror',
    message: string,
  ) {
    super(message);
    this.name = 'SpfAbort';
  }
}
