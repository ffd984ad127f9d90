// Follows one log file across rotation, remembering where it stopped.
//
// - rename-and-create (logrotate's default): the path gets a new inode. The
//   old file is read to its end through the descriptor we hold, then the new
//   path is read from 0; the old descriptor is kept for a few polls more for
//   lines the daemon writes before it reopens its log.
// - copytruncate and plain truncation: same inode, size below our offset (or
//   a different first line: truncated and already rewritten past our offset).
//   Lines written since our last read are taken from the copy beside it when
//   one with our first line is found, then the file is read again from 0.
// - restart: the state file gives inode, offset and first-line fingerprint.
//   Same file: resume at the offset. Rotated while we were down: the old file
//   is found beside the path by its inode and read from the offset, then the
//   new one from 0. Offsets are saved after each batch has been processed, so
//   no line is read twice and none is skipped.
//
// Polling finds every change; fs.watch only makes us poll sooner (it misses
// events across rotation and on some file systems).

import { createHash } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { open, readdir, stat, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import type { Logger } from '../../log.js';
import { LineSplitter, type SplitLine } from './splitter.js';
import type { FileOffset, OffsetStore } from './state.js';

export interface TailLine {
  text: string;
  cut: boolean;
  lineNo: number;
}

export interface FileTailOptions {
  path: string;
  offsets: OffsetStore;
  maxLineBytes: number;
  /** A file without a saved offset is read from its end (only new lines, the default) or its start. */
  startAt?: 'end' | 'start';
  /** Called with each batch of complete lines; the offset is saved after it resolves. */
  onLines: (lines: TailLine[]) => Promise<void> | void;
  logger?: Logger;
  /** Bytes read per batch (default 1 MiB). */
  chunkBytes?: number;
  /** The fingerprint is the first line, at most this many bytes (default 1024). */
  fingerprintBytes?: number;
  /** Polls a rotated-away file is still read for late lines (default 3). */
  retirePolls?: number;
}

interface Fingerprint {
  len: number;
  hash: string;
  /** The whole first line (or fingerprintBytes of it) is in: it will not change. */
  complete?: boolean;
}

interface Reader {
  fh: FileHandle;
  inode: string;
  /** Next byte to read. */
  readPos: number;
  /** Just after the last complete line handed over. */
  consumed: number;
  line: number;
  splitter: LineSplitter;
  /** Reading began inside a line (start at end of a file without a final newline): drop that fragment. */
  skipFirst: boolean;
  fp: Fingerprint;
  lastSize: number;
}

const COMPRESSED = /\.(?:gz|bz2|xz|zst|lz4|z|zip)$/i;

async function statPath(path: string) {
  try {
    return await stat(path, { bigint: true });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
    throw e;
  }
}

export class FileTail {
  readonly path: string;
  private readonly key: string;
  private current: Reader | undefined;
  private retired: Array<{ reader: Reader; polls: number }> = [];
  private begun = false;
  private polling: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private hintTimer: NodeJS.Timeout | undefined;
  private watcher: FSWatcher | undefined;
  private stopped = false;
  private readonly chunk: number;
  private readonly fpBytes: number;

  constructor(private readonly opts: FileTailOptions) {
    this.path = resolve(opts.path);
    this.key = this.path;
    this.chunk = opts.chunkBytes ?? 1 << 20;
    this.fpBytes = opts.fingerprintBytes ?? 1024;
  }

  /** Read whatever is new (also handles rotation); concurrent calls share one run. */
  poll(): Promise<void> {
    if (!this.polling) this.polling = this.pollOnce().finally(() => (this.polling = undefined));
    return this.polling;
  }

  /** Poll every `intervalMs`, and soon after fs.watch reports a change in the directory. */
  start(intervalMs: number): void {
    let lastError = '';
    const tick = () => {
      this.timer = undefined;
      this.poll()
        .then(() => (lastError = ''))
        .catch((e) => {
          // Once per distinct problem, not once per poll.
          const message = (e as Error).message;
          if (message !== lastError) this.opts.logger?.warn({ path: this.path, err: message }, 'cannot read log file');
          lastError = message;
        })
        .finally(() => {
          if (!this.stopped) this.timer = setTimeout(tick, intervalMs);
        });
    };
    tick();
    const base = basename(this.path);
    try {
      this.watcher = watch(dirname(this.path), { persistent: false }, (_event, name) => {
        if (name === null || String(name).startsWith(base)) this.hint();
      });
      this.watcher.on('error', () => this.watcher?.close());
    } catch {
      // no watch on this file system: polling alone
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    clearTimeout(this.hintTimer);
    this.watcher?.close();
    await this.polling?.catch(() => undefined);
    for (const r of [...this.retired.map((x) => x.reader), ...(this.current ? [this.current] : [])]) await r.fh.close().catch(() => undefined);
    this.retired = [];
    this.current = undefined;
  }

  private hint(): void {
    if (this.hintTimer || this.stopped) return;
    this.hintTimer = setTimeout(() => {
      this.hintTimer = undefined;
      if (!this.stopped) this.poll().catch(() => undefined);
    }, 25);
  }

  private async pollOnce(): Promise<void> {
    if (!this.begun) {
      this.begun = true;
      await this.begin();
    }
    for (const r of [...this.retired]) {
      // Still the file we were reading? (Rotated again by copying over it: then it is no longer ours.)
      const size = Number((await r.reader.fh.stat()).size);
      const ours = size >= r.reader.readPos && (await this.sameStart(r.reader.fh, r.reader.fp));
      if (ours) await this.drain(r.reader, false);
      if (!ours || --r.polls <= 0) {
        this.retired.splice(this.retired.indexOf(r), 1);
        await r.reader.fh.close().catch(() => undefined);
      }
    }
    const st = await statPath(this.path);
    const cur = this.current;
    if (!cur) {
      if (st) await this.openCurrent(0, 0);
    } else if (!st || String(st.ino) !== cur.inode) {
      // Renamed away (and maybe replaced): finish the old file, then the new one from 0.
      await this.drain(cur, true);
      this.retired.push({ reader: cur, polls: this.opts.retirePolls ?? 3 });
      this.current = undefined;
      if (st) {
        this.opts.logger?.info({ path: this.path }, 'log file rotated: reading the new file');
        await this.openCurrent(0, 0);
      }
    } else {
      const size = Number(st.size);
      if (size < cur.readPos) await this.restartAtZero(cur, 'truncated');
      // Checked on every poll: a copytruncate followed by as many bytes as we had read leaves the size unchanged.
      else if (!(await this.sameStart(cur.fh, cur.fp))) await this.restartAtZero(cur, 'replaced');
      cur.lastSize = size;
    }
    if (this.current) {
      await this.drain(this.current, true);
      await this.extendFingerprint(this.current);
    }
  }

  /** First poll: continue from the saved state, or place a new file at its end/start. */
  private async begin(): Promise<void> {
    const saved = this.opts.offsets.file(this.key);
    const st = await statPath(this.path);
    if (!saved) {
      if (!st) return;
      const r = await this.openCurrent(0, 0);
      if (this.opts.startAt !== 'start' && r) {
        const size = Number((await r.fh.stat()).size);
        r.readPos = r.consumed = size;
        r.skipFirst = size > 0 && !(await this.endsWithNewline(r.fh, size));
        // Line numbers in ban reasons are the file's own: count what is skipped (once, on the first start).
        r.line = (await this.countLines(r.fh, size)) + (r.skipFirst ? 1 : 0);
        await this.persist(r);
      }
      return;
    }
    if (st && String(st.ino) === saved.inode) {
      const fh = await open(this.path, 'r');
      const size = Number((await fh.stat()).size);
      if (size >= saved.offset && (await this.sameStart(fh, { len: saved.fpLen, hash: saved.fp }))) {
        this.current = this.reader(fh, saved.inode, saved.offset, saved.line, { len: saved.fpLen, hash: saved.fp });
        return;
      }
      await fh.close();
      // Truncated or replaced while we were down: the copy beside it may hold the lines we had not read.
      await this.finishSibling(saved, (s) => String(s.ino) !== saved.inode);
      this.opts.logger?.info({ path: this.path }, 'log file was truncated or replaced while stopped: reading it from the start');
      await this.openCurrent(0, 0);
      return;
    }
    // Rotated while we were down: the old file is still beside it under another name, if not compressed or deleted.
    const found = await this.finishSibling(saved, (s) => String(s.ino) === saved.inode);
    if (!found && saved.offset > 0) {
      this.opts.logger?.warn({ path: this.path }, 'log file was rotated while stopped and the old file is gone: its last lines were not read');
    }
    if (st) await this.openCurrent(0, 0);
  }

  /** Read the rest of a rotated copy of our file (found beside it, same first line) from our saved offset. */
  private async finishSibling(saved: FileOffset, candidate: (s: { ino: bigint; size: bigint }) => boolean): Promise<boolean> {
    const dir = dirname(this.path);
    const base = basename(this.path);
    let names: string[];
    try {
      names = (await readdir(dir)).filter((n) => n !== base && n.startsWith(base) && !COMPRESSED.test(n)).sort();
    } catch {
      return false;
    }
    for (const name of names) {
      const p = join(dir, name);
      const st = await statPath(p).catch(() => undefined);
      if (!st || !st.isFile() || !candidate(st) || Number(st.size) < saved.offset) continue;
      const fh = await open(p, 'r').catch(() => undefined);
      if (!fh) continue;
      if (!(await this.sameStart(fh, { len: saved.fpLen, hash: saved.fp }))) {
        await fh.close();
        continue;
      }
      this.opts.logger?.info({ path: this.path, rotated: p }, 'reading the end of the rotated log file');
      const r = this.reader(fh, String(st.ino), saved.offset, saved.line, { len: saved.fpLen, hash: saved.fp });
      try {
        await this.drain(r, true);
      } finally {
        await fh.close();
      }
      return true;
    }
    return false;
  }

  /** Truncated (copytruncate) or replaced in place: take what the copy has beyond our offset, then read from 0. */
  private async restartAtZero(cur: Reader, why: string): Promise<void> {
    const saved: FileOffset = { inode: cur.inode, offset: cur.consumed, line: cur.line, fpLen: cur.fp.len, fp: cur.fp.hash };
    await this.finishSibling(saved, (s) => String(s.ino) !== cur.inode);
    this.opts.logger?.info({ path: this.path, why }, 'log file truncated: reading it from the start');
    cur.readPos = cur.consumed = 0;
    cur.line = 0;
    cur.skipFirst = false;
    cur.splitter.reset();
    cur.fp = await this.fingerprint(cur.fh);
    await this.persist(cur);
  }

  private async openCurrent(pos: number, line: number): Promise<Reader | undefined> {
    let fh: FileHandle;
    try {
      fh = await open(this.path, 'r');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
    const st = await fh.stat({ bigint: true });
    const r = this.reader(fh, String(st.ino), pos, line, await this.fingerprint(fh));
    r.lastSize = Number(st.size);
    this.current = r;
    await this.persist(r);
    return r;
  }

  private reader(fh: FileHandle, inode: string, pos: number, line: number, fp: Fingerprint): Reader {
    return { fh, inode, readPos: pos, consumed: pos, line, splitter: new LineSplitter(this.opts.maxLineBytes), skipFirst: false, fp, lastSize: -1 };
  }

  /** Hand over every complete line from readPos to the end, batch by batch, saving the offset after each. */
  private async drain(r: Reader, tracked: boolean): Promise<void> {
    for (;;) {
      const buf = Buffer.allocUnsafe(this.chunk);
      const { bytesRead } = await r.fh.read(buf, 0, this.chunk, r.readPos);
      if (bytesRead === 0) return;
      const base = r.readPos;
      r.readPos += bytesRead;
      const split: SplitLine[] = r.splitter.push(buf.subarray(0, bytesRead), base);
      if (split.length > 0) {
        const lines: TailLine[] = [];
        let i = 0;
        if (r.skipFirst) {
          r.skipFirst = false;
          i = 1;
        }
        let lineNo = r.line;
        for (; i < split.length; i++) lines.push({ text: split[i].text, cut: split[i].cut, lineNo: ++lineNo });
        try {
          if (lines.length > 0) await this.opts.onLines(lines);
        } catch (e) {
          // Not processed: read these lines again next time.
          r.readPos = r.consumed;
          r.splitter.reset();
          throw e;
        }
        r.line = lineNo;
        r.consumed = split[split.length - 1].end;
        if (tracked) await this.persist(r);
      }
      if (bytesRead < this.chunk) return;
    }
  }

  private async persist(r: Reader): Promise<void> {
    this.opts.offsets.setFile(this.key, { inode: r.inode, offset: r.consumed, line: r.line, fpLen: r.fp.len, fp: r.fp.hash });
    await this.opts.offsets.save();
  }

  /** sha256 of the first line (at most fingerprintBytes). */
  private async fingerprint(fh: FileHandle): Promise<Fingerprint> {
    const buf = Buffer.alloc(this.fpBytes);
    const { bytesRead } = await fh.read(buf, 0, this.fpBytes, 0);
    const nl = buf.subarray(0, bytesRead).indexOf(10);
    const len = nl >= 0 ? nl + 1 : bytesRead;
    return { len, hash: createHash('sha256').update(buf.subarray(0, len)).digest('hex'), complete: nl >= 0 || len === this.fpBytes };
  }

  private async sameStart(fh: FileHandle, fp: Fingerprint): Promise<boolean> {
    const buf = Buffer.alloc(fp.len);
    const { bytesRead } = fp.len === 0 ? { bytesRead: 0 } : await fh.read(buf, 0, fp.len, 0);
    if (bytesRead < fp.len) return false;
    return createHash('sha256').update(buf.subarray(0, bytesRead)).digest('hex') === fp.hash;
  }

  /** A first line still being written when we took the fingerprint: take it again once it is longer. */
  private async extendFingerprint(r: Reader): Promise<void> {
    if (r.fp.complete || r.lastSize === r.fp.len) return;
    const fp = await this.fingerprint(r.fh);
    const grew = fp.len > r.fp.len;
    r.fp = fp;
    if (grew) await this.persist(r);
  }

  /** Newlines in the first `size` bytes. */
  private async countLines(fh: FileHandle, size: number): Promise<number> {
    const buf = Buffer.allocUnsafe(1 << 20);
    let lines = 0;
    for (let pos = 0; pos < size; ) {
      const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, size - pos), pos);
      if (bytesRead === 0) break;
      for (let i = buf.indexOf(10, 0); i >= 0 && i < bytesRead; i = buf.indexOf(10, i + 1)) lines++;
      pos += bytesRead;
    }
    return lines;
  }

  private async endsWithNewline(fh: FileHandle, size: number): Promise<boolean> {
    const b = Buffer.alloc(1);
    await fh.read(b, 0, 1, size - 1);
    return b[0] === 10;
  }
}
