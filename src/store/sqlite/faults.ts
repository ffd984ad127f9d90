// SQLite errors as the store reports them: faults of the medium (locked, disk
// full, I/O) become StoreUnavailableError; bugs stay what they are.

import Database from 'better-sqlite3';
import { StoreUnavailableError } from '../errors.js';

const UNAVAILABLE = /^SQLITE_(BUSY|LOCKED|IOERR|FULL|CANTOPEN|READONLY|PROTOCOL|NOMEM|NOLFS)/;

export function translate(e: unknown): unknown {
  if (e instanceof Database.SqliteError && UNAVAILABLE.test(e.code)) {
    return new StoreUnavailableError(`sqlite: ${e.code}: ${e.message}`, { cause: e });
  }
  if (e instanceof TypeError && /database connection is not open/.test(e.message)) {
    return new StoreUnavailableError('sqlite: store is closed', { cause: e });
  }
  return e;
}

/** An error as it crosses from the writer thread: message and SQLite code, nothing else survives postMessage reliably. */
export interface ThreadError {
  message: string;
  code?: string;
}

export function toThreadError(e: unknown): ThreadError {
  if (e instanceof Database.SqliteError) return { message: e.message, code: e.code };
  return { message: e instanceof Error ? e.message : String(e) };
}

/** The error the writer thread reported, as the main connection would have thrown it. */
export function fromThreadError(e: ThreadError): Error {
  if (e.code !== undefined && UNAVAILABLE.test(e.code)) return new StoreUnavailableError(`sqlite: ${e.code}: ${e.message}`);
  return new Error(`decision log writer: ${e.message}`);
}

/** SQLITE_BUSY and its extended codes: another connection holds the lock asked for. */
export function isBusy(e: unknown): boolean {
  return e instanceof Database.SqliteError && e.code.startsWith('SQLITE_BUSY');
}
