// Free-mail domains: anyone can get an address there, so writing to one
// gmail.com user says nothing about the rest of gmail.com. Correspondents in
// these domains are learned (and trusted) per address, others per domain.
//
// An entry is a domain (`gmail.com`, matching itself and its subdomains) or
// `label.*` (`yahoo.*`), matching that label under any public suffix:
// yahoo.com, yahoo.co.uk, yahoo.fr.

import { parse } from 'tldts';

export const DEFAULT_FREE_MAIL: readonly string[] = [
  'gmail.com',
  'googlemail.com',
  'yahoo.*',
  'ymail.com',
  'rocketmail.com',
  'outlook.*',
  'hotmail.*',
  'live.*',
  'msn.com',
  'passport.com',
  'aol.*',
  'aim.com',
  'icloud.com',
  'me.com',
  'mac.com',
  'gmx.*',
  'web.de',
  'freenet.de',
  't-online.de',
  'mail.ru',
  'inbox.ru',
  'list.ru',
  'bk.ru',
  'yandex.*',
  'ya.ru',
  'rambler.ru',
  'proton.me',
  'protonmail.com',
  'protonmail.ch',
  'pm.me',
  'tutanota.com',
  'tutanota.de',
  'tuta.io',
  'zoho.com',
  'zohomail.com',
  'mail.com',
  'email.com',
  'usa.com',
  'fastmail.com',
  'fastmail.fm',
  'hey.com',
  'laposte.net',
  'orange.fr',
  'wanadoo.fr',
  'free.fr',
  'sfr.fr',
  'libero.it',
  'virgilio.it',
  'tiscali.it',
  'seznam.cz',
  'wp.pl',
  'o2.pl',
  'onet.pl',
  'interia.pl',
  'qq.com',
  '163.com',
  '126.com',
  'sina.com',
  'naver.com',
  'daum.net',
  'hanmail.net',
  'rediffmail.com',
  'comcast.net',
  'verizon.net',
  'att.net',
  'sbcglobal.net',
  'btinternet.com',
  'bluewin.ch',
];

function norm(d: string): string {
  return d.trim().replace(/\.$/, '').toLowerCase();
}

export class FreeMailDomains {
  private readonly exact = new Set<string>();
  /** `yahoo` for `yahoo.*`. */
  private readonly anySuffix = new Set<string>();

  constructor(entries: Iterable<string> = DEFAULT_FREE_MAIL) {
    for (const raw of entries) {
      const e = norm(raw);
      if (e.endsWith('.*')) this.anySuffix.add(e.slice(0, -2));
      else if (e !== '') this.exact.add(e);
    }
  }

  /** Is `domain` (or a parent of it) a free-mail domain? */
  has(domain: string): boolean {
    const d = norm(domain);
    if (d === '') return false;
    for (let name = d; ; ) {
      if (this.exact.has(name)) return true;
      const dot = name.indexOf('.');
      if (dot < 0) break;
      name = name.slice(dot + 1);
    }
    if (this.anySuffix.size === 0) return false;
    const p = parse(d, { allowPrivateDomains: false });
    // `yahoo.*` is the registrable domain yahoo.<suffix>, not evil-yahoo.com or yahoo.evil.com.
    return p.domainWithoutSuffix !== null && p.domainWithoutSuffix !== '' && this.anySuffix.has(p.domainWithoutSuffix);
  }
}
