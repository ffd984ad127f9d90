// GET /metrics: the Prometheus text of frontline serve (docs/metrics.md).
// With web.auth set it wants the same credential as the dashboard
// (Bearer token, or Basic with the password); on a loopback listener
// without auth it is open, like the rest of the listener.

import type { WebPlugin } from './server.js';

export const metricsRoute: WebPlugin = async (app, ctx) => {
  app.get('/metrics', async (req, reply) => {
    const metrics = ctx.services.metrics;
    if (metrics === undefined) return reply.code(404).type('text/plain; charset=utf-8').send('metrics are off (web.metrics: false)\n');
    if (!(await ctx.authorized(req))) {
      return reply.code(401).header('www-authenticate', 'Basic realm="frontline", charset="UTF-8"').type('text/plain; charset=utf-8').send('credentials required (web.auth)\n');
    }
    let text: string;
    try {
      text = await metrics.text();
    } catch (err) {
      ctx.logger.warn({ err: (err as Error).message }, 'metrics scrape failed');
      return reply.code(503).type('text/plain; charset=utf-8').send(`metrics not available: ${(err as Error).message}\n`);
    }
    return reply.type(metrics.contentType).send(text);
  });
};
