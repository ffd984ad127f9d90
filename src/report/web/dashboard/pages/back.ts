// Where a change sends the admin afterwards: the page it came from (a path
// on this site only), else the given default.

import { field } from '../form.js';

export function backTo(body: unknown, fallback: string): string {
  let b = '';
  try {
    b = field(body, 'back', 600);
  } catch {
    return fallback;
  }
  return /^\/(?![/\\])[^\s]*$/.test(b) ? b : fallback;
}
