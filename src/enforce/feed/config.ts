// The `enforce.feed:` section: serving this host's bans (and chosen lists) to
// peers over HTTP, and pulling peers' feeds into this store. Off by default:
// nothing listens and nothing is fetched unless configured.

import { z } from 'zod';
import { parseListenAddress } from '../../config/address.js';

const listName = z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, { message: 'expected a list name (letters, digits, _ . -, at most 64)' });
/** A peer's name becomes part of a store list name (feed:<name>). */
const peerName = z.string().regex(/^[A-Za-z0-9_.-]{1,40}$/, { message: 'expected a peer name (letters, digits, _ . -, at most 40)' });

export const feedPullSchema = z.strictObject({
  /** Names the peer in logs and in the store list that keeps its copy (`feed:<name>`). */
  name: peerName,
  /** The peer's feed listener, e.g. https://mx2.example.net:8026 */
  url: z.string().regex(/^https?:\/\/[^\s/?#]+(\/[^\s?#]*)?$/, { message: 'expected an http:// or https:// URL without query' }),
  /** File holding the bearer token the peer expects (required unless the peer is on loopback). */
  token_file: z.string().min(1).nullable().default(null),
  /** Which of the peer's feeds to take: `bans` and/or lists it serves. */
  lists: z.array(listName).min(1).default(['bans']),
  /** An entry bans here only when at least this many peers list it. */
  min_sources: z.number().int().min(1).max(16).default(1),
  interval_s: z.number().int().min(1).max(86_400).default(60),
  timeout_s: z.number().int().min(1).max(300).default(30),
  /** Entries without an expiry of their own are kept this long after the last good pull (peer down: last good copy). */
  hold_s: z.number().int().min(60).max(30 * 86_400).default(86_400),
});

export const feedSchema = z
  .strictObject({
    /** host:port to serve the feed on; null = no feed served. */
    listen: z
      .string()
      .refine((s) => parseListenAddress(s) !== undefined, { message: 'expected host:port (e.g. 127.0.0.1:8026 or [::1]:8026)' })
      .nullable()
      .default(null),
    /** File holding the bearer token a client must send (Authorization: Bearer …) unless it is on loopback. */
    token_file: z.string().min(1).nullable().default(null),
    /** Store ip lists served beside the bans (e.g. [deny]). */
    lists: z.array(listName).default([]),
    pull: z.array(feedPullSchema).max(64).default([]),
  })
  .superRefine((f, ctx) => {
    const seen = new Set<string>();
    f.pull.forEach((p, i) => {
      if (seen.has(p.name)) ctx.addIssue({ code: 'custom', path: ['pull', i, 'name'], message: `peer "${p.name}" is named twice` });
      seen.add(p.name);
    });
    if (f.lists.includes('bans')) ctx.addIssue({ code: 'custom', path: ['lists'], message: '"bans" is always served; list store lists here' });
  });

export type FeedConfig = z.output<typeof feedSchema>;
export type FeedPullConfig = z.output<typeof feedPullSchema>;
