// Where modules come from when they are not in the scanned addons folders: the Odoo image's own
// modules (core-modules.txt), `ops/addons-catalogue.yaml` (module → repository) and the
// `oca_dependencies.txt` files of the repositories (repositories they need).
import { readFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv, type ErrorObject } from 'ajv';
import { LineCounter, isMap, isScalar, parseDocument, type Document } from 'yaml';
import { PulserError } from '../errors.ts';

export interface OcaDependency {
  repo: string;
  url?: string;
  branch?: string;
  line: number;
}

const REPO_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** `oca_dependencies.txt`: `repo_name [url [branch]]` per line, `#` comments and blank lines
 *  ignored. Anything else is PULSER_E_CATALOGUE_INVALID with file:line. */
export function parseOcaDependencies(text: string, file: string): OcaDependency[] {
  const out: OcaDependency[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.replace(/(^|\s)#.*$/, '').trim();
    if (!line) return;
    const fields = line.split(/\s+/);
    const at = { file, line: i + 1, col: raw.indexOf(fields[0]!) + 1 };
    if (fields.length > 3) throw new PulserError('PULSER_E_CATALOGUE_INVALID', `expected "repo_name [url [branch]]", found ${fields.length} fields`, { location: at });
    const [repo, url, branch] = fields as [string, string?, string?];
    if (!REPO_NAME.test(repo)) throw new PulserError('PULSER_E_CATALOGUE_INVALID', `${JSON.stringify(repo)} is not a repository name`, { location: at });
    if (url !== undefined && !/^(https?:\/\/|ssh:\/\/|git@|file:\/\/|\/|\.\.?\/)/.test(url)) {
      throw new PulserError('PULSER_E_CATALOGUE_INVALID', `${JSON.stringify(url)} is not a repository URL`, { location: { ...at, col: raw.indexOf(url) + 1 } });
    }
    out.push({ repo, ...(url ? { url } : {}), ...(branch ? { branch } : {}), line: i + 1 });
  });
  return out;
}

export interface Catalogue {
  modules: Map<string, { url: string; branch?: string }>;
  core: string[];
}

const SCHEMA_FILE = fileURLToPath(new URL('../../schema/addons-catalogue.schema.json', import.meta.url));
let validate: ReturnType<Ajv['compile']> | null = null;

/** Parses and validates the text of `ops/addons-catalogue.yaml`; every error carries file:line:col. */
export function parseCatalogue(text: string, file: string): Catalogue {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, uniqueKeys: true });
  const loc = (offset: number) => {
    const p = lc.linePos(offset);
    return { file, line: p.line, col: p.col };
  };
  if (doc.errors.length) throw new PulserError('PULSER_E_CATALOGUE_INVALID', doc.errors[0]!.message.split('\n')[0]!, { location: loc(doc.errors[0]!.pos[0]) });
  const data: unknown = doc.toJS() ?? {};
  validate ??= new Ajv({ allErrors: true, strict: true }).compile(JSON.parse(readFileSync(SCHEMA_FILE, 'utf8')) as object);
  if (!validate(data)) {
    const e = mostUseful(validate.errors ?? []);
    throw new PulserError('PULSER_E_CATALOGUE_INVALID', `${pointer(e)}: ${describe(e)}`, { location: loc(offsetOf(doc, e)) });
  }
  const d = data as { modules?: Record<string, string | { url: string; branch?: string }>; core?: string[] };
  const modules = new Map<string, { url: string; branch?: string }>();
  for (const [name, v] of Object.entries(d.modules ?? {})) modules.set(name, typeof v === 'string' ? { url: v } : v);
  return { modules, core: d.core ?? [] };
}

/** Of the errors ajv reports for one mistake (every branch of a oneOf, a pattern under
 *  propertyNames), the one that tells a person what to change. */
function mostUseful(errors: ErrorObject[]): ErrorObject {
  const named = errors.find((e) => e.keyword === 'propertyNames');
  if (named) return named;
  const real = errors.filter((e) => e.keyword !== 'oneOf');
  const specific = real.filter((e) => e.keyword !== 'type' || !real.some((o) => o !== e && o.instancePath === e.instancePath && o.keyword !== 'type'));
  return specific[0] ?? real[0] ?? errors[0]!;
}

function pointer(e: ErrorObject): string {
  const p = e.instancePath.split('/').slice(1).join('.');
  const extra = e.keyword === 'additionalProperties' ? (e.params as { additionalProperty: string }).additionalProperty : '';
  return [p, extra].filter(Boolean).join('.') || '(top level)';
}

function describe(e: ErrorObject): string {
  if (e.keyword === 'additionalProperties') return 'unknown key';
  if (e.keyword === 'propertyNames') return `${JSON.stringify((e.params as { propertyName: string }).propertyName)}: module names are letters, digits and underscores`;
  return e.message ?? e.keyword;
}

function offsetOf(doc: Document, e: ErrorObject): number {
  const parts = e.instancePath.split('/').slice(1).map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
  if (e.keyword === 'additionalProperties') parts.push((e.params as { additionalProperty: string }).additionalProperty);
  if (e.keyword === 'propertyNames') parts.push((e.params as { propertyName: string }).propertyName);
  let node: unknown = doc.contents;
  let offset = 0;
  for (const key of parts) {
    if (!isMap(node)) break;
    const pair = node.items.find((it) => isScalar(it.key) && String(it.key.value) === key);
    if (!pair) break;
    offset = (isScalar(pair.key) ? pair.key.range?.[0] : undefined) ?? offset;
    node = pair.value;
  }
  if (isScalar(node) || isMap(node)) offset = (e.keyword === 'additionalProperties' || e.keyword === 'propertyNames' ? offset : node.range?.[0]) ?? offset;
  return offset;
}

export const CATALOGUE_FILE = path.join('ops', 'addons-catalogue.yaml');

/** Reads `<root>/ops/addons-catalogue.yaml`; a missing file is an empty catalogue. */
export async function loadCatalogue(root: string): Promise<Catalogue> {
  const file = path.join(root, CATALOGUE_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { modules: new Map(), core: [] };
    throw new PulserError('PULSER_E_CATALOGUE_INVALID', `cannot read ${CATALOGUE_FILE}: ${(err as Error).message}`, { cause: err });
  }
  return parseCatalogue(text, CATALOGUE_FILE);
}

let builtinCore: string[] | null = null;

/** The Odoo Community modules an image provides (src/odoo/core-modules.txt), plus extras. */
export function coreModules(extra: readonly string[] = []): Set<string> {
  builtinCore ??= readFileSync(new URL('./core-modules.txt', import.meta.url), 'utf8')
    .split('\n')
    .map((l) => l.replace(/#.*/, '').trim())
    .filter(Boolean);
  return new Set([...builtinCore, ...extra]);
}
