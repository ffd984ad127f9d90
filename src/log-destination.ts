// Where log lines go: a file or descriptor written through sonic-boom, as
// pino.destination() would, but handed bytes instead of strings.
//
// Why not pino.destination(): in its string mode sonic-boom measures the
// UTF-8 length of the whole pending block (up to 16 KiB) on every write, so
// each decision line cost a scan of everything buffered before it — the
// largest part of a decision's logging cost under load. In byte mode it
// keeps lengths as numbers; encoding each line once (Buffer.from) is cheap.
//
// Writes are synchronous, a block at a time (minLength): one write(2) per
// few KiB, into the page cache, cost less than handing every block to
// libuv's thread pool and back.

import sonicBoom, { type SonicBoom as SonicBoomClass } from 'sonic-boom';

// sonic-boom is CommonJS: its constructor is the module itself.
const SonicBoom = sonicBoom as unknown as typeof SonicBoomClass;

export interface DestinationOptions {
  /** A file path, or a descriptor (1 stdout, 2 stderr). */
  dest: string | number;
  /** Hold writes until this many bytes are pending (0: write each line at once, synchronously). */
  minLength: number;
  /** Write pending bytes at least this often (ms); 0: never by time. */
  flushMs: number;
}

/** What pino needs of a destination stream. */
export interface LineDestination {
  write(line: string): boolean;
  flush(cb?: (err?: Error) => void): void;
  flushSync(): void;
  end(): void;
}

export function lineDestination(opts: DestinationOptions): LineDestination {
  const boom = new SonicBoom({
    ...(typeof opts.dest === 'number' ? { fd: opts.dest } : { dest: opts.dest, mkdir: true }),
    sync: true,
    minLength: opts.minLength,
    // sonic-boom wants minLength below maxWrite (16 KiB by default), the most one write(2) takes.
    maxWrite: Math.max(16384, opts.minLength * 4),
    contentMode: 'buffer',
  });
  let broken = false;
  /** Nothing can be written any more (sonic-boom's `destroyed` is missing from its types). */
  const gone = (): boolean => broken || (boom as unknown as { destroyed: boolean }).destroyed;
  boom.on('error', (err: NodeJS.ErrnoException) => {
    // A closed pipe (stdout to a process that went away) ends logging; anything else is reported once.
    if (broken) return;
    broken = true;
    if (err.code !== 'EPIPE') process.stderr.write(`frontline: log destination failed: ${err.message}\n`);
  });
  const flushSync = (): void => {
    if (gone()) return;
    try {
      boom.flushSync();
    } catch {
      // not open yet, or closed meanwhile: nothing more can be written
    }
  };
  if (opts.minLength > 0) {
    onExit(boom, flushSync);
    if (opts.flushMs > 0) {
      const timer = setInterval(() => {
        if (gone()) return;
        try {
          boom.flush();
        } catch {
          // not open yet, or a write in progress: the next round flushes
        }
      }, opts.flushMs);
      timer.unref();
    }
  }
  return {
    // In byte mode sonic-boom takes Buffers, though its types only say string.
    write: (line) => (broken ? false : boom.write(Buffer.from(line, 'utf8') as unknown as string)),
    flush: (cb) => {
      if (gone()) return cb?.();
      boom.flush(cb);
    },
    flushSync,
    end: () => boom.end(),
  };
}

/**
 * Lines still pending when the process exits are written before it goes.
 * One 'exit' listener for every destination, each held weakly (tests make
 * many loggers; a listener apiece would pin them all and warn).
 */
const pending = new Set<WeakRef<{ flushSync: () => void }>>();
let listening = false;
function onExit(boom: object, flushSync: () => void): void {
  const holder = { flushSync };
  // The holder lives as long as the destination does.
  holders.set(boom, holder);
  pending.add(new WeakRef(holder));
  if (listening) return;
  listening = true;
  process.once('exit', () => {
    for (const ref of pending) ref.deref()?.flushSync();
  });
}
const holders = new WeakMap<object, { flushSync: () => void }>();
