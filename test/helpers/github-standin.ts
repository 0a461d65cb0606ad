// A local GitHub API for tests. It speaks the real contract: every request is matched to an
// operation of GitHub's OpenAPI description and its body validated; every response it sends is
// validated too; an unknown route is a violation. Auth follows GitHub Apps: an RS256 app JWT for
// /app routes, an installation token (issued here, with an expiry) for repository routes.
import http from 'node:http';
import { createPublicKey, generateKeyPairSync, randomBytes, verify } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { checkRequest, checkResponse, matchOperation, sampleResponse, type Operation } from './github-contract.ts';

export interface Comment {
  id: number;
  body: string;
  issue: number;
}

export class GitHubStandIn {
  readonly violations: string[] = [];
  readonly calls: { method: string; path: string; operationId: string; token?: string }[] = [];
  readonly tokens = new Map<string, number>();
  tokenRequests = 0;
  /** lifetime of the installation tokens it issues */
  tokenTtlMs = 3600_000;
  readonly pulls: { number: number; head: string; base: string; title: string; body: string; state: 'open' }[] = [];
  readonly comments: Comment[] = [];
  readonly statuses: { sha: string; state: string; context: string; description: string }[] = [];
  readonly deployments: { id: number; ref: string; environment: string; statuses: { state: string; log_url?: string; description?: string }[] }[] = [];
  private nextId = 1000;
  private server: http.Server | null = null;
  readonly privateKey: string;
  private readonly publicKey: ReturnType<typeof createPublicKey>;

  constructor(
    readonly appId = '4242',
    readonly installationId = 77,
    readonly owner = 'acme',
    readonly repo = 'gitops',
  ) {
    const pair = generateKeyPairSync('rsa', { modulusLength: 2048 });
    this.privateKey = pair.privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
    this.publicKey = pair.publicKey;
  }

  url = '';

  async start(): Promise<string> {
    this.server = http.createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this.url;
  }

  async stop(): Promise<void> {
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }

  commentsOn(issue: number): Comment[] {
    return this.comments.filter((c) => c.issue === issue);
  }

  private violation(text: string): void {
    this.violations.push(text);
  }

  private checkJwt(auth: string | undefined): boolean {
    const m = /^bearer ([\w-]+)\.([\w-]+)\.([\w-]+)$/i.exec(auth ?? '');
    if (!m) return false;
    const ok = verify('RSA-SHA256', Buffer.from(`${m[1]}.${m[2]}`), this.publicKey, Buffer.from(m[3]!, 'base64url'));
    const claims = JSON.parse(Buffer.from(m[2]!, 'base64url').toString()) as { iss?: unknown; exp?: number; iat?: number };
    const now = Date.now() / 1000;
    return ok && String(claims.iss) === this.appId && (claims.exp ?? 0) > now && (claims.exp ?? 0) - (claims.iat ?? 0) <= 600 + 60;
  }

