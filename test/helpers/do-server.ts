// A local stand-in for the DigitalOcean API v2 (droplets) that checks every request it receives
// and every response it sends against DigitalOcean's own OpenAPI description: the request body
// and query against the operation's schemas, the response body against the schema of its status.
// A route the description does not have is answered 404 and recorded as a violation.
import http from 'node:http';
import { readFileSync } from 'node:fs';
import { Ajv, type ValidateFunction } from 'ajv';
import formatsModule from 'ajv-formats';
import type { Droplet } from '../../src/drivers/digitalocean.ts';

const SPEC_PATH = process.env.PULSER_DO_OPENAPI ?? '/work/shared/contracts/digitalocean-openapi.json';
const SPEC_ID = 'do-openapi';

interface Operation {
  method: string;
  template: string;
  regex: RegExp;
  pointer: string;
  op: { requestBody?: { content?: Record<string, unknown> }; responses: Record<string, { content?: Record<string, unknown> }>; parameters?: { $ref?: string; in?: string; name?: string }[] };
}

type Spec = { paths: Record<string, Record<string, Operation['op']>> };

let shared: { ajv: Ajv; ops: Operation[]; spec: Spec } | null = null;

function escapePointer(s: string): string {
  return s.replace(/~/g, '~0').replace(/\//g, '~1');
}

/** One Ajv holding the whole description, so `$ref`s (circular ones included) resolve in place. */
function contract() {
  if (shared) return shared;
  const spec = JSON.parse(readFileSync(SPEC_PATH, 'utf8')) as Spec;
  // OpenAPI 3.0 schemas carry keywords (example, nullable, discriminator mappings, x-…) that
  // are annotations to a JSON-schema validator.
  const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: true, discriminator: false });
  formatsModule.default(ajv);
  ajv.addSchema({ ...(spec as object), $id: SPEC_ID });
  const ops: Operation[] = [];
  for (const [template, methods] of Object.entries(spec.paths)) {
    const regex = new RegExp('^' + template.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\\?\{[^}]+\\?\}/g, '([^/]+)').replace(/\{[^}]+\}/g, '([^/]+)') + '$');
    for (const [method, op] of Object.entries(methods)) {
      if (!['get', 'post', 'put', 'patch', 'delete'].includes(method)) continue;
      ops.push({ method: method.toUpperCase(), template, regex, pointer: `#/paths/${escapePointer(template)}/${method}`, op });
    }
  }
  shared = { ajv, ops, spec };
  return shared;
}

const validators = new Map<string, ValidateFunction>();
function validatorFor(pointer: string): ValidateFunction {
  let v = validators.get(pointer);
  if (!v) {
    const { ajv } = contract();
    v = ajv.compile({ $ref: `${SPEC_ID}${pointer}` });
    validators.set(pointer, v);
  }
  return v;
}

export interface Exchange {
  method: string;
  path: string;
  operation: string | null;
  status: number;
  requestBody: unknown;
  responseBody: unknown;
}

type Fault = { status: number; body: { id: string; message: string }; headers?: Record<string, string> };

export class DigitalOceanStandIn {
  readonly exchanges: Exchange[] = [];
  readonly violations: string[] = [];
  readonly droplets = new Map<number, Droplet & { getsUntilActive: number }>();
  /** faults answered to the next requests matching, in order */
  readonly faults: { method: string; path: RegExp; fault: Fault }[] = [];
  /** public IPv4 address given to the next droplets created */
  nextAddress = '203.0.113.10';
  /** GETs of a new droplet before it turns active */
  activeAfterGets = 2;
  token = 'do-token-test-1';
  private nextId = 3164444;
  private server: http.Server | null = null;
  url = '';

