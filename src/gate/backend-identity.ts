// How a new backend connection learns who the client is, per
// gate.backend_identity. The rule that matters: in `xclient` mode (the
// default) a backend that cannot be told the real client gets no mail, since
// it would judge relaying for the gate's own address — inside Postfix's
// default mynetworks — and relay for anyone. That is a BackendError of kind
// `identity` (the client gets 451 4.3.0) with a message naming the Postfix
// setting to change; it is never a silent fallback to XFORWARD or to nothing.

import type { BackendConnection } from './backend.js';
import { BackendError } from './backend.js';
import { xclientCommand, type ClientFacts } from './forward.js';
import { replyText, type Reply } from './reply.js';

export type BackendIdentity = 'xclient' | 'xforward' | 'none';
/** What a connection actually does: XFORWARD degrades to none when the backend does not offer it. */
export type ForwardMode = BackendIdentity;

/**
 * EHLO, then introduce the client as `identity` asks. Returns the mode the
 * connection is in; throws BackendError (kind `identity` when XCLIENT is
 * required and not accepted).
 */
export async function introduce(conn: BackendConnection, identity: BackendIdentity, facts: ClientFacts, gateName: string, backend: string): Promise<ForwardMode> {
  expect(await conn.ehlo(gateName), 250, 'EHLO');
  if (identity === 'none') return 'none';
  if (identity === 'xforward') return conn.extensions.has('XFORWARD') ? 'xforward' : 'none';
  const announced = conn.extensions.get('XCLIENT');
  const cmd = announced === undefined ? undefined : xclientCommand(announced, facts);
  if (!cmd) throw identityError(conn, backend, announced === undefined ? 'it does not offer XCLIENT to the gate' : `its XCLIENT offers no attribute the gate sends ("${announced}")`);
  const r = await conn.command(cmd);
  // Postfix answers with a new 220 greeting; smtp-sink, nginx and others with 250.
  if (r.code < 200 || r.code > 299) throw identityError(conn, backend, `it refused XCLIENT: ${replyText(r)}`);
  expect(await conn.ehlo(facts.helo ?? gateName), 250, 'EHLO after XCLIENT');
  return 'xclient';
}

function identityError(conn: BackendConnection, backend: string, why: string): BackendError {
  return new BackendError(
    'identity',
    `backend ${backend} cannot be told the real client: ${why}. The gate will not relay as itself (the backend would judge ` +
      `relaying for ${conn.localAddress}, inside Postfix's default mynetworks), so every MAIL gets 451 4.3.0. ` +
      `Fix: in Postfix's main.cf set smtpd_authorized_xclient_hosts = ${conn.localAddress} and reload; ` +
      `or choose gate.backend_identity: xforward or none (see docs/gate.md for what each costs)`,
  );
}

/** The reply must have this code, else a protocol BackendError naming the command. */
export function expect(r: Reply, code: number, what: string): void {
  if (r.code !== code) throw new BackendError('protocol', `backend refused ${what}: ${replyText(r)}`);
}