  private checkToken(auth: string | undefined): boolean {
    const m = /^(?:token|bearer) (\S+)$/i.exec(auth ?? '');
    const exp = m ? this.tokens.get(m[1]!) : undefined;
    return exp !== undefined && exp > Date.now();
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    const url = new URL(req.url ?? '/', 'http://x');
    const method = req.method ?? 'GET';
    const op = matchOperation(method, url.pathname);
    const send = (status: number, body?: unknown) => {
      if (op) for (const p of checkResponse(op, status, body)) this.violation(`response ${status} of ${op.operationId}: ${p}`);
      res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
      res.end(body === undefined ? '' : JSON.stringify(body));
    };
    if (!op) {
      this.violation(`unknown route ${method} ${url.pathname}`);
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ message: 'Not Found' }));
      return;
    }
    const token = /^(?:token|bearer) (ghs_\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
    this.calls.push({ method, path: url.pathname, operationId: op.operationId, ...(token ? { token } : {}) });
    let body: unknown;
    if (raw !== '') {
      try {
        body = JSON.parse(raw);
      } catch {
        this.violation(`${op.operationId}: body is not JSON`);
      }
    }
    for (const p of checkRequest(op, body)) this.violation(`request of ${op.operationId}: ${p}`);
    if ((req.headers['content-type'] ?? '').length > 0 && raw !== '' && !String(req.headers['content-type']).startsWith('application/json')) {
      this.violation(`${op.operationId}: content-type ${req.headers['content-type']}`);
    }
    const isApp = op.template.startsWith('/app');
    const authed = isApp ? this.checkJwt(req.headers.authorization) : this.checkToken(req.headers.authorization);
    if (!authed) {
      this.violation(`${op.operationId}: not authenticated as ${isApp ? 'the app (JWT)' : 'an installation (token)'}`);
      res.writeHead(401, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ message: 'Bad credentials' }));
      return;
    }
    if (!isApp && (op.params.owner !== this.owner || op.params.repo !== this.repo)) this.violation(`${op.operationId}: repository ${op.params.owner}/${op.params.repo}`);
    this.route(op, body as Record<string, unknown>, url, send);
  }

  private route(op: Operation, body: Record<string, unknown>, url: URL, send: (status: number, body?: unknown) => void): void {
    const repoUrl = `https://github.com/${this.owner}/${this.repo}`;
    switch (op.operationId) {
      case 'apps/create-installation-access-token': {
        if (Number(op.params.installation_id) !== this.installationId) return send(404, sampleResponse(op, 404, { message: 'Not Found' }));
        this.tokenRequests++;
        const token = 'ghs_' + randomBytes(18).toString('hex');
        const expires = Date.now() + this.tokenTtlMs;
        this.tokens.set(token, expires);
        return send(201, sampleResponse(op, 201, { token, expires_at: new Date(expires).toISOString().replace(/\.\d+Z$/, 'Z'), permissions: { pull_requests: 'write', statuses: 'write', deployments: 'write', issues: 'write' }, repository_selection: 'selected' }));
      }
      case 'pulls/list': {
        const head = url.searchParams.get('head');
        const found = this.pulls.filter((p) => !head || `${this.owner}:${p.head}` === head);
        return send(200, found.map((p) => sampleResponse(op, 200, { number: p.number, html_url: `${repoUrl}/pull/${p.number}`, state: 'open', title: p.title })));
      }
      case 'pulls/create': {
        const number = this.pulls.length + 1;
        this.pulls.push({ number, head: String(body.head), base: String(body.base), title: String(body.title), body: String(body.body ?? ''), state: 'open' });
        return send(201, sampleResponse(op, 201, { number, html_url: `${repoUrl}/pull/${number}`, state: 'open', title: body.title }));
      }
      case 'issues/list-comments': {
        const issue = Number(op.params.issue_number);
        const page = Number(url.searchParams.get('page') ?? 1);
        const per = Number(url.searchParams.get('per_page') ?? 30);
        const list = this.commentsOn(issue).slice((page - 1) * per, page * per);
        return send(200, list.map((c) => sampleResponse(op, 200, { id: c.id, body: c.body })));
      }
      case 'issues/create-comment': {
        const c = { id: this.nextId++, body: String(body.body), issue: Number(op.params.issue_number) };
        this.comments.push(c);
        return send(201, sampleResponse(op, 201, { id: c.id, body: c.body }));
      }
      case 'issues/update-comment': {
        const c = this.comments.find((x) => x.id === Number(op.params.comment_id));
        if (!c) return send(422, sampleResponse(op, 422, { message: 'Validation Failed' }));
        c.body = String(body.body);
        return send(200, sampleResponse(op, 200, { id: c.id, body: c.body }));
      }
      case 'repos/create-commit-status': {
        this.statuses.push({ sha: op.params.sha!, state: String(body.state), context: String(body.context), description: String(body.description ?? '') });
        return send(201, sampleResponse(op, 201, { state: body.state, context: body.context, description: body.description ?? null }));
      }
      case 'repos/create-deployment': {
        const d = { id: this.nextId++, ref: String(body.ref), environment: String(body.environment), statuses: [] };
        this.deployments.push(d);
        return send(201, sampleResponse(op, 201, { id: d.id, ref: d.ref, environment: d.environment }));
      }
      case 'repos/create-deployment-status': {
        const d = this.deployments.find((x) => x.id === Number(op.params.deployment_id));
        if (!d) return send(422, sampleResponse(op, 422, { message: 'Validation Failed' }));
        d.statuses.push({ state: String(body.state), log_url: body.log_url as string | undefined, description: body.description as string | undefined });
        return send(201, sampleResponse(op, 201, { id: this.nextId++, state: body.state, description: body.description ?? '' }));
      }
      default:
        this.violation(`operation ${op.operationId} is documented but the stand-in does not implement it`);
        return send(404);
    }
  }
}
