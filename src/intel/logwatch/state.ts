// Where each source stopped: per file its inode, the offset after the last
// line processed, the line count and a fingerprint of its first line; per
// journal source its cursor. Written whole to a temporary file, synced, then
// renamed over the old one, so a crash leaves either the old state or the new,
// never half of one.

import { mkdir, open, readFile, rename } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Logger } from '../../log.js';

export interface FileOffset {
  /** Inode number (text: inodes can exceed 2^53). */
  inode: string;
  /** Byte offset just after the last line processed. */
  offset: number;
  /** Lines processed so far (line numbers are relative when reading began at the end). */
  line: number;
  /** Bytes of the first line hashed (at most the fingerprint size). */
  fpLen: number;
  /** sha256 (hex) of those bytes: tells a replaced file from the same one. */
  fp: string;
}

interface StateShape {
  version: 1;
  files: Record<string, FileOffset>;
  cursors: Record<string, string>;
}

function isOffset(v: unknown): v is FileOffset {
  const o = v as FileOffset;
  return (
    typeof o === 'object' && o !== null && typeof o.inode === 'string' && Number.isSafeInteger(o.offset) && o.offset >= 0 &&
    Number.isSafeInteger(o.line) && Number.isSafeInteger(o.fpLen) && typeof o.fp === 'string'
  );
}

export class OffsetStore {
  private state: StateShape = { version: 1, files: {}, cursors: {} };
  private dirty = false;
  private chain: Promise<void> = Promise.resolve();

  private constructor(
    /** undefined: kept in memory only (dry runs, tests). */
    readonly path: string | undefined,
    private readonly logger?: Logger,
  ) {}

  /** Load the state file; a missing file is an empty state, a damaged one is reported and replaced. */
  static async open(path: string | undefined, logger?: Logger): Promise<OffsetStore> {
    const store = new OffsetStore(path, logger);
    if (path === undefined) return store;
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      return store;
    }
    try {
      const raw = JSON.parse(text) as Partial<StateShape>;
      for (const [k, v] of Object.entries(raw.files ?? {})) if (isOffset(v)) store.state.files[k] = v;
      for (const [k, v] of Object.entries(raw.cursors ?? {})) if (typeof v === 'string') store.state.cursors[k] = v;
    } catch (e) {
      logger?.warn({ path, err: (e as Error).message }, 'logwatch state file is damaged: starting without saved offsets');
    }
    return store;
  }

  file(key: string): FileOffset | undefined {
    return this.state.files[key];
  }

  setFile(key: string, value: FileOffset): void {
    this.state.files[key] = { ...value };
    this.dirty = true;
  }

  cursor(key: string): string | undefined {
    return this.state.cursors[key];
  }

  setCursor(key: string, cursor: string): void {
    this.state.cursors[key] = cursor;
    this.dirty = true;
  }

  /** Write the state if it changed (writes are queued one after another). */
  save(): Promise<void> {
    this.chain = this.chain.then(() => this.write());
    return this.chain;
  }

  private async write(): Promise<void> {
    if (!this.dirty || this.path === undefined) return;
    this.dirty = false;
    const text = JSON.stringify(this.state);
    const tmp = `${this.path}.${process.pid}.tmp`;
    try {
      await mkdir(dirname(this.path), { recursive: true });
      const fh = await open(tmp, 'w', 0o600);
      try {
        await fh.writeFile(text);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, this.path);
    } catch (e) {
      this.dirty = true;
      this.logger?.error({ path: this.path, err: (e as Error).message }, 'cannot write the logwatch state file');
    }
  }
}
