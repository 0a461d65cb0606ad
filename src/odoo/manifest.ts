// The typed view of an Odoo module manifest (`__manifest__.py`), read as a Python literal with
// Odoo's defaults applied; keys pulser does not interpret stay available in `raw`.
import { PulserError } from '../errors.ts';
import { dictGet, parsePythonLiteralWithPositions, toPlain, type Plain, type PyDict, type PyValue, type ParsedLiteral } from './pyliteral.ts';

export { parsePythonLiteral, parsePythonLiteralWithPositions, toPlain, decodePythonSource, dictGet } from './pyliteral.ts';
export type { PyValue, PyDict, Plain, ParsedLiteral } from './pyliteral.ts';

export interface Manifest {
  file: string;
  name: string | null;
  /** as written (Odoo prefixes a short version with its series when it loads it) */
  version: string | null;
  summary: string | null;
  description: string | null;
  author: string | null;
  website: string | null;
  category: string | null;
  /** Odoo's default when absent: LGPL-3 */
  license: string;
  depends: string[];
  data: string[];
  demo: string[];
  installable: boolean;
  application: boolean;
  /** false, true (all of `depends`), or the list of modules that trigger it */
  auto_install: boolean | string[];
  external_dependencies: Record<string, string[]>;
  /** the whole literal, as parsed */
  raw: PyDict;
  /** the literal as JSON-friendly values */
  plain: { [key: string]: Plain };
  warnings: string[];
}

/** Parses the text of a `__manifest__.py`. Throws PULSER_E_MANIFEST_SYNTAX (not a plain literal)
 *  or PULSER_E_MANIFEST_INVALID (not a dict, or a known key of the wrong type), with file:line:col. */
export function parseManifest(text: string, file: string): Manifest {
  const parsed = parsePythonLiteralWithPositions(text, file);
  const root = parsed.value;
  if (root.t !== 'dict') throw invalid(parsed, root, `a manifest must be a dict literal, found a ${root.t}`);
  for (const [k] of root.entries) if (k.t !== 'str') throw invalid(parsed, k, `manifest keys must be strings, found a ${k.t}`);
  const get = (key: string) => dictGet(root, key);

  const optStr = (key: string): string | null => {
    const v = get(key);
    if (v === undefined || v.t === 'none') return null;
    if (v.t === 'str') return v.v;
    // Odoo tolerates `'version': 1.0` and similar; keep what a person would read.
    if (v.t === 'int') return String(v.v);
    if (v.t === 'float') return Number.isInteger(v.v) && Math.abs(v.v) < 1e16 ? `${v.v}.0` : String(v.v);
    throw invalid(parsed, v, `'${key}' must be a string, found a ${v.t}`);
  };
  const strList = (key: string, v: PyValue | undefined = get(key)): string[] => {
    if (v === undefined || v.t === 'none') return [];
    if (v.t !== 'list' && v.t !== 'tuple' && v.t !== 'set') throw invalid(parsed, v, `'${key}' must be a list of strings, found a ${v.t}`);
    return v.items.map((item) => {
      if (item.t !== 'str') throw invalid(parsed, item, `'${key}' must be a list of strings, found a ${item.t} in it`);
      return item.v;
    });
  };
  const bool = (key: string, dflt: boolean): boolean => {
    const v = get(key);
    if (v === undefined) return dflt;
    if (v.t === 'bool') return v.v;
    if (v.t === 'int') return v.v !== 0n;
    throw invalid(parsed, v, `'${key}' must be True or False, found a ${v.t}`);
  };

  const depends = strList('depends');
  for (const d of depends) if (!MODULE_NAME.test(d)) throw invalid(parsed, get('depends')!, `'depends' names an invalid module ${JSON.stringify(d)}`);

  const ai = get('auto_install');
  let auto_install: boolean | string[] = false;
  if (ai !== undefined && ai.t !== 'none') auto_install = ai.t === 'bool' ? ai.v : strList('auto_install', ai);

  const ext = get('external_dependencies');
  const external_dependencies: Record<string, string[]> = {};
  if (ext !== undefined && ext.t !== 'none') {
    if (ext.t !== 'dict') throw invalid(parsed, ext, `'external_dependencies' must be a dict of lists, found a ${ext.t}`);
    for (const [k, v] of ext.entries) {
      if (k.t !== 'str') throw invalid(parsed, k, `'external_dependencies' keys must be strings`);
      Object.defineProperty(external_dependencies, k.v, { value: strList(`external_dependencies.${k.v}`, v), enumerable: true, writable: true, configurable: true });
    }
  }

  return {
    file,
    name: optStr('name'),
    version: optStr('version'),
    summary: optStr('summary'),
    description: optStr('description'),
    author: optStr('author'),
    website: optStr('website'),
    category: optStr('category'),
    license: optStr('license') ?? 'LGPL-3',
    depends,
    data: strList('data'),
    demo: strList('demo'),
    installable: bool('installable', true),
    application: bool('application', false),
    auto_install,
    external_dependencies,
    raw: root,
    plain: toPlain(root) as { [key: string]: Plain },
    warnings: parsed.warnings,
  };
}

/** Odoo module (technical) names: the folder name, a Python identifier in practice. */
export const MODULE_NAME = /^[A-Za-z0-9_]+$/;

/** The file names Odoo recognises as a module manifest, newest first. */
export const MANIFEST_FILES = ['__manifest__.py', '__openerp__.py'] as const;

function invalid(parsed: ParsedLiteral, v: PyValue, message: string): PulserError {
  return new PulserError('PULSER_E_MANIFEST_INVALID', message, { location: parsed.locate(v) });
}
