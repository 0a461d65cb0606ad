// ops/policy.yaml: which kv keys a dispatch may commit straight to the tracked branch and which
// need a pull request. Validated against schema/policy.schema.json; a missing file means "all PR".
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv, type ValidateFunction } from 'ajv';
import { LineCounter, parseDocument } from 'yaml';
import { PulserError } from '../errors.ts';
import { printable } from '../spec/kv.ts';

export const POLICY_FILE = 'ops/policy.yaml';
export type KvRoute = 'direct' | 'pull_request';

export interface Policy {
  kv: { default: KvRoute; direct: string[]; pull_request: string[] };
}

export const DEFAULT_POLICY: Policy = { kv: { default: 'pull_request', direct: [], pull_request: [] } };

let validator: ValidateFunction | null = null;

async function validatePolicy(): Promise<ValidateFunction> {
  if (validator) return validator;
  const file = fileURLToPath(new URL('../../schema/policy.schema.json', import.meta.url));
  const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: true });
  validator = ajv.compile(JSON.parse(await readFile(file, 'utf8')) as object);
  return validator;
}

function matches(pattern: string, key: string): boolean {
  return pattern.endsWith('*') ? key.startsWith(pattern.slice(0, -1)) : pattern === key;
}

/** Where a (validated) kv key goes: straight to the tracked branch, or through a pull request. */
export function routeKv(policy: Policy, key: string): KvRoute {
  if (policy.kv.pull_request.some((p) => matches(p, key))) return 'pull_request';
  if (policy.kv.direct.some((p) => matches(p, key))) return 'direct';
  return policy.kv.default;
}

type Ranged = { range?: [number, number, number] | null };

/** Where the value at `segs` starts, or the key `extra` of the mapping there (an unknown key). */
function offsetOf(doc: ReturnType<typeof parseDocument>, segs: (string | number)[], extra: string | null): number {
  const node = doc.getIn(segs, true) as (Ranged & { items?: { key?: Ranged & { value?: unknown } }[] }) | undefined;
  if (extra !== null) {
    const key = node?.items?.find((i) => i.key?.value === extra)?.key;
    if (key?.range) return key.range[0];
  }
  return node?.range?.[0] ?? 0;
}

/** Parses and validates policy text; every problem is reported at once, with its line. */
export async function parsePolicy(text: string, file = POLICY_FILE): Promise<Policy> {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, uniqueKeys: true, prettyErrors: false });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    const pos = lc.linePos(e.pos[0]);
    throw new PulserError('PULSER_E_POLICY_INVALID', `${file}:${pos.line}:${pos.col} ${e.message.split('\n')[0]}`, { location: { file, line: pos.line, col: pos.col } });
  }
  const data = (doc.toJS() ?? {}) as unknown;
  const validate = await validatePolicy();
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    throw new PulserError('PULSER_E_POLICY_INVALID', `${file}:1:1 (root): must be a mapping`, { location: { file, line: 1, col: 1 } });
  }
  const obj = data as Record<string, unknown>;
  obj.kv ??= {};
  if (validate(obj)) return obj as unknown as Policy;
  const problems = (validate.errors ?? []).map((e) => {
    const segs = e.instancePath.split('/').slice(1).map((s) => (/^\d+$/.test(s) ? Number(s) : s));
    const extra = e.keyword === 'additionalProperties' ? String((e.params as { additionalProperty: string }).additionalProperty) : null;
    const pos = lc.linePos(offsetOf(doc, segs, extra));
    const where = [...segs, ...(extra ? [extra] : [])].join('.') || '(root)';
    const what = extra ? 'unknown key' : (e.message ?? 'is invalid');
    return { line: pos.line, col: pos.col, text: `${file}:${pos.line}:${pos.col} ${printable(where)}: ${what}` };
  });
  const first = problems[0]!;
  throw new PulserError('PULSER_E_POLICY_INVALID', problems.map((p) => p.text).join('; '), {
    location: { file, line: first.line, col: first.col },
    details: { problems: problems.map((p) => p.text) },
  });
}

/** Reads `ops/policy.yaml` of a checkout; the default policy (everything via PR) when it is absent. */
export async function loadPolicy(root: string): Promise<Policy> {
  let text: string;
  try {
    text = await readFile(path.join(root, POLICY_FILE), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return structuredClone(DEFAULT_POLICY);
    throw new PulserError('PULSER_E_POLICY_INVALID', `${POLICY_FILE} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`, { cause: err });
  }
  return parsePolicy(text);
}
