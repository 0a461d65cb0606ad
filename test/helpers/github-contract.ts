// GitHub's published contracts, used to keep the local stand-in honest: the REST description
// (@octokit/openapi) matches a request to its operation and validates bodies both ways, and the
// webhook description (@octokit/openapi-webhooks) validates payloads. Also builds schema-valid
// samples (required fields only) that tests override with what they care about.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Ajv, type ValidateFunction } from 'ajv';
import formatsModule from 'ajv-formats';

const require = createRequire(import.meta.url);
const addFormats = formatsModule as unknown as (ajv: Ajv) => Ajv;

type Schema = Record<string, unknown>;

function esc(seg: string): string {
  return seg.replace(/~/g, '~0').replace(/\//g, '~1');
}

class Contract {
  readonly doc: Schema;
  private readonly ajv: Ajv;
  private readonly compiled = new Map<string, ValidateFunction>();

  constructor(file: string, readonly id: string) {
    this.doc = JSON.parse(readFileSync(require.resolve(file), 'utf8')) as Schema;
    this.ajv = new Ajv({ strict: false, allErrors: true, validateFormats: true, discriminator: false });
    addFormats(this.ajv);
    this.ajv.addFormat('uri-template', true);
    this.ajv.addFormat('repo.nwo', /^[^/]+\/[^/]+$/);
    this.ajv.addSchema(this.doc, id);
  }

  /** Validator of the schema at `pointer` (a JSON pointer into the document). */
  validator(pointer: string): ValidateFunction {
    let v = this.compiled.get(pointer);
    if (!v) {
      v = this.ajv.compile({ $ref: `${this.id}#${pointer}` });
      this.compiled.set(pointer, v);
    }
    return v;
  }

  check(pointer: string, value: unknown): string[] {
    const v = this.validator(pointer);
    if (v(value)) return [];
    return (v.errors ?? []).slice(0, 8).map((e) => `${e.instancePath || '(root)'} ${e.message ?? ''} ${JSON.stringify(e.params)}`);
  }

  at(pointer: string): Schema {
    let cur: unknown = this.doc;
    for (const raw of pointer.split('/').slice(1)) cur = (cur as Schema)[raw.replace(/~1/g, '/').replace(/~0/g, '~')];
    return cur as Schema;
  }

  /** A minimal instance of the schema at `pointer`: required properties only, checked with ajv. */
  sample(pointer: string, depth = 0): unknown {
    const s = this.at(pointer);
    if (depth > 40) return null;
    if (typeof s.$ref === 'string') return this.sample(s.$ref.slice(1), depth + 1);
    for (const k of ['oneOf', 'anyOf'] as const) {
      const opts = s[k] as Schema[] | undefined;
      if (opts) {
        for (let i = 0; i < opts.length; i++) {
          const cand = this.sample(`${pointer}/${k}/${i}`, depth + 1);
          if (this.check(pointer, cand).length === 0) return cand;
        }
        return this.sample(`${pointer}/${k}/0`, depth + 1);
      }
    }
    if (Array.isArray(s.allOf)) {
      return Object.assign({}, ...(s.allOf as Schema[]).map((_, i) => this.sample(`${pointer}/allOf/${i}`, depth + 1)));
    }
    if (s.const !== undefined) return s.const;
    if (Array.isArray(s.enum)) return s.enum.find((x) => x !== null) ?? s.enum[0];
    const types = Array.isArray(s.type) ? (s.type as string[]) : [s.type as string | undefined];
    const type = types.find((x) => x !== 'null') ?? (s.properties ? 'object' : undefined);
    if (type === undefined && (s.nullable === true || types.includes('null'))) return null;
    switch (type) {
      case 'object': {
        const out: Record<string, unknown> = {};
        for (const k of (s.required as string[] | undefined) ?? []) {
          const props = (s.properties as Schema | undefined) ?? {};
          out[k] = props[k] ? this.sample(`${pointer}/properties/${esc(k)}`, depth + 1) : 'x';
        }
        return out;
      }
      case 'array':
        return [];
      case 'integer':
      case 'number':
        return typeof s.minimum === 'number' ? s.minimum : 1;
      case 'boolean':
        return false;
      case 'string':
        switch (s.format) {
          case 'date-time':
            return '2026-01-01T00:00:00Z';
          case 'uri':
            return 'https://example.invalid/x';
          case 'email':
            return 'someone@example.invalid';
          case 'date':
            return '2026-01-01';
          default:
            return 'x';
        }
      default:
        return null;
    }
  }
}

let rest: Contract | null = null;
let hooks: Contract | null = null;

export function restContract(): Contract {
  rest ??= new Contract('@octokit/openapi/generated/api.github.com.json', 'github-rest');
  return rest;
}

export function webhookContract(): Contract {
  hooks ??= new Contract('@octokit/openapi-webhooks/generated/api.github.com.json', 'github-webhooks');
  return hooks;
}

export interface Operation {
  template: string;
  method: string;
  params: Record<string, string>;
  pointer: string;
  operationId: string;
}

let routes: { template: string; re: RegExp; names: string[]; literal: number }[] | null = null;

/** The operation of the REST description that `method path` is, or null (an unknown route). */
export function matchOperation(method: string, urlPath: string): Operation | null {
  const c = restContract();
  routes ??= Object.keys(c.doc.paths as Schema)
    .map((template) => {
      const names: string[] = [];
      const re = new RegExp(
        '^' +
          template
            .split('/')
            .map((seg) => (seg.startsWith('{') ? (names.push(seg.slice(1, -1)), '([^/]+)') : seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
            .join('/') +
          '$',
      );
      return { template, re, names, literal: template.split('/').filter((s) => s && !s.startsWith('{')).length };
    })
    .sort((a, b) => b.literal - a.literal);
  const m = method.toLowerCase();
  for (const r of routes) {
    const hit = r.re.exec(urlPath);
    if (!hit) continue;
    const op = ((c.doc.paths as Schema)[r.template] as Schema)[m] as Schema | undefined;
    if (!op) continue;
    const params = Object.fromEntries(r.names.map((n, i) => [n, decodeURIComponent(hit[i + 1]!)]));
    return { template: r.template, method: m, params, pointer: `/paths/${esc(r.template)}/${m}`, operationId: String(op.operationId) };
  }
  return null;
}

/** Problems of a request body against its operation (none when it has no JSON body schema). */
export function checkRequest(op: Operation, body: unknown): string[] {
  const c = restContract();
  const rb = c.at(op.pointer).requestBody as Schema | undefined;
  const content = (rb?.content as Schema | undefined)?.['application/json'];
  if (!content) return body === undefined ? [] : ['the operation takes no JSON body'];
  if (body === undefined) return (rb as Schema).required ? ['a body is required'] : [];
  return c.check(`${op.pointer}/requestBody/content/application~1json/schema`, body);
}

/** Problems of a response the stand-in is about to send. */
export function checkResponse(op: Operation, status: number, body: unknown): string[] {
  const c = restContract();
  const responses = c.at(op.pointer).responses as Schema;
  if (!responses[String(status)]) return [`status ${status} is not a documented response of ${op.operationId}`];
  const r = c.at(`${op.pointer}/responses/${status}`);
  const resolved = typeof r.$ref === 'string' ? (r.$ref as string).slice(1) : `${op.pointer}/responses/${status}`;
  const content = (c.at(resolved).content as Schema | undefined)?.['application/json'];
  if (!content) return body === undefined || body === '' ? [] : [`response ${status} of ${op.operationId} has no JSON body`];
  return c.check(`${resolved}/content/application~1json/schema`, body);
}

/** A schema-valid sample response of an operation (an item, for lists), with `over` merged in (deeply). */
export function sampleResponse(op: Operation, status: number, over: Record<string, unknown>): Record<string, unknown> {
  const c = restContract();
  const r = c.at(`${op.pointer}/responses/${status}`);
  const resolved = typeof r.$ref === 'string' ? (r.$ref as string).slice(1) : `${op.pointer}/responses/${status}`;
  const schema = `${resolved}/content/application~1json/schema`;
  // For list operations this is one item of the array.
  const pointer = c.at(schema).type === 'array' ? `${schema}/items` : schema;
  return merge(c.sample(pointer) as Record<string, unknown>, over);
}

export function merge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] = v && typeof v === 'object' && !Array.isArray(v) && b && typeof b === 'object' && !Array.isArray(b) ? merge(b as Record<string, unknown>, v as Record<string, unknown>) : v;
  }
  return out;
}

/** A webhook payload of `name` (`push`, `pull-request-opened`, …) valid against GitHub's schema. */
export function webhookPayload(name: string, over: Record<string, unknown>): { payload: Record<string, unknown>; problems: string[] } {
  const c = webhookContract();
  const pointer = `/webhooks/${esc(name)}/post/requestBody/content/application~1json/schema`;
  const payload = merge(c.sample(pointer) as Record<string, unknown>, over);
  return { payload, problems: c.check(pointer, payload) };
}
