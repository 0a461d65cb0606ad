// HTTP routes of monitoring: the rendered Prometheus rules and Grafana dashboard, and the status
// page for people (static HTML, JS and CSS served as they are, no build step).
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import type { Monitor } from './monitor/monitor.ts';
import { renderAlertRules, renderDashboard } from '../reconcilers/alerts/index.ts';

const WEB_DIR = new URL('./web/', import.meta.url);
const PAGES: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/status.js': { file: 'status.js', type: 'text/javascript; charset=utf-8' },
  '/status.css': { file: 'status.css', type: 'text/css; charset=utf-8' },
};

export async function monitorRoutes(app: FastifyInstance, opts: { monitor: Monitor }): Promise<void> {
  app.get('/api/render/alerts', async (_req, reply) => reply.type('application/yaml; charset=utf-8').send(renderAlertRules(opts.monitor.renderEnvs())));
  app.get('/api/render/dashboard', async () => renderDashboard(opts.monitor.renderEnvs()));
  for (const [route, page] of Object.entries(PAGES)) {
    const body = readFileSync(fileURLToPath(new URL(page.file, WEB_DIR)), 'utf8');
    app.get(route, async (_req, reply) =>
      reply.type(page.type).header('content-security-policy', "default-src 'self'; style-src 'self'; script-src 'self'; img-src 'self' data:").header('cache-control', 'no-cache').send(body),
    );
  }
}
