// ops/templates.yaml: the only commands `pulser run` executes. Loading validates the file (schema
// and meaning, every error located); binding checks `name=value` arguments against the typed
// parameters; rendering puts values into argv elements. All pure but the file read.
import { PulserError } from '../errors.ts';
import { loadYamlFile } from '../spec/load.ts';
import { tryParseDuration } from '../core/duration.ts';
import type { RunTemplate, RunTemplateParam, TemplatesFile } from '../spec/types.gen.ts';
import type { DesiredEnv } from '../spec/model.ts';

export const TEMPLATES_FILE = 'ops/templates.yaml';
export const MAX_TIMEOUT_MS = 5 * 60_000;
const MIN_TIMEOUT_MS = 1_000;
const PLACEHOLDER = /\{\{([a-z][a-z0-9_]*)\}\}/g;
/** Values every template may use besides its parameters. */
export const BUILTINS = ['db', 'env'] as const;

export interface Template extends RunTemplate {
  name: string;
  timeoutMs: number;
  maxOutput: number;
  params: Record<string, RunTemplateParam>;
}

/** Loads and checks the templates file; every problem is reported at once. */
export async function loadTemplates(root: string): Promise<Map<string, Template>> {
  let loaded;
  try {
    loaded = await loadYamlFile(root, TEMPLATES_FILE, 'templates');
  } catch (err) {
    throw new PulserError('PULSER_E_TEMPLATES_INVALID', `${TEMPLATES_FILE} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`, { cause: err });
  }
  const errors = [...loaded.errors];
  const out = new Map<string, Template>();
  if (errors.length === 0) {
    const file = loaded.data as TemplatesFile;
    for (const [name, t] of Object.entries(file.templates)) {
      const at = (rel: string) => loaded.locate(`/templates/${name}${rel}`);
      const fail = (rel: string, message: string) => errors.push(new PulserError('PULSER_E_TEMPLATES_INVALID', `templates.${name}${rel.replace(/\//g, '.')}: ${message}`, { location: at(rel) }));
      const timeoutMs = tryParseDuration(t.timeout ?? '30s') ?? 0;
      if (timeoutMs < MIN_TIMEOUT_MS || timeoutMs > MAX_TIMEOUT_MS) fail('/timeout', 'must be between 1s and 5m');
      const argvKind = t.kind === 'exec' || t.kind === 'host';
      if (argvKind && !t.command) fail('', `kind ${t.kind} needs a command`);
      if (!argvKind && t.command) fail('/command', `kind ${t.kind} takes no command`);
      // Values fill arguments, each one word; which program runs is the template's alone.
      if (t.command?.[0] !== undefined && (t.command[0].includes('{{') || t.command[0].startsWith('-'))) fail('/command/0', 'the program must be a fixed name (no {{placeholder}}, not starting with "-")');
      if (t.kind === 'sql' && !t.sql) fail('', 'kind sql needs sql');
      if (t.kind !== 'sql' && (t.sql || t.sqlParams)) fail('/sql', `kind ${t.kind} takes no sql`);
      const params = t.params ?? {};
      for (const [pname, p] of Object.entries(params)) {
        const prel = `/params/${pname}`;
        if (p.pattern !== undefined) {
          try {
            new RegExp(p.pattern, 'u');
          } catch {
            fail(`${prel}/pattern`, 'is not a valid regular expression');
          }
          if (p.type !== 'string') fail(`${prel}/pattern`, 'only string parameters take a pattern');
        }
        if (p.type === 'string' && p.enum === undefined && p.pattern === undefined) fail(prel, 'a string parameter needs an enum or a pattern');
        if (p.minimum !== undefined && p.maximum !== undefined && p.minimum > p.maximum) fail(`${prel}/minimum`, 'is above maximum');
        for (const v of p.enum ?? []) if (typeof v !== (p.type === 'integer' ? 'number' : 'string')) fail(`${prel}/enum`, `value ${JSON.stringify(v)} is not of type ${p.type}`);
        if (p.default !== undefined) {
          const problem = valueProblem(p, String(p.default));
          if (problem) fail(`${prel}/default`, problem);
        }
      }
      const uses = [...(t.command ?? []), ...(t.sqlParams ?? [])];
      for (const word of uses) {
        for (const m of word.matchAll(PLACEHOLDER)) {
          const ref = m[1]!;
          if (!(ref in params) && !(BUILTINS as readonly string[]).includes(ref)) fail(t.command ? '/command' : '/sqlParams', `{{${ref}}} is neither a parameter nor one of ${BUILTINS.join(', ')}`);
        }
      }
      out.set(name, { ...t, name, timeoutMs, maxOutput: t.maxOutput ?? 65_536, params });
    }
  }
  if (errors.length > 0) {
    const first = errors[0]!;
    throw new PulserError('PULSER_E_TEMPLATES_INVALID', errors.map((e) => `${e.toString()} [${e.code}]`).join('\n'), { location: first.location, details: { errors: errors.map((e) => e.toJSON()) } });
  }
  return out;
}

