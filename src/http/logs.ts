// GET /api/logs/:env — the log explorer over HTTP: query parameters mirror `pulser logs` flags
// (service, errors, since, until, grep, n); the answer is JSON with the matching records.
import type { FastifyPluginAsync } from 'fastify';
import { asPulserError } from '../errors.ts';
import type { LogReader } from '../logs/index.ts';
import { ENV_PATTERN } from '../evidence/index.ts';

interface LogsQuerystring {
  service?: string;
  errors?: string;
  since?: string;
  until?: string;
  grep?: string;
  n?: string;
}

const STATUS_OF: Record<string, number> = { PULSER_E_LOGS_QUERY: 400, PULSER_E_ENV_UNKNOWN: 404 };

export const logsRoutes: FastifyPluginAsync<{ logs: LogReader }> = async (app, opts) => {
  app.get<{ Params: { env: string }; Querystring: LogsQuerystring }>('/api/logs/:env', async (req, reply) => {
    const { env } = req.params;
    if (!ENV_PATTERN.test(env)) return reply.code(400).send({ error: { code: 'PULSER_E_USAGE', message: 'bad environment name' } });
    const q = req.query;
    try {
      const result = await opts.logs(env, {
        service: q.service,
        errors: q.errors === '1' || q.errors === 'true',
        since: q.since,
        until: q.until,
        grep: q.grep,
        n: q.n,
      });
      return result;
    } catch (err) {
      const e = asPulserError(err);
      const status = STATUS_OF[e.code] ?? (e.class === 'terminal' ? 422 : 503);
      return reply.code(status).send({ error: e.toJSON() });
    }
  });
};
