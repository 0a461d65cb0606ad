// Turns environments/*.yaml into DesiredEnvs: YAML kept with source positions, `${kv:}` and
// `${secret:}` substituted, schema-validated with defaults, and checked across environments.
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv, type AnySchemaObject, type ErrorObject, type ValidateFunction } from 'ajv';
import formatsModule from 'ajv-formats';
import { LineCounter, isAlias, isMap, isScalar, isSeq, parseDocument, type Document, type Scalar } from 'yaml';
import { PulserError, type ErrorCode, type SourceLocation } from '../errors.ts';
import { canonicalJson, sha256Hex } from '../core/canonical.ts';
import { tryParseDuration } from '../core/duration.ts';
import { kvKeyProblem, printable, readKv } from './kv.ts';
import { mailPolicyProblem } from '../odoo/mail-policy.ts';
import { repoUrlProblems } from './rules/repo-url.ts';
import type { DesiredEnv, EnvLoad, EnvironmentSpec, SpecSnapshot } from './model.ts';
import { SecretSource, isReservedSecretName, isValidSecretName } from './secrets.ts';
import type { Environment, Host, HostsFile } from './types.gen.ts';

export const ENV_DIR = 'environments';
export const HOSTS_FILE = `${ENV_DIR}/hosts.yaml`;
/** Bounds of `sync.interval` that the schema pattern cannot express. */
export const SYNC_INTERVAL_MIN_MS = 5_000;
export const SYNC_INTERVAL_MAX_MS = 86_400_000;
/** Guards against alias bombs: no real environment file comes near this many nodes. */
const MAX_NODES = 100_000;

const SCHEMA_DIR = fileURLToPath(new URL('../../schema/', import.meta.url));
const ENV_SCHEMA_ID = 'https://pulser.dev/schema/environment.schema.json';
const HOSTS_SCHEMA_ID = 'https://pulser.dev/schema/hosts.schema.json';
const TEMPLATES_SCHEMA_ID = 'https://pulser.dev/schema/templates.schema.json';

// ---------------------------------------------------------------------------------------------
// Small helpers shared by the environment and hosts files

type Segment = string | number;

/** Equal specs hash equal whatever their layout; `x-` keys are free-form and never count. */
export function specHashOf(spec: unknown): string {
  return 'sha256:' + sha256Hex(canonicalJson(spec, (k) => k.startsWith('x-')));
}

/** `environments/staging.yaml:14:7 odoo.workers: must be integer [PULSER_E_SPEC_INVALID]` */
export function formatSpecError(e: PulserError): string {
  return `${e.toString()} [${e.code}]`;
}

function pointerOf(segs: readonly Segment[]): string {
  return segs.map((s) => '/' + String(s).replace(/~/g, '~0').replace(/\//g, '~1')).join('');
}

function dottedOf(segs: readonly Segment[]): string {
  let out = '';
  for (const s of segs) out += typeof s === 'number' ? `[${s}]` : out === '' ? s : `.${s}`;
  return out === '' ? '(root)' : out;
}

/** Splits an ajv instancePath, typing array indices by looking at the data. */
function segmentsOf(pointer: string, data: unknown): Segment[] {
  if (pointer === '') return [];
  const out: Segment[] = [];
  let cur: unknown = data;
  for (const raw of pointer.slice(1).split('/')) {
    const s = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (Array.isArray(cur)) {
      out.push(Number(s));
      cur = cur[Number(s)];
    } else {
      out.push(s);
      cur = cur && typeof cur === 'object' ? (cur as Record<string, unknown>)[s] : undefined;
    }
  }
  return out;
}

const show = printable;

function setOwn(obj: Record<string, unknown>, key: string, value: unknown): void {
  // defineProperty keeps a `__proto__` key an ordinary property instead of a prototype switch.
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

function getAt(data: unknown, segs: readonly Segment[]): unknown {
  let cur = data;
  for (const s of segs) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[String(s)];
  }
  return cur;
}

function setAt(data: unknown, segs: readonly Segment[], value: unknown): void {
  if (segs.length === 0) return;
  const parent = getAt(data, segs.slice(0, -1));
  if (parent === null || typeof parent !== 'object') return;
  const last = segs[segs.length - 1];
  if (Array.isArray(parent)) parent[Number(last)] = value;
  else setOwn(parent as Record<string, unknown>, String(last), value);
}

function levenshtein(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0];
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = prev[j];
      prev[j] = Math.min(prev[j] + 1, prev[j - 1] + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = tmp;
    }
  }
  return prev[b.length];
}

function suggest(word: string, candidates: readonly string[]): string | undefined {
  const w = word.toLowerCase();
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = levenshtein(w, c.toLowerCase());
    if (d < bestD) [best, bestD] = [c, d];
  }
  return best !== undefined && bestD <= Math.max(1, Math.floor(word.length / 3)) ? best : undefined;
}

// ---------------------------------------------------------------------------------------------
// Schemas

interface Validators {
  env: ValidateFunction;
  hosts: ValidateFunction;
  templates: ValidateFunction;
}

let validators: Promise<Validators> | undefined;