/** Why a value does not fit a parameter, or null when it does. */
export function valueProblem(p: RunTemplateParam, value: string): string | null {
  // Control characters (newline, NUL, escape…) never reach a command, whatever the pattern says.
  if (/[\u0000-\u001f\u007f]/.test(value)) return 'contains a control character (newline, NUL…)';
  if (p.type === 'integer') {
    if (!/^-?\d{1,15}$/.test(value)) return 'must be an integer';
    const n = Number(value);
    if (p.minimum !== undefined && n < p.minimum) return `must be at least ${p.minimum}`;
    if (p.maximum !== undefined && n > p.maximum) return `must be at most ${p.maximum}`;
    if (p.enum && !p.enum.includes(n)) return `must be one of ${p.enum.join(', ')}`;
    return null;
  }
  if (value.length > (p.maxLength ?? 256)) return `is longer than ${p.maxLength ?? 256} characters`;
  if (p.enum && !p.enum.includes(value)) return `must be one of ${p.enum.join(', ')}`;
  if (p.pattern !== undefined && !new RegExp(`^(?:${p.pattern})$`, 'u').test(value)) return `must match ${p.pattern}`;
  return null;
}

/** Checks `name=value` arguments against the template's parameters; defaults fill the rest. */
export function bindParams(t: Template, args: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  const bad = (message: string) => new PulserError('PULSER_E_TEMPLATE_PARAM', `${t.name}: ${message}`);
  for (const arg of args) {
    const eq = arg.indexOf('=');
    if (eq <= 0) throw bad(`argument ${JSON.stringify(arg)} is not name=value`);
    const name = arg.slice(0, eq);
    const value = arg.slice(eq + 1);
    const p = Object.prototype.hasOwnProperty.call(t.params, name) ? t.params[name] : undefined;
    if (!p) {
      const known = Object.keys(t.params);
      throw bad(`unknown parameter ${JSON.stringify(name)} (${known.length ? `parameters: ${known.join(', ')}` : 'it takes none'})`);
    }
    if (Object.prototype.hasOwnProperty.call(out, name)) throw bad(`parameter ${name} is given twice`);
    const problem = valueProblem(p, value);
    if (problem) throw bad(`${name} ${problem}`);
    out[name] = value;
  }
  for (const [name, p] of Object.entries(t.params)) {
    if (Object.prototype.hasOwnProperty.call(out, name)) continue;
    if (p.default === undefined) throw bad(`parameter ${name} is required`);
    out[name] = String(p.default);
  }
  return out;
}

/** Refuses a template that is not allowed on the environment's tier. */
export function checkTier(t: Template, desired: DesiredEnv): void {
  if (!t.tiers.includes(desired.tier)) {
    throw new PulserError('PULSER_E_TEMPLATE_TIER', `${t.name} is not allowed on ${desired.tier} environments (allowed: ${t.tiers.join(', ')})`);
  }
}

/** Values of the built-in placeholders for an environment. */
export function builtinsOf(desired: DesiredEnv): Record<string, string> {
  return { db: desired.spec.database.name, env: desired.name };
}

/** Puts values into each word; a word stays one argument whatever the value holds. */
export function renderWords(words: readonly string[], values: Record<string, string>): string[] {
  return words.map((w) => w.replace(PLACEHOLDER, (_, name: string) => values[name] ?? ''));
}

export function lookupTemplate(templates: Map<string, Template>, name: string): Template {
  const t = templates.get(name);
  if (!t) throw new PulserError('PULSER_E_TEMPLATE_UNKNOWN', `no template ${JSON.stringify(name)} in ${TEMPLATES_FILE} (templates: ${[...templates.keys()].sort().join(', ')})`);
  return t;
}
