// HTTP intake of the GitOps side: `POST /pulser/git-ops` (Odoo's signed kv dispatches) and
// `POST /hooks/github` (push and pull_request hints). Both verify an HMAC over the raw body, so
// this plugin keeps bodies as bytes; JSON is parsed only after the signature holds.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { PulserError, asPulserError, type ErrorCode } from '../errors.ts';
import type { Metrics } from '../metrics.ts';
import type { Logger } from '../core/log.ts';
import { DeliveryLog, checkFreshness, verifySignature } from './signature.ts';
import { parseDispatch, type DispatchResult, type KvDispatch } from './dispatch.ts';

export const DISPATCH_BODY_LIMIT = 64 * 1024;
export const GITHUB_BODY_LIMIT = 25 * 1024 * 1024;
export const FRESHNESS_MS = 5 * 60_000;

export interface GitHubHookHandler {
  /** `push` of the tracked branch: fetch and reconcile now */
  push(payload: Record<string, unknown>): void;
  /** `pull_request` opened / synchronize / reopened: plan the head and report it */
  pullRequest(payload: Record<string, unknown>): void;
}

export interface GitOpsRouteDeps {
  /** the HMAC secret of a source, or undefined when none is configured */
  secret(source: 'odoo' | 'github'): Promise<string | undefined>;
  dispatch: ((d: KvDispatch) => Promise<DispatchResult>) | null;
  github: GitHubHookHandler | null;
  metrics: Metrics;
  log: Logger;
  deliveries?: DeliveryLog;
  now?: () => number;
  freshnessMs?: number;
}

const STATUS: Partial<Record<ErrorCode, number>> = {
  PULSER_E_WEBHOOK_SIGNATURE: 401,
  PULSER_E_WEBHOOK_STALE: 401,
  PULSER_E_WEBHOOK_REPLAY: 409,
  PULSER_E_WEBHOOK_PAYLOAD: 400,
  PULSER_E_KV_KEY_INVALID: 422,
  PULSER_E_KV_VALUE_INVALID: 422,
  PULSER_E_DISPATCH_INVALID: 422,
  PULSER_E_WEBHOOK_DISABLED: 503,
  PULSER_E_POLICY_INVALID: 503,
  PULSER_E_SECRETS_FILE: 503,
  PULSER_E_GIT: 502,
  PULSER_E_GIT_DIVERGED: 502,
  PULSER_E_GITHUB_API: 502,
  PULSER_E_TIMEOUT: 504,
};

class HttpError extends PulserError {
  constructor(
    readonly status: number,
    code: ErrorCode,
    message: string,
  ) {
    super(code, message);
  }
}

function header(req: FastifyRequest, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function rawBody(req: FastifyRequest): Buffer {
  return Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
}

function requireJson(req: FastifyRequest): void {
  const type = (header(req, 'content-type') ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/json') throw new HttpError(415, 'PULSER_E_WEBHOOK_PAYLOAD', `content type must be application/json, got ${JSON.stringify(type.slice(0, 60) || 'none')}`);
}

function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body));
  } catch {
    throw new PulserError('PULSER_E_WEBHOOK_PAYLOAD', 'the body is not valid UTF-8 JSON');
  }
}