function getValidators(): Promise<Validators> {
  validators ??= (async () => {
    // verbose: the unknown-key message needs the schema of the mapping to suggest a spelling.
    const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: true, allowUnionTypes: true, verbose: true, discriminator: true });
    formatsModule.default(ajv, ['ipv4']);
    for (const name of ['host', 'hosts', 'environment', 'templates']) {
      ajv.addSchema(JSON.parse(await readFile(path.join(SCHEMA_DIR, `${name}.schema.json`), 'utf8')) as AnySchemaObject);
    }
    const get = (id: string) => {
      const v = ajv.getSchema(id);
      if (!v) throw new PulserError('PULSER_E_INTERNAL', `schema ${id} is not registered`);
      return v;
    };
    return { env: get(ENV_SCHEMA_ID), hosts: get(HOSTS_SCHEMA_ID), templates: get(TEMPLATES_SCHEMA_ID) };
  })();
  validators.catch(() => {
    validators = undefined;
  });
  return validators;
}

// ---------------------------------------------------------------------------------------------
// YAML with positions

interface NodeEntry {
  node: unknown;
  key?: unknown;
}

interface StringSite {
  segs: Segment[];
  node: Scalar;
  raw: string;
}

/** One parsed file: its text, positions, and the errors found so far. */
class SourceFile {
  readonly lc = new LineCounter();
  readonly index = new Map<string, NodeEntry>();
  readonly errors: PulserError[] = [];
  doc!: Document.Parsed;
  private nodes = 0;

  constructor(
    readonly file: string,
    readonly text: string,
  ) {}

  at(offset: number): SourceLocation {
    const { line, col } = this.lc.linePos(Math.max(0, Math.min(offset, this.text.length)));
    return { file: this.file, line, col };
  }

  startOf(node: unknown): number {
    const r = (node as { range?: [number, number, number] } | null)?.range;
    return r ? r[0] : 0;
  }

  error(code: ErrorCode, where: SourceLocation, message: string, details?: Record<string, unknown>): void {
    this.errors.push(new PulserError(code, message, { location: where, details }));
  }

  /** Parses; false when the file is not usable YAML (errors recorded). */
  parse(): boolean {
    this.doc = parseDocument(this.text, { lineCounter: this.lc, uniqueKeys: true, prettyErrors: true, strict: true });
    // After the first real syntax error the parser's later complaints are mostly its own
    // confusion; duplicate keys are independent of each other and are all worth reporting.
    const all = [...this.doc.errors, ...this.doc.warnings].sort((a, b) => a.pos[0] - b.pos[0]);
    const firstOther = all.find((e) => e.code !== 'DUPLICATE_KEY');
    for (const e of all.filter((x) => x.code === 'DUPLICATE_KEY' || x === firstOther)) {
      const where = e.linePos ? { file: this.file, line: e.linePos[0].line, col: e.linePos[0].col } : this.at(e.pos[0]);
      this.error('PULSER_E_SPEC_YAML', where, this.describeYamlError(e.code, e.message, e.pos), { yamlCode: e.code });
    }
    return this.errors.length === 0;
  }

