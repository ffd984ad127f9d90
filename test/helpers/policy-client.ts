// A Postfix-like policy client for tests and the benchmark: one connection,
// one request at a time (or pipelined), answers read in order.

import net from 'node:net';
import { formatRequest, parseReplies, type PolicyAttributes } from '../../src/postfix/protocol.js';

export type PolicyTarget = { host: string; port: number } | { path: string };

export class PolicyClient {
  private buffer = '';
  private readonly waiting: Array<(action: string) => void> = [];
  private closedError: Error | undefined;
  readonly closed: Promise<void>;

  private constructor(readonly socket: net.Socket) {
    socket.setEncoding('utf8');
    socket.setNoDelay(true);
    socket.on('data', (d: string) => {
      this.buffer += d;
      const { actions, rest } = parseReplies(this.buffer);
      this.buffer = rest;
      for (const a of actions) this.waiting.shift()?.(a);
    });
    this.closed = new Promise((resolve) =>
      socket.once('close', () => {
        this.closedError = new Error('policy connection closed');
        resolve();
      }),
    );
    socket.on('error', () => undefined);
  }

  static connect(target: PolicyTarget): Promise<PolicyClient> {
    return new Promise((resolve, reject) => {
      const s = net.connect(target as net.NetConnectOpts, () => {
        s.off('error', reject);
        resolve(new PolicyClient(s));
      });
      s.once('error', reject);
    });
  }

  /** Send one request; resolves with the `action=` value. Rejects if the connection closes first. */
  ask(attrs: PolicyAttributes): Promise<string> {
    return this.askRaw(formatRequest(attrs));
  }

  /** Send raw bytes that make up exactly one request (or one bad request) and await one answer. */
  askRaw(wire: string | Buffer): Promise<string> {
    if (this.closedError) return Promise.reject(this.closedError);
    const p = new Promise<string>((resolve, reject) => {
      this.waiting.push(resolve);
      void this.closed.then(() => reject(new Error('policy connection closed before the answer')));
    });
    this.socket.write(wire);
    return p;
  }

  /** Bytes received that are not (yet) a whole answer. */
  get pending(): string {
    return this.buffer;
  }

  close(): Promise<void> {
    this.socket.end();
    return this.closed;
  }
}

/** A typical RCPT request as Postfix 3.7 sends it. */
export function rcptRequest(over: PolicyAttributes = {}): PolicyAttributes {
  return {
    request: 'smtpd_access_policy',
    protocol_state: 'RCPT',
    protocol_name: 'ESMTP',
    client_address: '192.0.2.1',
    client_name: 'unknown',
    client_port: '40000',
    reverse_client_name: 'unknown',
    server_address: '127.0.0.1',
    server_port: '25',
    helo_name: 'client.example',
    sender: 'someone@example.com',
    recipient: 'user@dest.example',
    recipient_count: '0',
    queue_id: '',
    instance: 'a1b2.6b027f38.7680a.0',
    size: '0',
    etrn_domain: '',
    stress: '',
    sasl_method: '',
    sasl_username: '',
    sasl_sender: '',
    ccert_subject: '',
    ccert_issuer: '',
    ccert_fingerprint: '',
    ccert_pubkey_fingerprint: '',
    encryption_protocol: '',
    encryption_cipher: '',
    encryption_keysize: '0',
    policy_context: '',
    ...over,
  };
}
