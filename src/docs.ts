// Renders the reference parts of README.md from their sources of truth: the spec reference from
// schema/*.schema.json descriptions, the error table from the error catalogue.
import { readFile } from 'node:fs/promises';
import { ERRORS } from './errors.ts';
import { schemaDir } from './spec/gen-types.ts';

interface Schema {
  description?: string;
  type?: string | string[];
  enum?: unknown[];
  const?: unknown;
  default?: unknown;
  pattern?: string;
  minimum?: number;
  maximum?: number;
  format?: string;
  $ref?: string;
  properties?: Record<string, Schema>;
  additionalProperties?: Schema | boolean;
  items?: Schema;
  required?: string[];
  oneOf?: Schema[];
  definitions?: Record<string, Schema>;
}

function resolve(s: Schema, root: Schema): Schema {
  if (s.$ref?.startsWith('#/definitions/')) {
    const target = root.definitions?.[s.$ref.slice('#/definitions/'.length)];
    if (target) return { ...resolve(target, root), ...s, $ref: undefined, description: s.description ?? target.description, default: s.default ?? target.default };
  }
  return s;
}

function typeOf(s: Schema): string {
  if (s.enum) return s.enum.map((e) => `\`${String(e)}\``).join(' \\| ');
  if (s.const !== undefined) return `\`${String(s.const)}\``;
  if (s.type === 'array') return `list of ${s.items ? typeOf(s.items) : 'values'}`;
  if (s.type === 'object' && s.additionalProperties && typeof s.additionalProperties === 'object') return `map of ${typeOf(s.additionalProperties)}`;
  const t = Array.isArray(s.type) ? s.type.join(' \\| ') : (s.type ?? 'object');
  const range = s.minimum !== undefined && s.maximum !== undefined ? ` ${s.minimum}–${s.maximum}` : '';
  return `${t}${range}${s.format ? ` (${s.format})` : ''}`;
}

function rows(s: Schema, root: Schema, prefix: string, required: string[], out: string[]): void {
  for (const [key, raw] of Object.entries(s.properties ?? {})) {
    const p = resolve(raw, root);
    const path = prefix ? `${prefix}.${key}` : key;
    const req = required.includes(key) ? 'yes' : '';
    const def = p.default !== undefined ? `\`${JSON.stringify(p.default)}\`` : '';
    const desc = (p.description ?? '').replace(/\|/g, '\\|').replace(/\n/g, ' ');
    out.push(`| \`${path}\` | ${typeOf(p)} | ${req} | ${def} | ${desc} |`);
    if (p.properties) rows(p, root, path, p.required ?? [], out);
  }
}

export async function renderSpecReference(): Promise<string> {
  const env = JSON.parse(await readFile(schemaDir + 'environment.schema.json', 'utf8')) as Schema;
  const host = JSON.parse(await readFile(schemaDir + 'host.schema.json', 'utf8')) as Schema;
  const out = ['### Environment (`environments/<name>.yaml`)', '', env.description ?? '', '', '| Key | Type | Required | Default | Meaning |', '|---|---|---|---|---|'];
  rows(env, env, '', env.required ?? [], out);
  out.push('', '### Hosts (`environments/hosts.yaml`)', '', host.description ?? '', '');
  for (const variant of host.oneOf ?? []) {
    const v = resolve(variant, host);
    out.push(`**${(v as { title?: string }).title ?? 'Host'}** — ${v.description ?? ''}`, '', '| Key | Type | Required | Default | Meaning |', '|---|---|---|---|---|');
    rows(v, host, 'hosts.<name>', v.required ?? [], out);
    out.push('');
  }
  return out.join('\n').trim();
}

export function renderErrorTable(): string {
  const out = ['| Code | Class | Reason | Meaning |', '|---|---|---|---|'];
  for (const [code, e] of Object.entries(ERRORS)) out.push(`| \`${code}\` | ${e.class} | ${e.reason} | ${e.summary.replace(/\|/g, '\\|')} |`);
  return out.join('\n');
}

const SECTIONS = { spec: renderSpecReference, errors: async () => renderErrorTable() } as const;

/** README with every generated section replaced by its fresh rendering. */
export async function renderReadme(current: string): Promise<string> {
  let text = current;
  for (const [name, render] of Object.entries(SECTIONS)) {
    const start = `<!-- ${name}:start -->`;
    const end = `<!-- ${name}:end -->`;
    const i = text.indexOf(start);
    const j = text.indexOf(end);
    if (i < 0 || j < i) throw new Error(`README.md lacks the ${start} … ${end} markers`);
    text = `${text.slice(0, i + start.length)}\n${await render()}\n${text.slice(j)}`;
  }
  return text;
}
