// Who may read frontline's state: the decision log holds every sender and
// recipient, the store every ban and list. The data directory is 0750, the
// files in it 0640 at most (the database, its WAL and shared memory, the
// decision log; spool files stay 0600), the policy socket 0660 — owner and
// group only, the group chosen with `file_group` (e.g. the group Postfix
// runs as, so it can reach the socket). Modes are only ever narrowed: files
// left 0644 by an older version are fixed at start, an admin's 0700 stays.

import { chmodSync, chownSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

export const DATA_DIR_MODE = 0o750;
export const DATA_FILE_MODE = 0o640;
export const SOCKET_MODE = 0o660;

export interface ModeLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

/** A group name (from /etc/group) or number → its gid; throws when unknown. */
export function groupId(group: string | number, groupFile = '/etc/group'): number {
  if (typeof group === 'number' || /^\d+$/.test(group)) return Number(group);
  let text = '';
  try {
    text = readFileSync(groupFile, 'utf8');
  } catch {
    // No group file: only numeric groups can be named.
  }
  for (const line of text.split('\n')) {
    const [name, , gid] = line.split(':');
    if (name === group && gid !== undefined && /^\d+$/.test(gid)) return Number(gid);
  }
  throw new Error(`file_group: no group named ${JSON.stringify(group)} in ${groupFile}`);
}

function narrow(path: string, max: number, gid: number | undefined, logger?: ModeLogger): void {
  const st = statSync(path);
  const mode = st.mode & 0o7777;
  const want = mode & max;
  if (want !== mode) {
    chmodSync(path, want);
    logger?.info({ path, from: mode.toString(8), to: want.toString(8) }, 'file mode narrowed');
  }
  if (gid !== undefined && st.gid !== gid) {
    try {
      chownSync(path, -1, gid);
    } catch (e) {
      logger?.warn({ path, gid, err: (e as Error).message }, 'cannot give the file to file_group');
    }
  }
}

/**
 * Create the data directory 0750 if missing; narrow its mode to 0750 and
 * every regular file directly in it to 0640 (existing ones included); give
 * them to `group` when set (`only`: just these files and their `-wal`,
 * `-shm`, `-journal` companions). Sets the process umask to 027, so files
 * made later (SQLite's WAL and shared memory, the decision log) are 0640 at
 * most.
 */
export function secureDataDir(dir: string, group?: string | number | null, logger?: ModeLogger, only?: readonly string[]): void {
  process.umask(0o027);
  mkdirSync(dir, { recursive: true, mode: DATA_DIR_MODE });
  const gid = group === undefined || group === null ? undefined : groupId(group);
  const st = statSync(dir);
  // A shared directory (sticky, like /tmp, or someone else's) is not ours to narrow: only our files in it are.
  if (only === undefined && (st.mode & 0o1000) === 0 && st.uid === process.getuid?.()) narrow(dir, DATA_DIR_MODE, gid, logger);
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    let isFile = false;
    try {
      isFile = statSync(path).isFile();
    } catch {
      continue; // gone meanwhile
    }
    if (isFile && (only === undefined || only.some((p) => path === p || path.startsWith(`${p}-`)))) narrow(path, DATA_FILE_MODE, gid, logger);
  }
}

/** The policy socket: 0660, given to `group` when set. */
export function secureSocket(path: string, group?: string | number | null, logger?: ModeLogger): void {
  chmodSync(path, SOCKET_MODE);
  if (group !== undefined && group !== null) narrow(path, SOCKET_MODE, groupId(group), logger);
}
