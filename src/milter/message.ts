// The message as the milter receives it: header fields one by one, then the
// body in chunks. Held here with limits (field count, header bytes, body
// bytes), rebuilt at end of message as the CRLF text the checks read, and
// searched for result headers only frontline may write (RFC 8601 §5), which
// the MTA is told to remove by name and occurrence (SMFIR_CHGHEADER).

import { authservIdOf, type OwnHeaders } from '../policy/own-headers.js';

export interface MessageLimits {
  /** Body bytes kept (milter.max_body); the rest is skipped and the message counts as truncated. */
  maxBody: number;
  /** Header fields kept; a message with more is refused at end of headers. */
  maxHeaders: number;
  /** Header section bytes kept; a message with more is refused at end of headers. */
  maxHeaderBytes: number;
}

export interface HeaderField {
  /** As the MTA sent it (latin1: one character per byte). */
  name: string;
  value: string;
}

/** A field to remove: the index-th (1-based) field of this name, counted case-insensitively. */
export interface Removal {
  name: string;
  index: number;
}

export class MessageAssembly {
  readonly headers: HeaderField[] = [];
  private headerBytes = 0;
  private body: Buffer[] = [];
  private bodyBytes = 0;
  /** The header section went over a limit: the message is refused at end of headers. */
  headersOverLimit = false;
  /** Body bytes came past maxBody and were dropped. */
  truncated = false;
  /** Body bytes the MTA sent, kept or not. */
  bodySeen = 0;

  constructor(
    private readonly limits: MessageLimits,
    /** Header values start with the space after the colon (SMFIP_HDR_LEADSPC agreed). */
    private readonly leadingSpace: boolean,
  ) {}

  addHeader(name: string, value: string): void {
    if (this.headersOverLimit) return;
    this.headerBytes += name.length + value.length + 4;
    if (this.headers.length >= this.limits.maxHeaders || this.headerBytes > this.limits.maxHeaderBytes) {
      this.headersOverLimit = true;
      return;
    }
    this.headers.push({ name, value });
  }

  /** Keep a body chunk within maxBody; false when it went past the cap (the rest may be skipped). */
  addBody(chunk: Buffer): boolean {
    this.bodySeen += chunk.length;
    const room = this.limits.maxBody - this.bodyBytes;
    if (chunk.length > room) {
      if (room > 0) this.body.push(Buffer.from(chunk.subarray(0, room)));
      this.bodyBytes += Math.max(0, room);
      this.truncated = true;
      return false;
    }
    if (chunk.length > 0) this.body.push(chunk);
    this.bodyBytes += chunk.length;
    return true;
  }

  /** The message as CRLF text: each field as the MTA sent it (folds restored to CRLF), an empty line, the body. */
  message(): Buffer {
    const lines: string[] = [];
    for (const h of this.headers) {
      const value = h.value.replace(/\r?\n/g, '\r\n');
      lines.push(`${h.name}:${this.leadingSpace || value === '' ? '' : ' '}${value}\r\n`);
    }
    lines.push('\r\n');
    return Buffer.concat([Buffer.from(lines.join(''), 'latin1'), ...this.body]);
  }

  /**
   * The fields that claim to be ours: Authentication-Results with our
   * authserv-id, and fields named as our per-check and tag headers. Listed
   * last first, so removing them in this order leaves the indexes of the
   * ones still to remove unchanged.
   */
  forged(own: OwnHeaders): Removal[] {
    const names = new Set(own.names.map((n) => n.toLowerCase()));
    const id = own.authservId.toLowerCase();
    const seen = new Map<string, number>();
    const out: Removal[] = [];
    for (const h of this.headers) {
      const lower = h.name.toLowerCase();
      const index = (seen.get(lower) ?? 0) + 1;
      seen.set(lower, index);
      if (names.has(lower) || (lower === 'authentication-results' && authservIdOf(h.value) === id)) out.push({ name: h.name, index });
    }
    return out.reverse();
  }
}
