// GET /api/mail…: list and search caught messages, show one (headers, text, html, attachments),
// or its raw source. A fastify plugin over the catcher's store.
import type { FastifyPluginAsync } from 'fastify';
import { ENV_NAME, type MailStore } from './store.ts';

export interface MailRoutesOptions {
  /** the store, or a getter for a catcher started later (null: the catcher is off) */
  store: MailStore | (() => MailStore | null);
}

interface ListQuery {
  env?: string;
  to?: string;
  subject?: string;
  since?: string;
  limit?: string;
}

const usage = (message: string) => ({ error: { code: 'PULSER_E_USAGE', message } });
const off = { error: { code: 'PULSER_E_MAIL_CATCHER', message: 'the mail catcher is not running (start pulser with --mail-listen)' } };
const notFound = (id: string) => ({ error: { code: 'PULSER_E_MAIL_NOT_FOUND', message: `no caught message ${JSON.stringify(id)} (it may have been evicted by the retention limits)` } });

export const mailRoutes: FastifyPluginAsync<MailRoutesOptions> = async (app, opts) => {
  const current = typeof opts.store === 'function' ? opts.store : () => opts.store as MailStore;

  app.get<{ Querystring: ListQuery }>('/api/mail', async (req, reply) => {
    const store = current();
    if (!store) return reply.code(503).send(off);
    const { env, to, subject, since, limit } = req.query;
    if (env !== undefined && !ENV_NAME.test(env)) return reply.code(400).send(usage('env must be an environment name'));
    const sinceDate = since === undefined ? undefined : new Date(since);
    if (sinceDate && Number.isNaN(sinceDate.getTime())) return reply.code(400).send(usage('since must be an ISO 8601 time, e.g. 2024-05-01T12:00:00Z'));
    const n = limit === undefined ? 50 : Number(limit);
    if (!Number.isInteger(n) || n < 1 || n > 1000) return reply.code(400).send(usage('limit must be an integer from 1 to 1000'));
    for (const [k, v] of [['to', to], ['subject', subject]] as const) if (v !== undefined && v.length > 200) return reply.code(400).send(usage(`${k} is longer than 200 characters`));
    const messages = store.list({ env, to, subject, since: sinceDate, limit: n });
    return { messages };
  });

  app.get<{ Params: { id: string } }>('/api/mail/:id', async (req, reply) => {
    const store = current();
    if (!store) return reply.code(503).send(off);
    const entry = store.get(req.params.id);
    const raw = entry ? await store.raw(entry.id) : null;
    if (!entry || !raw) return reply.code(404).send(notFound(req.params.id));
    // mailparser is loaded on the first message shown, not at every start-up.
    const { readMessage } = await import('./catcher.ts');
    return { ...entry, ...(await readMessage(raw)) };
  });

  app.get<{ Params: { id: string } }>('/api/mail/:id/raw', async (req, reply) => {
    const store = current();
    if (!store) return reply.code(503).send(off);
    const raw = await store.raw(req.params.id);
    if (!raw) return reply.code(404).send(notFound(req.params.id));
    return reply.type('message/rfc822').header('content-disposition', `inline; filename="${req.params.id}.eml"`).send(raw);
  });
};
