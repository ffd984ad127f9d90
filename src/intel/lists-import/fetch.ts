// Reading a list from where it is published: a local file, or an http(s) URL
// through the global fetch. Both are bounded in size and (URLs) in time, and
// anything but a complete, successful read is an error — the caller then
// keeps its last good copy.

import { open } from 'node:fs/promises';

export type ListLocation = { url: string } | { file: string };

export interface FetchOptions {
  /** Whole request, headers and body. Default 30 s. */
  timeoutMs?: number;
  /** Larger bodies are refused. Default 64 MiB. */
  maxBytes?: number;
  /** Replaces the global fetch (tests). */
  fetch?: typeof fetch;
  /** More request headers (a feed's Authorization); the user-agent is ours. */
  headers?: Record<string, string>;
  /** Say who is asking (default "frontline list import"). */
  userAgent?: string;
}

export class FetchError extends Error {}

export function describeLocation(loc: ListLocation): string {
  return 'url' in loc ? loc.url : loc.file;
}

async function readFileBounded(path: string, maxBytes: number): Promise<string> {
  const fh = await open(path, 'r').catch((e: NodeJS.ErrnoException) => {
    throw new FetchError(`${path}: ${e.code ?? e.message}`);
  });
  try {
    const { size } = await fh.stat();
    if (size > maxBytes) throw new FetchError(`${path}: ${size} bytes, more than the limit of ${maxBytes}`);
    return (await fh.readFile()).toString('utf8');
  } finally {
    await fh.close();
  }
}

async function fetchUrl(url: string, opts: FetchOptions): Promise<string> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new FetchError(`${url}: not a URL`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new FetchError(`${url}: only http and https URLs are fetched`);
  const maxBytes = opts.maxBytes ?? 64 * 1024 * 1024;
  const signal = AbortSignal.timeout(opts.timeoutMs ?? 30_000);
  let res: Response;
  try {
    res = await (opts.fetch ?? fetch)(url, { signal, redirect: 'follow', headers: { ...opts.headers, 'user-agent': opts.userAgent ?? 'frontline list import' } });
  } catch (e) {
    const cause = (e as { cause?: { code?: string } }).cause?.code;
    throw new FetchError(`${url}: ${(e as Error).name === 'TimeoutError' ? 'timed out' : (cause ?? (e as Error).message)}`);
  }
  if (!res.ok) {
    await res.body?.cancel().catch(() => undefined);
    throw new FetchError(`${url}: HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}`);
  }
  const declared = Number(res.headers.get('content-length'));
  if (declared > maxBytes) {
    await res.body?.cancel().catch(() => undefined);
    throw new FetchError(`${url}: ${declared} bytes, more than the limit of ${maxBytes}`);
  }
  if (!res.body) return '';
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = res.body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > maxBytes) {
        await reader.cancel().catch(() => undefined);
        throw new FetchError(`${url}: more than the limit of ${maxBytes} bytes`);
      }
      chunks.push(value);
    }
  } catch (e) {
    if (e instanceof FetchError) throw e;
    throw new FetchError(`${url}: ${(e as Error).name === 'TimeoutError' ? 'timed out' : (e as Error).message} while reading the body`);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** The list's text; rejects with FetchError saying where and why. */
export function fetchListText(loc: ListLocation, opts: FetchOptions = {}): Promise<string> {
  return 'url' in loc ? fetchUrl(loc.url, opts) : readFileBounded(loc.file, opts.maxBytes ?? 64 * 1024 * 1024);
}