const DELIVERY_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export async function gitopsRoutes(app: FastifyInstance, deps: GitOpsRouteDeps): Promise<void> {
  const deliveries = deps.deliveries ?? new DeliveryLog();
  const now = deps.now ?? Date.now;
  const windowMs = deps.freshnessMs ?? FRESHNESS_MS;

  // Bodies stay raw bytes in this plugin only: the signature is over exactly what was sent.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, req, reply) => {
    const source = req.url.startsWith('/hooks/github') ? 'github' : 'odoo';
    const tooLarge = err.statusCode === 413;
    const e = tooLarge
      ? new HttpError(413, 'PULSER_E_WEBHOOK_PAYLOAD', 'the body is too large')
      : err.statusCode && err.statusCode < 500
        ? new HttpError(err.statusCode, 'PULSER_E_WEBHOOK_PAYLOAD', `bad request (${err.code ?? 'malformed'})`)
        : asPulserError(err);
    return fail(reply, source, e);
  });

  function fail(reply: FastifyReply, source: string, err: unknown, started?: bigint) {
    const e = asPulserError(err);
    const status = e instanceof HttpError ? e.status : (STATUS[e.code] ?? 500);
    const outcome = e.code === 'PULSER_E_WEBHOOK_REPLAY' ? 'duplicate' : status < 500 ? 'rejected' : 'failed';
    deps.metrics.webhookRequests.inc({ source, outcome });
    if (started !== undefined) deps.metrics.dispatchDuration.observe({ outcome }, Number(process.hrtime.bigint() - started) / 1e9);
    const level = status < 500 ? 'warn' : 'error';
    deps.log[level](`${source === 'odoo' ? 'dispatch' : 'github webhook'} refused: ${e.message}`, { code: e.code, status });
    return reply.code(status).send({ error: { code: e.code, message: e.message } });
  }

  /** Signature, freshness and replay checks shared by both routes; returns the parsed JSON body. */
  async function authenticate(req: FastifyRequest, source: 'odoo' | 'github'): Promise<{ body: unknown; delivery: string }> {
    const secret = await deps.secret(source);
    if (!secret) throw new HttpError(503, 'PULSER_E_WEBHOOK_DISABLED', `no ${source === 'odoo' ? 'PULSER_DISPATCH_SECRET' : 'PULSER_GITHUB_WEBHOOK_SECRET'} is configured`);
    requireJson(req);
    const body = rawBody(req);
    const sigHeader = source === 'odoo' ? 'x-pulser-signature' : 'x-hub-signature-256';
    const ts = source === 'odoo' ? header(req, 'x-pulser-timestamp') : undefined;
    verifySignature(secret, body, header(req, sigHeader), ts);
    if (ts !== undefined) checkFreshness(ts, now(), windowMs);
    const given = header(req, source === 'odoo' ? 'x-pulser-delivery' : 'x-github-delivery');
    if (given !== undefined && !DELIVERY_ID.test(given)) throw new PulserError('PULSER_E_WEBHOOK_PAYLOAD', 'the delivery id must be 1-128 characters of A-Z a-z 0-9 . _ : -');
    // Without a delivery id, the signature identifies the request: the same signed body twice is a replay.
    const delivery = `${source}:${given ?? header(req, sigHeader)!.toLowerCase()}`;
    if (!deliveries.claim(delivery, now())) throw new PulserError('PULSER_E_WEBHOOK_REPLAY', `delivery ${given ?? '(by signature)'} was already accepted`);
    return { body: parseJson(body), delivery };
  }

  app.post('/pulser/git-ops', { bodyLimit: DISPATCH_BODY_LIMIT }, async (req, reply) => {
    const started = process.hrtime.bigint();
    let delivery: string | null = null;
    try {
      if (!deps.dispatch) throw new HttpError(503, 'PULSER_E_WEBHOOK_DISABLED', 'dispatches need a tracked git repository (--git)');
      const auth = await authenticate(req, 'odoo');
      delivery = auth.delivery;
      const d = parseDispatch(auth.body);
      let result: DispatchResult;
      try {
        result = await deps.dispatch(d);
      } catch (err) {
        // Nothing was committed for this delivery: let the sender retry it.
        deliveries.release(delivery);
        throw err;
      }
      deps.metrics.webhookRequests.inc({ source: 'odoo', outcome: 'accepted' });
      deps.metrics.dispatchDuration.observe({ outcome: 'accepted' }, Number(process.hrtime.bigint() - started) / 1e9);
      deps.log.info(`dispatch committed ops/kv/${d.key}.txt on ${result.branch} as ${result.commit.slice(0, 12)}${result.pullRequest ? ` (pull request #${result.pullRequest.number})` : ''}`);
      return reply.code(200).send(result);
    } catch (err) {
      return fail(reply, 'odoo', err, started);
    }
  });

  app.post('/hooks/github', { bodyLimit: GITHUB_BODY_LIMIT }, async (req, reply) => {
    try {
      const event = header(req, 'x-github-event');
      if (!event || !/^[a-z_]{1,64}$/.test(event)) throw new PulserError('PULSER_E_WEBHOOK_PAYLOAD', 'missing or malformed X-GitHub-Event header');
      const { body } = await authenticate(req, 'github');
      if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new PulserError('PULSER_E_WEBHOOK_PAYLOAD', 'the payload must be a JSON object');
      const payload = body as Record<string, unknown>;
      let handled = 'ignored';
      if (event === 'ping') handled = 'pong';
      else if (event === 'push' && deps.github) {
        deps.github.push(payload);
        handled = 'push';
      } else if (event === 'pull_request' && deps.github && ['opened', 'synchronize', 'reopened'].includes(String(payload.action))) {
        deps.github.pullRequest(payload);
        handled = 'pull_request';
      }
      deps.metrics.webhookRequests.inc({ source: 'github', outcome: 'accepted' });
      return reply.code(handled === 'pong' ? 200 : 202).send({ ok: true, event, handled });
    } catch (err) {
      return fail(reply, 'github', err);
    }
  });
}
