// The HTTP face of pulser: metrics, health, status and evidence. `buildServer(deps)` returns the
// app; only the daemon listens, tests call `app.inject()`.
import Fastify, { type FastifyInstance } from 'fastify';
import type { Metrics } from './metrics.ts';
import type { StatusBoard } from './core/status.ts';
import type { EvidenceStore } from './evidence/index.ts';
import { PACK_FILES, PASS_ID_PATTERN, ENV_PATTERN } from './evidence/index.ts';
import { VERSION } from './metrics.ts';
import type { Monitor } from './monitor/monitor.ts';
import { monitorRoutes } from './server-monitor.ts';
import { gitopsRoutes, type GitOpsRouteDeps } from './gitops/routes.ts';
import type { LogReader } from './logs/index.ts';
import { logsRoutes } from './http/logs.ts';
import { mailRoutes } from './mail/routes.ts';
import type { MailStore } from './mail/store.ts';

export interface ServerDeps {
  metrics: Metrics;
  status: StatusBoard;
  evidence: EvidenceStore | null;
  /** false while the daemon is starting or shutting down */
  ready?: () => boolean;
  /** probes, KPIs and alerts: adds them to /api/status, serves the rendered rules and the status page */
  monitor?: Monitor;
  /** `POST /pulser/git-ops` and `POST /hooks/github` */
  gitops?: GitOpsRouteDeps;
  /** the log explorer (GET /api/logs/:env) */
  logs?: LogReader;
  /** the mail catcher's store (null while it is off): serves /api/mail */
  mail?: () => MailStore | null;
}

const CONTENT_TYPES: Record<string, string> = {
  'desired.yaml': 'application/yaml; charset=utf-8',
  'summary.md': 'text/markdown; charset=utf-8',
  'apply.jsonl': 'application/x-ndjson; charset=utf-8',
};

export function buildServer(deps: ServerDeps): FastifyInstance {
  const app = Fastify({ logger: false, bodyLimit: 1 << 20, connectionTimeout: 10_000, requestTimeout: 30_000 });

  app.get('/healthz', async (_req, reply) => {
    const ready = deps.ready?.() ?? true;
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ok' : 'starting', version: VERSION });
  });

  app.get('/metrics', async (_req, reply) => {
    const body = await deps.metrics.exposition();
    return reply.type(deps.metrics.registry.contentType).send(body);
  });

  app.get('/api/status', async () => ({ version: VERSION, environments: deps.status.all(), monitor: deps.monitor?.snapshot() ?? {} }));

  app.get<{ Params: { env: string } }>('/api/status/:env', async (req, reply) => {
    const s = deps.status.get(req.params.env);
    if (!s) return reply.code(404).send({ error: { code: 'PULSER_E_ENV_UNKNOWN', message: `no status for environment ${req.params.env}` } });
    return s;
  });

  app.get<{ Querystring: { env?: string; limit?: string } }>('/api/evidence', async (req, reply) => {
    if (!deps.evidence) return reply.code(404).send({ error: { code: 'PULSER_E_USAGE', message: 'evidence is disabled' } });
    const env = req.query.env;
    if (env !== undefined && !ENV_PATTERN.test(env)) return reply.code(400).send({ error: { code: 'PULSER_E_USAGE', message: 'bad environment name' } });
    const limit = Math.min(500, Math.max(1, Number(req.query.limit ?? 50) || 50));
    return { passes: await deps.evidence.list(env, limit) };
  });

  app.get<{ Params: { passId: string; env: string; file: string } }>('/api/evidence/:passId/:env/:file', async (req, reply) => {
    const { passId, env, file } = req.params;
    if (!deps.evidence) return reply.code(404).send({ error: { code: 'PULSER_E_USAGE', message: 'evidence is disabled' } });
    if (!PASS_ID_PATTERN.test(passId) || !ENV_PATTERN.test(env) || !(PACK_FILES as readonly string[]).includes(file)) {
      return reply.code(400).send({ error: { code: 'PULSER_E_USAGE', message: `files are ${PACK_FILES.join(', ')}` } });
    }
    const text = await deps.evidence.read(passId, env, file);
    if (text === null) return reply.code(404).send({ error: { code: 'PULSER_E_USAGE', message: 'no such evidence' } });
    const type = CONTENT_TYPES[file] ?? 'application/json; charset=utf-8';
    return reply.type(type).send(text);
  });

  if (deps.monitor) app.register(monitorRoutes, { monitor: deps.monitor });
  if (deps.gitops) void app.register(gitopsRoutes, deps.gitops);
  if (deps.logs) app.register(logsRoutes, { logs: deps.logs });
  if (deps.mail) app.register(mailRoutes, { store: deps.mail });
  return app;
}