  async start(): Promise<string> {
    contract();
    this.server = http.createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as { port: number }).port}`;
    return this.url;
  }

  async stop(): Promise<void> {
    await new Promise<void>((r) => this.server?.close(() => r()) ?? r());
  }

  fail(method: string, path: RegExp, fault: Fault, times = 1): void {
    for (let i = 0; i < times; i++) this.faults.push({ method, path, fault });
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const url = new URL(req.url ?? '/', 'http://x');
    const method = req.method ?? 'GET';
    let body: unknown = undefined;
    const raw = Buffer.concat(chunks).toString();
    if (raw) {
      try {
        body = JSON.parse(raw);
      } catch {
        this.violations.push(`${method} ${url.pathname}: request body is not JSON`);
      }
    }
    const { ops } = contract();
    const op = ops.find((o) => o.method === method && o.regex.test(url.pathname));
    const send = (status: number, payload: unknown, headers: Record<string, string> = {}) => {
      if (op) this.checkResponse(op, status, payload);
      this.exchanges.push({ method, path: url.pathname + url.search, operation: op ? `${op.method} ${op.template}` : null, status, requestBody: body, responseBody: payload });
      const now = Math.floor(Date.now() / 1000);
      res.writeHead(status, { 'content-type': 'application/json', 'ratelimit-limit': '5000', 'ratelimit-remaining': '4999', 'ratelimit-reset': String(now + 60), ...headers });
      res.end(payload === undefined ? '' : JSON.stringify(payload));
    };
    if (!op) {
      this.violations.push(`${method} ${url.pathname}: no such operation in the DigitalOcean API description`);
      return send(404, { id: 'not_found', message: 'The resource you were accessing could not be found.' });
    }
    if (req.headers.authorization !== `Bearer ${this.token}`) return send(401, { id: 'unauthorized', message: 'Unable to authenticate you.' });
    if (!this.checkRequest(op, url, body)) return send(422, { id: 'unprocessable_entity', message: 'the request breaks the API description' });
    const faultAt = this.faults.findIndex((f) => f.method === method && f.path.test(url.pathname));
    if (faultAt >= 0) {
      const [{ fault }] = this.faults.splice(faultAt, 1);
      return send(fault.status, fault.body, fault.headers);
    }
    this.route(op, url, body, send);
  }

  private route(op: Operation, url: URL, body: unknown, send: (status: number, payload: unknown, headers?: Record<string, string>) => void): void {
    const key = `${op.method} ${op.template}`;
    if (key === 'GET /v2/droplets') {
      const tag = url.searchParams.get('tag_name');
      const list = [...this.droplets.values()].filter((d) => !tag || d.tags.includes(tag)).map((d) => this.view(d));
      return send(200, { droplets: list, links: {}, meta: { total: list.length } });
    }
    if (key === 'POST /v2/droplets') {
      const b = body as { name: string; region: string; size: string; image: string; tags?: string[] };
      if (!['nyc3', 'sgp1', 'ams3', 'fra1'].includes(b.region)) return send(422, { id: 'unprocessable_entity', message: `${b.region} is not a valid region` });
      const id = this.nextId++;
      const d = {
        id,
        name: b.name,
        memory: 2048,
        vcpus: 1,
        disk: 50,
        locked: false,
        status: 'new' as const,
        created_at: new Date().toISOString(),
        features: [],
        backup_ids: [],
        next_backup_window: null,
        snapshot_ids: [],
        image: { id: 129211873, name: '12 x64', distribution: 'Debian', slug: b.image, public: true, regions: [b.region], created_at: '2023-06-10T00:00:00Z', min_disk_size: 15, size_gigabytes: 2.1, description: 'Debian 12 x64', tags: [], status: 'available', type: 'base' },
        volume_ids: [],
        size: { slug: b.size, memory: 2048, vcpus: 1, disk: 50, transfer: 2, price_monthly: 12, price_hourly: 0.01786, regions: [b.region], available: true, description: 'Basic' },
        size_slug: b.size,
        networks: { v4: [] as { ip_address: string; netmask: string; gateway: string; type: 'public' | 'private' }[], v6: [] },
        region: { name: 'Singapore 1', slug: b.region, features: ['metadata'], available: true, sizes: [b.size] },
        tags: b.tags ?? [],
        getsUntilActive: this.activeAfterGets,
        address: this.nextAddress,
      };
      this.droplets.set(id, d as unknown as Droplet & { getsUntilActive: number });
      return send(202, { droplet: this.view(d as unknown as Droplet & { getsUntilActive: number }), links: { actions: [{ id: 1, rel: 'create', href: `${this.url}/v2/actions/1` }] } });
    }
    const id = Number(/\/v2\/droplets\/(\d+)/.exec(url.pathname)?.[1]);
    const d = this.droplets.get(id);
    if (key === 'GET /v2/droplets/{droplet_id}') {
      if (!d) return send(404, { id: 'not_found', message: 'The resource you were accessing could not be found.' });
      if (d.status === 'new' && --d.getsUntilActive <= 0) {
        d.status = 'active';
        const address = (d as unknown as { address: string }).address;
        d.networks.v4 = [{ ip_address: address, netmask: '255.255.255.0', gateway: address.replace(/\.\d+$/, '.1'), type: 'public' } as unknown as { ip_address: string; type: 'public' }];
      }
      return send(200, { droplet: this.view(d) });
    }
    if (key === 'DELETE /v2/droplets/{droplet_id}') {
      if (!d) return send(404, { id: 'not_found', message: 'The resource you were accessing could not be found.' });
      this.droplets.delete(id);
      return send(204, undefined);
    }
    this.violations.push(`${key}: the stand-in does not implement this operation`);
    send(404, { id: 'not_found', message: 'not implemented by the stand-in' });
  }

  private view(d: Droplet & { getsUntilActive: number }): Droplet {
    const { getsUntilActive: _g, address: _a, ...rest } = d as Droplet & { getsUntilActive: number; address?: string };
    return structuredClone(rest);
  }

  /** Records violations of the request; false when it is one the real API would refuse. */
  private checkRequest(op: Operation, url: URL, body: unknown): boolean {
    const before = this.violations.length;
    const content = op.op.requestBody?.content?.['application/json'];
    if (content) {
      const v = validatorFor(`${op.pointer}/requestBody/content/application~1json/schema`);
      if (!v(body)) this.violations.push(`${op.method} ${op.template} request: ${JSON.stringify(v.errors?.slice(0, 3))}`);
    } else if (body !== undefined) this.violations.push(`${op.method} ${op.template}: sent a body the operation does not take`);
    // Query parameters must be ones the operation declares.
    const { spec } = contract();
    const declared = new Set<string>();
    for (const p of op.op.parameters ?? []) {
      const resolved = p.$ref ? resolvePointer(spec, p.$ref) : p;
      if ((resolved as { in?: string }).in === 'query') declared.add((resolved as { name: string }).name);
    }
    for (const name of url.searchParams.keys()) {
      if (!declared.has(name)) this.violations.push(`${op.method} ${op.template}: undeclared query parameter ${name}`);
    }
    return this.violations.length === before;
  }

  private checkResponse(op: Operation, status: number, payload: unknown): void {
    const r = op.op.responses[String(status)] ?? op.op.responses.default;
    if (!r) {
      this.violations.push(`${op.method} ${op.template}: status ${status} is not a documented response`);
      return;
    }
    const which = op.op.responses[String(status)] ? String(status) : 'default';
    const content = resolveResponse(r).content?.['application/json'];
    if (!content) {
      if (payload !== undefined) this.violations.push(`${op.method} ${op.template} ${status}: a body where none is documented`);
      return;
    }
    const base = op.op.responses[which] as { $ref?: string };
    const pointer = base.$ref ? `${base.$ref}/content/application~1json/schema` : `${op.pointer}/responses/${which}/content/application~1json/schema`;
    const v = validatorFor(pointer);
    if (!v(payload)) this.violations.push(`${op.method} ${op.template} ${status} response: ${JSON.stringify(v.errors?.slice(0, 3))}`);
  }
}

function resolvePointer(spec: unknown, ref: string): unknown {
  let cur: unknown = spec;
  for (const seg of ref.replace(/^#\//, '').split('/')) cur = (cur as Record<string, unknown>)[seg.replace(/~1/g, '/').replace(/~0/g, '~')];
  return cur;
}

function resolveResponse(r: { content?: Record<string, unknown>; $ref?: string }): { content?: Record<string, unknown> } {
  if (r.$ref) return resolvePointer(contract().spec, r.$ref) as { content?: Record<string, unknown> };
  return r;
}