  private describeYamlError(code: string, message: string, pos: [number, number]): string {
    const first = message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
    switch (code) {
      case 'DUPLICATE_KEY': {
        // The parser points at the key's first character; the key itself runs up to its colon.
        const m = /^("(?:[^"\\\n]|\\.)*"|'(?:[^'\n]|'')*'|[^:#\n]+?)[ \t]*:/.exec(this.text.slice(pos[0], pos[0] + 200));
        const key = m ? m[1].replace(/^(["'])(.*)\1$/, '$2') : '';
        return key ? `duplicate key "${show(key)}"` : 'duplicate key';
      }
      case 'MULTIPLE_DOCS':
        return 'several YAML documents in one file (one environment per file, no second "---")';
      case 'TAB_AS_INDENT':
        return 'tab used for indentation (YAML indents with spaces)';
    }
    const lineStart = this.text.lastIndexOf('\n', pos[0] - 1) + 1;
    const lineEnd = this.text.indexOf('\n', pos[0]);
    const line = this.text.slice(lineStart, lineEnd < 0 ? undefined : lineEnd);
    // Plain `${…}` inside `{ }` or `[ ]` breaks YAML flow syntax; the fix is not obvious.
    const hint = line.includes('${') && /[{[]/.test(line) ? ' (quote "${…}" references inside { } and [ ])' : '';
    return `YAML syntax error: ${first.charAt(0).toLowerCase()}${first.slice(1)}${hint}`;
  }

  /** Builds plain data from the document, recording every node by JSON pointer. */
  toData(sites: StringSite[]): unknown {
    return this.walk(this.doc.contents, [], undefined, sites, []);
  }

  private walk(node: unknown, segs: Segment[], key: unknown, sites: StringSite[], stack: unknown[]): unknown {
    const ptr = pointerOf(segs);
    if (!this.index.has(ptr)) this.index.set(ptr, { node, key });
    if (++this.nodes > MAX_NODES) {
      if (this.nodes === MAX_NODES + 1) this.error('PULSER_E_SPEC_YAML', this.at(this.startOf(node)), `the document expands to more than ${MAX_NODES} nodes (aliases?)`);
      return null;
    }
    if (node === null || node === undefined) return null;
    if (isAlias(node)) {
      const target = node.resolve(this.doc);
      if (!target || stack.includes(target)) {
        this.error('PULSER_E_SPEC_YAML', this.at(this.startOf(node)), `${dottedOf(segs)}: alias *${node.source} ${target ? 'refers to itself' : 'has no anchor'}`);
        return null;
      }
      return this.walk(target, segs, key, sites, [...stack, target]);
    }
    if (isMap(node)) {
      const obj: Record<string, unknown> = {};
      for (const pair of node.items) {
        const k = pair.key;
        if (!isScalar(k)) {
          this.error('PULSER_E_SPEC_YAML', this.at(this.startOf(k ?? pair.value)), `${dottedOf(segs)}: complex mapping keys are not supported`);
          continue;
        }
        const name = String(k.value);
        if (Object.prototype.hasOwnProperty.call(obj, name)) {
          this.error('PULSER_E_SPEC_YAML', this.at(this.startOf(k)), `duplicate key "${show(name)}"`);
          continue;
        }
        setOwn(obj, name, this.walk(pair.value, [...segs, name], k, sites, [...stack, node]));
      }
      return obj;
    }
    if (isSeq(node)) return node.items.map((item, i) => this.walk(item, [...segs, i], undefined, sites, [...stack, node]));
    if (isScalar(node)) {
      const v = node.value;
      if (typeof v === 'string') {
        if (v.includes('$')) sites.push({ segs, node, raw: v });
        return v;
      }
      if (v === null || typeof v === 'number' || typeof v === 'boolean') return v;
      return String(v);
    }
    return null;
  }

  /** The node at a pointer, or the nearest ancestor that exists in the file (defaults have none). */
  locate(pointer: string, which: 'value' | 'key' = 'value'): SourceLocation {
    let p = pointer;
    for (;;) {
      const entry = this.index.get(p);
      if (entry) {
        const node = which === 'key' && p === pointer && entry.key ? entry.key : entry.node;
        if (node) return this.at(this.startOf(node));
      }
      if (p === '') return this.at(0);
      p = p.slice(0, p.lastIndexOf('/'));
    }
  }

  /** Offset of character `index` of a scalar's value, exact for single-line plain and quoted scalars. */
  offsetIn(node: Scalar, index: number): number {
    const range = (node as { range?: [number, number, number] }).range;
    if (!range) return 0;
    const src = this.text.slice(range[0], range[1]);
    const value = String(node.value);
    if (!src.includes('\n')) {
      if (node.type === 'PLAIN' && src === value) return range[0] + index;
      if ((node.type === 'QUOTE_DOUBLE' || node.type === 'QUOTE_SINGLE') && src.slice(1, -1) === value) return range[0] + 1 + index;
    }
    return range[0];
  }
}

// ---------------------------------------------------------------------------------------------
// Schema errors → located PulserErrors

function describeTypes(t: unknown): string {
  const list = Array.isArray(t) ? t.map(String) : String(t).split(',');
  const named = list.map((x) => (x === 'object' ? 'a mapping' : x === 'array' ? 'a list' : x));
  return named.length === 1 ? named[0] : named.slice(0, -1).join(', ') + ' or ' + named[named.length - 1];
}

const CONFIG_RESERVED_HINT = 'set through database, odoo.port and odoo.workers, not odoo.config';

/** What to suggest for an undeclared host name. */
function hostHint(name: string, hosts: Map<string, unknown>): string {
  const known = [...hosts.keys()];
  const guess = suggest(name, known);
  return guess ? `did you mean "${guess}"?` : known.length ? `declared: ${known.join(', ')}` : 'none declared';
}

function mapAjvErrors(src: SourceFile, errors: readonly ErrorObject[], data: unknown, skip: Set<string>): void {
  const seen = new Set<string>();
  for (const e of errors) {
    if (e.keyword === 'propertyNames') continue; // the failing sub-keyword is reported with the key
    if (e.keyword === 'if') continue; // the failing `then` keyword is reported on its own
    if (e.keyword === 'oneOf' || e.keyword === 'anyOf') {
      const deeper = errors.some((o) => o !== e && o.keyword !== e.keyword && (o.instancePath === e.instancePath || o.instancePath.startsWith(e.instancePath + '/')));
      if (deeper) continue;
    }
    if (skip.has(e.instancePath)) continue;
    const segs = segmentsOf(e.instancePath, data);
    const params = e.params as Record<string, unknown>;
    let code: ErrorCode = 'PULSER_E_SPEC_INVALID';
    let where: SourceLocation;
    let text: string;
    if (e.propertyName !== undefined) {
      const keySegs = [...segs, e.propertyName];
      where = src.locate(pointerOf(keySegs), 'key');
      const at = dottedOf(keySegs);
      if (e.keyword === 'not' && e.schemaPath.includes('/config/propertyNames/')) text = `${at}: not allowed in odoo.config (${CONFIG_RESERVED_HINT})`;
      else if (e.keyword === 'pattern' && e.schemaPath.includes('/env/propertyNames/')) text = `${at}: invalid environment variable name (letters, digits and _, not starting with a digit)`;
      else if (e.keyword === 'pattern') text = `${at}: invalid key (must match ${String(params.pattern)})`;
      else text = `${at}: key not allowed`;
    } else if (e.keyword === 'additionalProperties') {
      const name = String(params.additionalProperty);
      const keySegs = [...segs, name];
      code = 'PULSER_E_SPEC_UNKNOWN_KEY';
      where = src.locate(pointerOf(keySegs), 'key');
      const known = Object.keys((e.parentSchema?.properties as Record<string, unknown> | undefined) ?? {});
      const guess = suggest(name, known);
      text = `${dottedOf(keySegs)}: unknown key` + (guess ? ` (did you mean "${guess}"?)` : known.length ? ` (known keys: ${known.join(', ')}; free-form keys start with x-)` : '');
    } else if (e.keyword === 'required') {
      where = src.locate(e.instancePath);
      text = `${dottedOf([...segs, String(params.missingProperty)])}: required key is missing`;
    } else {
      where = src.locate(e.instancePath);
      const at = dottedOf(segs);
      switch (e.keyword) {
        case 'type':
          text = `${at}: must be ${describeTypes(params.type)}`;
          break;
        case 'enum':
          text = `${at}: must be one of ${(params.allowedValues as unknown[]).map((v) => String(v)).join(', ')}`;
          break;
        case 'const':
          text = `${at}: must be ${JSON.stringify(params.allowedValue)}`;
          break;
        case 'pattern':
          text = e.schemaPath.endsWith('/duration/pattern')
            ? `${at}: must be a duration such as 30s, 5m or 1h30m (units ms, s, m, h, d)`
            : `${at}: must match ${String(params.pattern)}`;
          break;
        case 'format':
          text = params.format === 'ipv4' ? `${at}: must be an IPv4 address` : `${at}: must be a valid ${String(params.format)}`;
          break;
        case 'oneOf':
        case 'anyOf':
          text = `${at}: does not match any allowed form`;
          break;
        default:
          text = `${at}: ${e.message ?? 'is invalid'}`;
      }
    }
    const id = `${where.line}:${where.col}:${text}`;
    if (seen.has(id)) continue;
    seen.add(id);
    src.errors.push(new PulserError(code, text, { location: where, details: { keyword: e.keyword, schemaPath: e.schemaPath } }));
  }
}

function sortErrors(errors: PulserError[]): PulserError[] {
  return errors
    .map((e, i) => ({ e, i }))
    .sort((a, b) => {
      const la = a.e.location;
      const lb = b.e.location;
      if (la && lb) return la.line - lb.line || la.col - lb.col || a.i - b.i;
      return la ? 1 : lb ? -1 : a.i - b.i;
    })
    .map((x) => x.e);
}

// ---------------------------------------------------------------------------------------------
// References

export type Piece = { kind: 'text'; text: string } | { kind: 'kv' | 'secret'; arg: string; start: number; raw: string };

export interface RefProblem {
  start: number;
  message: string;
}

/** Splits a string into text and references; `$${` stands for a literal `${`. */
export function parseReferences(s: string): { pieces: Piece[]; problems: RefProblem[] } {
  const pieces: Piece[] = [];
  const problems: RefProblem[] = [];
  let text = '';
  let i = 0;
  const flush = () => {
    if (text) pieces.push({ kind: 'text', text });
    text = '';
  };
  while (i < s.length) {
    if (s.startsWith('$${', i)) {
      text += '${';
      i += 3;
      continue;
    }
    if (!s.startsWith('${', i)) {
      text += s[i++];
      continue;
    }
    const close = s.indexOf('}', i + 2);
    if (close < 0) {
      problems.push({ start: i, message: 'unclosed "${" (write "$${" for a literal "${")' });
      text += s.slice(i);
      break;
    }
    const raw = s.slice(i, close + 1);
    const inner = s.slice(i + 2, close);
    const colon = inner.indexOf(':');
    const kind = colon < 0 ? inner : inner.slice(0, colon);
    const arg = colon < 0 ? '' : inner.slice(colon + 1);
    if (colon < 0) {
      problems.push({ start: i, message: `${show(raw)}: expected \${kv:KEY} or \${secret:NAME} (write "$\${" for a literal "\${")` });
    } else if (kind !== 'kv' && kind !== 'secret') {
      problems.push({ start: i, message: `${show(raw)}: unknown reference kind "${show(kind)}" (only kv: and secret: exist; write "$\${" for a literal "\${")` });
    } else if (arg === '') {
      problems.push({ start: i, message: `${show(raw)}: empty ${kind === 'kv' ? 'kv key' : 'secret name'}` });
    } else {
      flush();
      pieces.push({ kind, arg, start: i, raw });
    }
    i = close + 1;
  }
  flush();
  return { pieces, problems };
}

/** Shares kv reads and secret lookups between the files of one load. */
export class Resolver {
  private readonly kv = new Map<string, Promise<string>>();
  private readonly secret = new Map<string, Promise<string | undefined>>();
  readonly secretValues = new Set<string>();

  constructor(
    readonly root: string,
    readonly secrets: SecretSource,
    /** a pull request's spec: secrets become their `${secret:NAME}` text, never their values */
    readonly untrusted = false,
    /** `pulser validate`: an unset secret is a notice, and the value stays its reference */
    readonly unsetAreNotices = false,
  ) {}
  readonly notices: PulserError[] = [];

  readKv(key: string): Promise<string> {
    let p = this.kv.get(key);
    if (!p) {
      p = readKv(this.root, key);
      p.catch(() => undefined);
      this.kv.set(key, p);
    }
    return p;
  }

  getSecret(name: string): Promise<string | undefined> {
    let p = this.secret.get(name);
    if (!p) {
      p = this.secrets.forSpec(name);
      p.catch(() => undefined);
      this.secret.set(name, p);
    }
    return p;
  }
}

interface ResolvedSite {
  value: string;
  /** Set when the scalar is exactly one kv reference whose value reads as a YAML number or boolean. */
  typed?: number | boolean;
  /** Set when a secret went into the value: what to show instead. */
  template?: string;
  /** Set with `template`: the keyed digest of the real value (which an untrusted load never holds). */
  digest?: string;
  /** a secret of the value is unset (a notice-only load): the value is not what apply would use */
  unset?: boolean;
}

function typedKvValue(v: string): number | boolean | undefined {
  if (/^(true|True|TRUE)$/.test(v)) return true;
  if (/^(false|False|FALSE)$/.test(v)) return false;
  if (/^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$/.test(v)) return Number(v);
  if (/^0o[0-7]+$/.test(v)) return parseInt(v.slice(2), 8);
  if (/^0x[0-9a-fA-F]+$/.test(v)) return parseInt(v.slice(2), 16);
  return undefined;
}

async function resolveSite(src: SourceFile, site: StringSite, res: Resolver, kvRefs: Record<string, string>, used: Set<string>, env: string): Promise<ResolvedSite | null> {
  const { pieces, problems } = parseReferences(site.raw);
  const at = dottedOf(site.segs);
  const fail = (code: ErrorCode, start: number, message: string) => src.error(code, src.at(src.offsetIn(site.node, start)), `${at}: ${message}`);
  for (const p of problems) fail('PULSER_E_REF_SYNTAX', p.start, p.message);
  let ok = problems.length === 0;
  let value = '';
  // The value as it really is: what the digest is taken of. Differs from `value` only in an
  // untrusted load, where `value` keeps each secret's reference text.
  let real = '';
  let secret = false;
  let unset = false;
  for (const piece of pieces) {
    if (piece.kind === 'text') {
      value += piece.text;
      real += piece.text;
      continue;
    }
    const raw = show(piece.raw);
    if (piece.kind === 'kv') {
      const why = kvKeyProblem(piece.arg);
      if (why) {
        fail('PULSER_E_KV_KEY_INVALID', piece.start, `${raw}: invalid kv key: ${why}`);
        ok = false;
        continue;
      }
      try {
        const v = await res.readKv(piece.arg);
        kvRefs[piece.arg] = v;
        value += v;
        real += v;
      } catch (err) {
        const e = err instanceof PulserError ? err : new PulserError('PULSER_E_KV_VALUE_INVALID', String(err));
        const problem = typeof e.details?.problem === 'string' ? e.details.problem : e.message;
        fail(e.code, piece.start, `${raw}: ${problem}`);
        ok = false;
      }
    } else {
      if (!isValidSecretName(piece.arg)) {
        fail('PULSER_E_REF_SYNTAX', piece.start, `${raw}: invalid secret name (letters, digits and _, not starting with a digit, at most 128)`);
        ok = false;
        continue;
      }
      if (isReservedSecretName(piece.arg)) {
        fail('PULSER_E_SECRET_RESERVED', piece.start, `${raw} names one of pulser's own credentials (the PULSER_… namespace), which a spec can never read: use another name`);
        ok = false;
        continue;
      }
      try {
        const v = await res.getSecret(piece.arg);
        secret = true;
        if (res.untrusted) {
          // Planned as its reference; an unset secret is no error in a plan nobody applies.
          value += piece.raw;
          real += v === undefined ? `\0unset:${piece.arg}` : v;
          continue;
        }
        if (v === undefined) {
          const message = `${raw} is not set in ${res.secrets.describe()}`;
          if (res.unsetAreNotices) {
            res.notices.push(new PulserError('PULSER_E_SECRET_MISSING', `${at}: ${message} (apply and the daemon need it)`, { location: src.at(src.offsetIn(site.node, piece.start)) }));
            value += piece.raw;
            real += `\0unset:${piece.arg}`;
            unset = true;
            continue;
          }
          fail('PULSER_E_SECRET_MISSING', piece.start, message);
          ok = false;
          continue;
        }
        res.secretValues.add(v);
        used.add(v);
        value += v;
        real += v;
      } catch (err) {
        const message = err instanceof PulserError ? err.message : String(err);
        fail('PULSER_E_SECRETS_FILE', piece.start, `${raw}: ${message}`);
        ok = false;
      }
    }
  }
  if (!ok) return null;
  const out: ResolvedSite = { value };
  if (secret) {
    out.template = site.raw;
    out.digest = res.secrets.digest(`${env}\0${at}`, real);
  }
  if (unset) out.unset = true;
  else if (pieces.length === 1 && pieces[0].kind === 'kv') out.typed = typedKvValue(value);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Hosts

export interface HostsLoad {
  hosts: Map<string, Host>;
  errors: PulserError[];
}

export async function loadHosts(root: string): Promise<HostsLoad> {
  let text: string;
  try {
    text = await readFile(path.join(root, HOSTS_FILE), 'utf8');
  } catch (err) {
    const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
    const message = missing ? `${HOSTS_FILE} does not exist: declare there the hosts environments run on` : `${HOSTS_FILE} cannot be read`;
    return { hosts: new Map(), errors: [new PulserError('PULSER_E_HOST_UNKNOWN', message, { cause: err })] };
  }
  const src = new SourceFile(HOSTS_FILE, text);
  if (!src.parse()) return { hosts: new Map(), errors: sortErrors(src.errors) };
  const sites: StringSite[] = [];
  const data = src.toData(sites);
  const { hosts: validate } = await getValidators();
  if (!validate(data)) mapAjvErrors(src, validate.errors ?? [], data, new Set());
  // An API token or SSH key of a host is resolved when pulser connects: a name of pulser's own
  // credentials is refused now, where the file and line can be named.
  for (const site of sites) {
    for (const piece of parseReferences(site.raw).pieces) {
      if (piece.kind === 'secret' && isReservedSecretName(piece.arg)) {
        src.error('PULSER_E_SECRET_RESERVED', src.at(src.offsetIn(site.node, piece.start)), `${dottedOf(site.segs)}: ${show(piece.raw)} names one of pulser's own credentials (the PULSER_… namespace), which a spec can never read: use another name`);
      }
    }
  }
  if (src.errors.length > 0) return { hosts: new Map(), errors: sortErrors(src.errors) };
  const file = data as HostsFile;
  for (const h of Object.values(file.hosts)) if (h.kind === 'local') h.addons_dir ??= path.join(root, '.pulser', 'addons');
  return { hosts: new Map(Object.entries(file.hosts)), errors: [] };
}

// ---------------------------------------------------------------------------------------------
// Other files of the GitOps root (ops/templates.yaml)

export interface YamlFileLoad {
  /** the data with schema defaults applied; meaningful only without errors */
  data: unknown;
  errors: PulserError[];
  /** source position of a JSON pointer (nearest existing ancestor) */
  locate(pointer: string): SourceLocation;
}

/** Parses a YAML file of the root and validates it against one of pulser's schemas, errors located like an environment's. */
export async function loadYamlFile(root: string, rel: string, schema: 'templates'): Promise<YamlFileLoad> {
  const text = await readFile(path.join(root, rel), 'utf8');
  const src = new SourceFile(rel, text);
  const locate = (pointer: string) => src.locate(pointer);
  if (!src.parse()) return { data: null, errors: sortErrors(src.errors), locate };
  const data = src.toData([]);
  const validate = (await getValidators())[schema];
  if (!validate(data)) mapAjvErrors(src, validate.errors ?? [], data, new Set());
  return { data, errors: sortErrors(src.errors), locate };
}

// ---------------------------------------------------------------------------------------------
// One environment

export interface HostsContext {
  hosts: Map<string, Host>;
  /** Set when hosts.yaml is missing or invalid: every environment then fails its host check. */
  problem?: string;
}

export interface LoadedEnvFile {
  result: EnvLoad;
  /** Secret values resolved for this file (also when it failed). */
  secretValues: string[];
  /** Source position of a JSON pointer into the spec (nearest existing ancestor). */
  locate(pointer: string): SourceLocation;
}

function ensureSections(data: unknown): void {
  // Sections whose inner defaults the engine relies on: ajv fills defaults only inside objects that exist.
  if (!data || typeof data !== 'object' || Array.isArray(data)) return;
  const root = data as Record<string, unknown>;
  if (root.sync === undefined) root.sync = {};
  const odoo = root.odoo;
  if (odoo && typeof odoo === 'object' && !Array.isArray(odoo)) {
    const o = odoo as Record<string, unknown>;
    for (const k of ['health', 'config', 'env']) if (o[k] === undefined) o[k] = {};
  }
}

/**
 * Loads one environment file. `file` is relative to `root` (`environments/staging.yaml`).
 * Every problem is reported, sorted by position; nothing is thrown for a bad spec.
 */
export async function loadEnvironmentFile(
  root: string,
  file: string,
  hosts: HostsContext | Map<string, Host>,
  secrets: SecretSource = new SecretSource({ root }),
  opts: { resolver?: Resolver } = {},
): Promise<LoadedEnvFile> {
  const rel = file.split(path.sep).join('/');
  const name = path.basename(rel).replace(/\.ya?ml$/, '');
  const hostsCtx: HostsContext = hosts instanceof Map ? { hosts } : hosts;
  const res = opts.resolver ?? new Resolver(root, secrets.forRoot(root));
  const used = new Set<string>();
  const fileSecrets = () => [...used];

  let text: string;
  try {
    text = await readFile(path.join(root, rel), 'utf8');
  } catch (err) {
    const e = new PulserError('PULSER_E_SPEC_YAML', `${rel} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`, { cause: err });
    return { result: { name, file: rel, ok: false, errors: [e] }, secretValues: [], locate: () => ({ file: rel, line: 1, col: 1 }) };
  }
  const src = new SourceFile(rel, text);
  const locate = (pointer: string) => src.locate(pointer);
  const failed = (): LoadedEnvFile => ({ result: { name, file: rel, ok: false, errors: sortErrors(src.errors) }, secretValues: fileSecrets(), locate });
  if (!src.parse()) return failed();

  const sites: StringSite[] = [];
  const base = src.toData(sites);
  if (src.doc.contents === null) {
    src.error('PULSER_E_SPEC_INVALID', src.at(0), '(root): the file is empty (expected name, tier, host, odoo and database)');
    return failed();
  }

  // References first, so that the schema sees the values that will be used.
  const kvRefs: Record<string, string> = {};
  const refFailed = new Set<string>();
  const typedAt = new Map<string, number | boolean>();
  const secretAt = new Map<string, { segs: Segment[]; template: string; digest: string }>();
  const unsetAt = new Set<string>();
  const resolved = await Promise.all(sites.map((s) => resolveSite(src, s, res, kvRefs, used, name)));
  sites.forEach((site, i) => {
    const r = resolved[i];
    const ptr = pointerOf(site.segs);
    if (!r) {
      refFailed.add(ptr);
      return;
    }
    setAt(base, site.segs, r.value);
    if (r.typed !== undefined) typedAt.set(ptr, r.typed);
    if (r.template !== undefined) secretAt.set(ptr, { segs: site.segs, template: r.template, digest: r.digest! });
    if (r.unset) unsetAt.add(ptr);
  });

  ensureSections(base);
  const { env: validate } = await getValidators();
  let data: unknown = structuredClone(base);
  let valid = validate(data);
  if (!valid && typedAt.size > 0) {
    // A kv value replacing a whole scalar becomes a number or boolean only where a string is refused.
    let retyped = false;
    for (const e of validate.errors ?? []) {
      const typed = typedAt.get(e.instancePath);
      if (e.keyword !== 'type' || typed === undefined) continue;
      const want = String((e.params as { type?: unknown }).type).split(',');
      const fits = typeof typed === 'boolean' ? want.includes('boolean') : want.includes('number') || (want.includes('integer') && Number.isInteger(typed));
      if (!fits) continue;
      setAt(base, segmentsOf(e.instancePath, base), typed);
      retyped = true;
    }
    if (retyped) {
      data = structuredClone(base);
      valid = validate(data);
    }
  }
  // An untrusted load holds a secret's reference instead of its value: the schema cannot judge it.
  // The schema cannot judge a value whose secret is unknown here (an untrusted load, an unset secret).
  if (!valid) mapAjvErrors(src, validate.errors ?? [], data, new Set([...refFailed, ...(res.untrusted ? secretAt.keys() : unsetAt)]));

  const obj = data && typeof data === 'object' && !Array.isArray(data) ? (data as Record<string, unknown>) : {};
  if (typeof obj.name === 'string' && obj.name !== name && !refFailed.has('/name')) {
    const shown = secretAt.has('/name') ? '' : ` "${show(obj.name)}"`;
    src.error('PULSER_E_SPEC_NAME_MISMATCH', src.locate('/name'), `name:${shown} does not match the file name ${path.basename(rel)} (expected "${show(name)}")`);
  }
  if (typeof obj.host === 'string' && !refFailed.has('/host')) {
    if (hostsCtx.problem) {
      src.error('PULSER_E_HOST_UNKNOWN', src.locate('/host'), `host: cannot check host "${show(obj.host)}": ${hostsCtx.problem}`);
    } else if (!hostsCtx.hosts.has(obj.host)) {
      src.error('PULSER_E_HOST_UNKNOWN', src.locate('/host'), `host: "${show(obj.host)}" is not declared in ${HOSTS_FILE} (${hostHint(obj.host, hostsCtx.hosts)})`);
    }
  }
  const dest = (obj.backup as Record<string, unknown> | undefined)?.destination as Record<string, unknown> | undefined;
  if (dest && typeof dest.host === 'string' && !refFailed.has('/backup/destination/host')) {
    const at = src.locate('/backup/destination/host');
    const h = hostsCtx.hosts.get(dest.host);
    if (dest.type !== 'sftp') src.error('PULSER_E_SPEC_INVALID', at, 'backup.destination.host: only an sftp destination names a host (a local one is a folder on this machine)');
    else if (hostsCtx.problem) src.error('PULSER_E_HOST_UNKNOWN', at, `backup.destination.host: cannot check host "${show(dest.host)}": ${hostsCtx.problem}`);
    else if (!h) src.error('PULSER_E_HOST_UNKNOWN', at, `backup.destination.host: "${show(dest.host)}" is not declared in ${HOSTS_FILE} (${hostHint(dest.host, hostsCtx.hosts)})`);
    else if (h.kind === 'local') src.error('PULSER_E_SPEC_INVALID', at, `backup.destination.host: "${show(dest.host)}" is the local host: use { type: local, path: … } for a folder on this machine`);
    // A droplet's address is learned only by the passes of environments running on it.
    else if (h.kind === 'digitalocean' && !h.address) src.error('PULSER_E_SPEC_INVALID', at, `backup.destination.host: droplet "${show(dest.host)}" declares no address: give it one in ${HOSTS_FILE} to keep backups there`);
  }
  const sync = obj.sync as Record<string, unknown> | undefined;
  if (sync && typeof sync.interval === 'string') {
    const ms = tryParseDuration(sync.interval);
    if (ms !== null && (ms < SYNC_INTERVAL_MIN_MS || ms > SYNC_INTERVAL_MAX_MS)) {
      src.error('PULSER_E_SPEC_INVALID', src.locate('/sync/interval'), 'sync.interval: must be between 5s and 1d');
    }
  }
  const alerts = obj.alerts as Record<string, unknown> | undefined;
  if (alerts && typeof alerts.probe_interval === 'string') {
    const ms = tryParseDuration(alerts.probe_interval);
    if (ms !== null && (ms < 100 || ms > 3_600_000)) src.error('PULSER_E_SPEC_INVALID', src.locate('/alerts/probe_interval'), 'alerts.probe_interval: must be between 100ms and 1h');
  }
  const mailProblem = mailPolicyProblem(obj.tier, obj.mail);
  if (mailProblem) src.error('PULSER_E_MAIL_POLICY', src.locate('/mail/mode'), mailProblem);
  // A refresh replaces the environment's database: production is never a target.
  if (obj.tier === 'production' && obj.staging !== undefined) {
    src.error('PULSER_E_STAGING_PRODUCTION', src.locate('/staging'), 'staging: a production environment is never refreshed from another environment');
  }
  for (const p of repoUrlProblems(obj)) if (!refFailed.has(p.pointer)) src.error('PULSER_E_REPO_URL', src.locate(p.pointer), p.message);
  if (src.errors.length > 0) return failed();

  const spec = data as EnvironmentSpec;
  const masked = structuredClone(spec);
  const secretPaths: string[] = [];
  const secretDigests: Record<string, string> = {};
  for (const { segs, template, digest } of secretAt.values()) {
    setAt(masked, segs, template);
    secretPaths.push(dottedOf(segs));
    secretDigests[dottedOf(segs)] = digest;
  }
  secretPaths.sort();
  const desired: DesiredEnv = {
    name,
    file: rel,
    tier: spec.tier as Environment['tier'],
    hostName: spec.host,
    host: hostsCtx.hosts.get(spec.host) as Host,
    spec,
    masked,
    secretPaths,
    secretDigests,
    // Secrets count by their keyed digest: the hash tells a changed secret, and is the same for an
    // untrusted load of the same spec, which never holds the values.
    specHash: specHashOf({ spec: masked, secrets: secretDigests }),
    untrusted: res.untrusted,
    kvRefs: Object.fromEntries(Object.entries(kvRefs).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))),
  };
  return { result: { name, file: rel, ok: true, desired }, secretValues: fileSecrets(), locate };
}

// ---------------------------------------------------------------------------------------------
// All environments

/** Two valid environments on one host must not publish the same port nor share a database. */
function checkConflicts(loaded: LoadedEnvFile[]): void {
  const claims = new Map<string, { env: LoadedEnvFile; pointer: string; what: string }[]>();
  for (const env of loaded) {
    if (!env.result.ok) continue;
    const d = env.result.desired;
    const claim = (id: string, pointer: string, what: string) => {
      const list = claims.get(id) ?? [];
      list.push({ env, pointer, what });
      claims.set(id, list);
    };
    // Bind addresses are ignored on purpose: 0.0.0.0 overlaps every other address on the host.
    claim(`port\0${d.hostName}\0${d.spec.odoo.port}`, '/odoo/port', `odoo.port: port ${d.spec.odoo.port} on host ${d.hostName}`);
    const db = d.spec.database;
    claim(`db\0${d.hostName}\0${db.host}\0${db.port}\0${db.name}`, '/database/name', `database.name: database ${db.name} on ${db.host}:${db.port}`);
  }
  const extra = new Map<LoadedEnvFile, PulserError[]>();
  for (const list of claims.values()) {
    if (list.length < 2) continue;
    for (const c of list) {
      const others = list.filter((o) => o !== c).map((o) => o.env.result.file);
      const e = new PulserError('PULSER_E_SPEC_CONFLICT', `${c.what} is also claimed by ${others.join(', ')}`, { location: c.env.locate(c.pointer), details: { with: others } });
      extra.set(c.env, [...(extra.get(c.env) ?? []), e]);
    }
  }
  for (const [env, errors] of extra) {
    const { name, file } = env.result;
    env.result = { name, file, ok: false, errors: sortErrors(errors) };
  }
}

export interface LoadSpecsOptions {
  /** Where `${secret:…}` values come from; defaults to the process environment and `$PULSER_SECRETS_FILE`. */
  secrets?: SecretSource;
  /** Report only these environments (all are still loaded so that conflicts with the others are found). */
  only?: string[];
  /** A spec nobody reviewed yet (a pull request): secrets stay references, see Resolver. */
  untrusted?: boolean;
  /** 'notice': an unset secret does not make the environment invalid (`pulser validate`) */
  unsetSecrets?: 'error' | 'notice';
}

export async function loadSpecs(root: string, opts: LoadSpecsOptions = {}): Promise<SpecSnapshot> {
  const secrets = (opts.secrets ?? new SecretSource({ root })).forRoot(root);
  const resolver = new Resolver(root, secrets, opts.untrusted === true, opts.unsetSecrets === 'notice');
  const hostsLoad = await loadHosts(root);
  const hostsCtx: HostsContext = { hosts: hostsLoad.hosts };
  if (hostsLoad.errors.length > 0) hostsCtx.problem = `${HOSTS_FILE} is missing or invalid`;

  let names: string[] = [];
  try {
    names = (await readdir(path.join(root, ENV_DIR), { withFileTypes: true }))
      .filter((d) => (d.isFile() || d.isSymbolicLink()) && d.name.endsWith('.yaml') && !d.name.startsWith('.') && `${ENV_DIR}/${d.name}` !== HOSTS_FILE)
      .map((d) => d.name)
      .sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }

  const loaded = await Promise.all(names.map((n) => loadEnvironmentFile(root, `${ENV_DIR}/${n}`, hostsCtx, secrets, { resolver })));
  checkConflicts(loaded);

  const envs = new Map<string, EnvLoad>();
  for (const l of loaded) envs.set(l.result.name, l.result);
  if (opts.only) {
    const wanted = new Map<string, EnvLoad>();
    for (const n of opts.only) {
      const found = envs.get(n);
      const file = `${ENV_DIR}/${n}.yaml`;
      wanted.set(n, found ?? { name: n, file, ok: false, errors: [new PulserError('PULSER_E_ENV_UNKNOWN', `environment "${show(n)}" has no file ${file}`)] });
    }
    envs.clear();
    for (const [k, v] of wanted) envs.set(k, v);
  }
  return { root, hosts: hostsLoad.hosts, hostErrors: hostsLoad.errors, envs, secretValues: new Set(resolver.secretValues), notices: [...resolver.notices].sort((a, b) => a.toString().localeCompare(b.toString(), 'en', { numeric: true })) };
}
