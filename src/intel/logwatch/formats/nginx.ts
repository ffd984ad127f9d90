// nginx: access log (combined) and the basic-auth failures of its error log.

import { parseAccess, parseNginxError } from './http.js';
import type { Format } from './types.js';

export const nginx: Format = {
  name: 'nginx',
  accepts: (program) => program === undefined || program === 'nginx',
  parse(entry, out) {
    const c = entry.message.charCodeAt(4);
    if (c === 47 /* "2026/" */) parseNginxError(entry.message, entry.times, out);
    else parseAccess(entry.message, entry.times, out);
  },
};
