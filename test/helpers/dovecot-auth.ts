// A SASL backend for Postfix end-to-end tests: the server side of Dovecot's
// authentication protocol (doc.dovecot.org "Dovecot Authentication Protocol",
// version 1.1), which Postfix speaks with `smtpd_sasl_type = dovecot` and
// `smtpd_sasl_path = inet:127.0.0.1:PORT`. Dovecot itself is not installed
// here; this answers the PLAIN and LOGIN mechanisms from a user/password table,
// so the client really runs AUTH and Postfix really sets sasl_username —
// unlike XCLIENT LOGIN, which skips authentication.

import net from 'node:net';

export interface DovecotAuth {
  port: number;
  /** Every AUTH the backend answered: the user and whether it passed. */
  attempts: Array<{ user: string; ok: boolean }>;
  close(): Promise<void>;
}

/** PLAIN's "authzid\0authcid\0password" (RFC 4616). */
function plainCredentials(b64: string): { user: string; password: string } | undefined {
  const parts = Buffer.from(b64, 'base64').toString('utf8').split('\0');
  return parts.length === 3 ? { user: parts[1], password: parts[2] } : undefined;
}

export async function startDovecotAuth(users: Record<string, string>): Promise<DovecotAuth> {
  const attempts: DovecotAuth['attempts'] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => undefined);
    sock.setEncoding('utf8');
    sock.write(`VERSION\t1\t1\nMECH\tPLAIN\tplaintext\nMECH\tLOGIN\tplaintext\nSPID\t${process.pid}\nCUID\t1\nCOOKIE\t${'0'.repeat(32)}\nDONE\n`);
    // LOGIN asks for the user, then the password: per request id.
    const login = new Map<string, string | undefined>();
    const verdict = (id: string, user: string, password: string) => {
      const ok = users[user] !== undefined && users[user] === password;
      attempts.push({ user, ok });
      sock.write(ok ? `OK\t${id}\tuser=${user}\n` : `FAIL\t${id}\tuser=${user}\n`);
    };
    let buf = '';
    sock.on('data', (d: string) => {
      buf += d;
      if (buf.length > 65_536) return void sock.destroy();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).split('\t');
        buf = buf.slice(nl + 1);
        const [cmd, id] = line;
        if (cmd === 'AUTH') {
          const mech = line[2];
          const resp = line.find((f) => f.startsWith('resp='))?.slice(5);
          if (mech === 'PLAIN') {
            if (resp === undefined) sock.write(`CONT\t${id}\t\n`);
            else {
              const c = plainCredentials(resp);
              if (c) verdict(id, c.user, c.password);
              else sock.write(`FAIL\t${id}\n`);
            }
          } else if (mech === 'LOGIN') {
            login.set(id, undefined);
            sock.write(`CONT\t${id}\t${Buffer.from('Username:').toString('base64')}\n`);
          } else sock.write(`FAIL\t${id}\n`);
        } else if (cmd === 'CONT') {
          const data = Buffer.from(line[2] ?? '', 'base64').toString('utf8');
          if (login.has(id)) {
            const user = login.get(id);
            if (user === undefined) {
              login.set(id, data);
              sock.write(`CONT\t${id}\t${Buffer.from('Password:').toString('base64')}\n`);
            } else {
              login.delete(id);
              verdict(id, user, data);
            }
          } else {
            const c = plainCredentials(line[2] ?? '');
            if (c) verdict(id, c.user, c.password);
            else sock.write(`FAIL\t${id}\n`);
          }
        }
        // VERSION and CPID from the client need no answer.
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return {
    port: (server.address() as net.AddressInfo).port,
    attempts,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
