// Apache httpd: access log (common/combined) and the auth failures of its error log.

import { parseAccess, parseApacheError } from './http.js';
import type { Format } from './types.js';

export const apache: Format = {
  name: 'apache',
  accepts: (program) => program === undefined || program === 'apache2' || program === 'httpd' || program === 'apache',
  parse(entry, out) {
    if (entry.message.charCodeAt(0) === 91 /* [ */) parseApacheError(entry.message, entry.times, out);
    else parseAccess(entry.message, entry.times, out);
  },
};
