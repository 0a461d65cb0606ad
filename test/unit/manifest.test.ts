// The manifest reader against CPython: the golden values in test/fixtures/manifests/*.expected.json
// are what `ast.literal_eval` returns (test/fixtures/pyliteral-oracle.py), malformed files fail
// with located codes, and random literals printed in varied Python syntax read back unchanged.
import t from 'tap';
import fc from 'fast-check';
import { readFileSync, readdirSync } from 'node:fs';
import { parseManifest, parsePythonLiteral, decodePythonSource, type PyValue } from '../../src/odoo/manifest.ts';
import { PulserError } from '../../src/errors.ts';

const dir = new URL('../fixtures/manifests/', import.meta.url);
const read = (name: string) => decodePythonSource(readFileSync(new URL(name, dir)));

type Tagged = { t: string; v?: unknown; items?: Tagged[]; entries?: [Tagged, Tagged][] };
function tagged(v: PyValue): Tagged {
  switch (v.t) {
    case 'none':
      return { t: 'none' };
    case 'int':
      return { t: 'int', v: v.v.toString() };
    case 'bytes':
      return { t: 'bytes', v: Array.from(v.v) };
    case 'bool':
    case 'float':
    case 'str':
      return { t: v.t, v: v.v };
    case 'set':
      return { t: 'set', items: v.items.map(tagged).sort((a, b) => (JSON.stringify(sortKeys(a)) < JSON.stringify(sortKeys(b)) ? -1 : 1)) };
    case 'list':
    case 'tuple':
      return { t: v.t, items: v.items.map(tagged) };
    case 'dict':
      return { t: 'dict', entries: v.entries.map(([k, x]) => [tagged(k), tagged(x)]) };
  }
}
// Python's json.dumps(sort_keys=True) order, so sets sort the same on both sides.
function sortKeys(x: unknown): unknown {
  if (Array.isArray(x)) return x.map(sortKeys);
  if (x && typeof x === 'object') return Object.fromEntries(Object.keys(x).sort().map((k) => [k, sortKeys((x as Record<string, unknown>)[k])]));
  return x;
}

t.test('golden: every fixture reads exactly as CPython reads it', async (t) => {
  const fixtures = readdirSync(dir).filter((f) => f.endsWith('.expected.json'));
  t.ok(fixtures.length >= 8, 'fixtures present');
  for (const f of fixtures) {
    const py = f.replace('.expected.json', '.py');
    const expected = JSON.parse(readFileSync(new URL(f, dir), 'utf8'));
    t.same(tagged(parsePythonLiteral(read(py), py)), expected, py);
  }
});

t.test('typed view: defaults, lists, auto_install, external dependencies', async (t) => {
  const modern = parseManifest(read('modern.py'), 'modern/__manifest__.py');
  t.equal(modern.name, 'Modern Module');
  t.equal(modern.version, '17.0.1.2.3');
  t.same(modern.depends, ['web', 'mail', 'base_setup']);
  t.same(modern.auto_install, ['web', 'mail']);
  t.same(modern.external_dependencies, { python: ['requests>=2.25', 'openupgradelib'], deb: ['libxml2'] });
  t.equal(modern.application, true);
  t.same(modern.data, ['security/ir.model.access.csv', 'views/menus.xml']);
  t.same(modern.demo, ['demo/demo.xml']);
  t.same((modern.plain.assets as Record<string, unknown>)['web.assets_backend'], [['include', 'web._assets_helpers'], ['remove', 'web/static/src/legacy/**/*'], 'modern_module/static/src/**/*']);
  t.same(modern.warnings, []);

  const legacy = parseManifest(read('legacy_header.py'), 'legacy/__openerp__.py');
  t.equal(legacy.license, 'LGPL-3', "Odoo's default licence");
  t.equal(legacy.installable, false);
  t.equal(legacy.auto_install, false);
  t.same(legacy.depends, ['base', 'product']);
  t.match(legacy.description, /^\nLegacy module\n=+\n {4}\* keeps a bullet list;\n {4}\* and "double quotes" inside\.\n {4}$/);

  const escapes = parseManifest(read('escapes.py'), 'escapes.py');
  t.same(escapes.depends, ['base'], 'a tuple of depends');
  t.equal(escapes.name, 'Café — — 😀');
  t.equal(parseManifest(read('numbers.py'), 'n.py').version, '1.0', 'a float version reads as written');
  t.equal(parseManifest(read('continuation.py'), 'c.py').installable, true, 'installable: 1');
  t.equal(parseManifest(read('latin1.py'), 'l.py').name, 'Latin été', 'latin-1 coding line honoured');

  const minimal = parseManifest('{"name": "m"}', 'm.py');
  t.same([minimal.depends, minimal.data, minimal.installable, minimal.application, minimal.auto_install, minimal.version], [[], [], true, false, false, null]);
  t.same(parseManifest('{"depends": ["a"], "auto_install": True}', 'x.py').auto_install, true);
});

t.test('a leading docstring is read and flagged (Odoo itself would refuse the file)', async (t) => {
  const m = parseManifest(read('docstring.py'), 'docstring.py');
  t.same(m.depends, ['base']);
  t.equal(m.warnings.length, 1);
  t.match(m.warnings[0], /^docstring\.py:1:1: a module docstring precedes/);
  t.same(parsePythonLiteral('"only a string"'), { t: 'str', v: 'only a string' }, 'a lone string is the literal itself');
});

t.test('malformed files fail with a code and file:line:col', async (t) => {
  const cases: Record<string, [string, number, number, RegExp]> = {
    'call.py': ['PULSER_E_MANIFEST_SYNTAX', 1, 26, /a call \(_get_depends\(…\)\) is not a literal/],
    'assignment.py': ['PULSER_E_MANIFEST_SYNTAX', 1, 1, /name "manifest" is not a literal/],
    'two_statements.py': ['PULSER_E_MANIFEST_SYNTAX', 2, 1, /not several statements/],
    'semicolon.py': ['PULSER_E_MANIFEST_SYNTAX', 1, 14, /not several statements/],
    'unbalanced.py': ['PULSER_E_MANIFEST_SYNTAX', 4, 1, /closing '\}' does not match opening '\[' at line 3/],
    'unclosed.py': ['PULSER_E_MANIFEST_SYNTAX', 1, 1, /'\{' was never closed/],
    'expression.py': ['PULSER_E_MANIFEST_SYNTAX', 1, 34, /operator '\+' is not allowed/],
    'name.py': ['PULSER_E_MANIFEST_SYNTAX', 1, 26, /name "DEPENDS" is not a literal/],
    'unterminated.py': ['PULSER_E_MANIFEST_SYNTAX', 1, 26, /unterminated string literal/],
    'unpacking.py': ['PULSER_E_MANIFEST_SYNTAX', 1, 15, /unpacking is not a literal/],
    'fstring.py': ['PULSER_E_MANIFEST_SYNTAX', 1, 10, /an f-string is not a literal/],
    'mixed_bytes.py': ['PULSER_E_MANIFEST_SYNTAX', 1, 19, /cannot mix bytes and nonbytes/],
    'unhashable.py': ['PULSER_E_MANIFEST_SYNTAX', 1, 15, /a list is unhashable/],
    'empty.py': ['PULSER_E_MANIFEST_SYNTAX', 1, 1, /holds no literal/],
    'leading_zero.py': ['PULSER_E_MANIFEST_SYNTAX', 1, 26, /leading zeros/],
    'bad_number.py': ['PULSER_E_MANIFEST_SYNTAX', 1, 20, /invalid number literal/],
    'list.py': ['PULSER_E_MANIFEST_INVALID', 1, 1, /must be a dict literal, found a list/],
    'depends_string.py': ['PULSER_E_MANIFEST_INVALID', 1, 26, /'depends' must be a list of strings, found a str/],
    'depends_number.py': ['PULSER_E_MANIFEST_INVALID', 1, 35, /found a int in it/],
    'installable_string.py': ['PULSER_E_MANIFEST_INVALID', 1, 30, /'installable' must be True or False/],
  };
  const files = readdirSync(new URL('bad/', dir));
  t.same(files.sort(), Object.keys(cases).sort(), 'every bad fixture has an expectation');
  for (const [file, [code, line, col, message]] of Object.entries(cases)) {
    const err = t.throws(() => parseManifest(read(`bad/${file}`), `addons/x/${file}`)) as unknown;
    t.ok(err instanceof PulserError, `${file} throws a PulserError`);
    const e = err as PulserError;
    t.equal(e.code, code, `${file} code`);
    t.same(e.location, { file: `addons/x/${file}`, line, col }, `${file} location`);
    t.match(e.message, message, `${file} message`);
    t.match(e.toString(), new RegExp(`^addons/x/${file.replace('.', '\\.')}:${line}:${col} `));
  }
});

t.test('edge cases of the grammar', async (t) => {
  const p = (s: string) => tagged(parsePythonLiteral(s));
  t.same(p('(1)'), { t: 'int', v: '1' }, 'parentheses alone make no tuple');
  t.same(p('1, 2,'), { t: 'tuple', items: [{ t: 'int', v: '1' }, { t: 'int', v: '2' }] }, 'a bare top-level tuple');
  t.same(p("{'a': 1, 'a': 2, 'b': 3}"), { t: 'dict', entries: [[{ t: 'str', v: 'a' }, { t: 'int', v: '2' }], [{ t: 'str', v: 'b' }, { t: 'int', v: '3' }]] }, 'last repeated key wins, first position kept');
  t.same(p('{1, 1.0, True, 2}').items?.length, 2, '1, 1.0 and True are one set item');
  t.same(p("'\\N{LATIN SMALL LETTER E WITH ACUTE}\\N{line feed}'"), { t: 'str', v: 'é\n' }, '\\N{} by name and alias, any case');
  t.throws(() => parsePythonLiteral("'\\N{NO SUCH NAME}'"), /unknown Unicode character name/);
  t.throws(() => parsePythonLiteral("'\\x4'"), /truncated \\xXX escape/);
  t.throws(() => parsePythonLiteral("b'caf\u00e9'"), /bytes can only contain ASCII/);
  t.throws(() => parsePythonLiteral('1j'), /complex number/);
  t.throws(() => parsePythonLiteral('- - 1'), /expected a number after unary/);
  t.throws(() => parsePythonLiteral('{"a": 1} \\ x'), /unexpected character after line continuation/);
  t.throws(() => parsePythonLiteral('"a\nb"'), /unterminated string literal/);
  t.throws(() => parsePythonLiteral('[1 2]'), /expected a comma/);
  t.throws(() => parsePythonLiteral('{"a" 1}'), /expected a comma|expected ':'/);
  t.throws(() => parsePythonLiteral('[1, 2]]'), /unmatched '\]'/);
  t.throws(() => parsePythonLiteral('{"a": 1}.get("a")'), /attribute access is not a literal/);
  t.throws(() => parsePythonLiteral('{"a": ...}'), /expected a value/);
  t.throws(() => parsePythonLiteral('{"a": €}'), /invalid character "€"/);
  const deep = '['.repeat(100) + ']'.repeat(100);
  t.equal(parsePythonLiteral(deep).t, 'list', '100 levels read');
  t.throws(() => parsePythonLiteral('['.repeat(500) + ']'.repeat(500)), /nested deeper than 100 levels/, 'no stack blow-up on hostile nesting');
});

// --- property: print random values in varied Python syntax and read them back -------------------

type Choose = (n: number) => number;

function pyKeyOf(v: PyValue): string {
  switch (v.t) {
    case 'bool':
      return v.v ? 'n:1' : 'n:0';
    case 'int':
      return `n:${v.v}`;
    case 'float':
      return Number.isInteger(v.v) ? `n:${BigInt(v.v)}` : `f:${v.v}`;
    case 'str':
      return `s:${v.v}`;
    case 'none':
      return 'N';
    case 'bytes':
      return `b:${Array.from(v.v)}`;
    case 'tuple':
      return `t:${v.items.map(pyKeyOf).join('|')}`;
    default:
      return `x:${JSON.stringify(v)}`;
  }
}

const strChar = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...'abc xyz_.-/:'.split('')) },
  { weight: 2, arbitrary: fc.constantFrom('\\', "'", '"', '\n', '\t', '\r', '\0', '#', '{', '}', ',') },
  { weight: 2, arbitrary: fc.constantFrom('é', 'ß', '—', '€', '中', '😀', '\u200b', '\x7f') },
);
const pyStr = fc.array(strChar, { maxLength: 14 }).map((cs) => ({ t: 'str' as const, v: cs.join('') }));
const pyBytes = fc.uint8Array({ maxLength: 8 }).map((v) => ({ t: 'bytes' as const, v }));
const pyInt = fc.oneof(fc.bigInt({ min: -(1n << 70n), max: 1n << 70n }), fc.integer({ min: -300, max: 300 }).map(BigInt)).map((v) => ({ t: 'int' as const, v }));
const pyFloat = fc.double({ noNaN: true, noDefaultInfinity: true }).map((v) => ({ t: 'float' as const, v: Object.is(v, -0) ? 0 : v }));
const pyScalar: fc.Arbitrary<PyValue> = fc.oneof(pyStr, pyStr, pyInt, pyFloat, pyBytes, fc.boolean().map((v) => ({ t: 'bool' as const, v })), fc.constant({ t: 'none' as const }));
const hashable: fc.Arbitrary<PyValue> = fc.oneof(pyScalar, fc.array(pyScalar, { maxLength: 3 }).map((items) => ({ t: 'tuple' as const, items })));

const { value: pyValue } = fc.letrec<{ value: PyValue }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    pyScalar,
    fc.array(tie('value'), { maxLength: 4 }).map((items) => ({ t: 'list' as const, items })),
    fc.array(tie('value'), { maxLength: 4 }).map((items) => ({ t: 'tuple' as const, items })),
    fc.uniqueArray(hashable, { minLength: 1, maxLength: 4, selector: pyKeyOf }).map((items) => ({ t: 'set' as const, items })),
    fc.uniqueArray(fc.tuple(hashable, tie('value')), { maxLength: 4, selector: ([k]) => pyKeyOf(k) }).map((entries) => ({ t: 'dict' as const, entries })),
  ),
}));

function gap(choose: Choose, inBrackets: boolean): string {
  if (!inBrackets) return [' ', '', '  \t', ' \\\n '][choose(4)]!;
  return [' ', '', '\n    ', '  # a comment, with ] and \' inside\n  ', ' \\\n', '\n\n\t'][choose(6)]!;
}

function escapeChar(ch: string, quote: string, triple: boolean, choose: Choose): string {
  const cp = ch.codePointAt(0)!;
  if (ch === '\\') return '\\\\';
  if (ch === quote) return '\\' + quote;
  if (ch === '\n') return triple && choose(2) ? '\n' : '\\n';
  if (ch === '\r') return '\\r';
  if (ch === '\t') return ['\\t', '\\x09', '\\011', '\t'][choose(4)]!;
  if (cp < 0x20 || cp === 0x7f) return choose(2) ? `\\x${cp.toString(16).padStart(2, '0')}` : `\\${cp.toString(8)}`;
  if (cp > 0xffff) return choose(2) ? ch : `\\U${cp.toString(16).padStart(8, '0')}`;
  if (cp > 0x7f) return choose(2) ? ch : `\\u${cp.toString(16).padStart(4, '0')}`;
  return ch;
}

function printStrPart(s: string, choose: Choose, bytes: boolean): string {
  const quotes = ["'", '"', "'''", '"""'];
  let q = quotes[choose(4)]!;
  // A triple-quoted part must not end with its own quote character (it would merge with the closing quotes).
  if (q.length === 3 && s.endsWith(q[0]!)) q = q[0]!;
  const triple = q.length === 3;
  const rawOk = !bytes && !/[\\'"\n\r\0\x7f-\uffff]/u.test(s) && !/[\ud800-\udfff]/.test(s);
  const prefixes = bytes ? ['b', 'B', 'rb', 'Br'] : rawOk ? ['', 'u', 'U', 'r', 'R'] : ['', 'u', 'U'];
  let prefix = prefixes[choose(prefixes.length)]!;
  if (bytes && prefix.toLowerCase().includes('r') && !/^[\x20-\x7e]*$/.test(s.replace(/["'\\]/g, ''))) prefix = 'b';
  if (bytes && prefix.toLowerCase().includes('r') && /["'\\]/.test(s)) prefix = 'b';
  const body = prefix.toLowerCase().includes('r') ? s : Array.from(s, (ch) => escapeChar(ch, q[0]!, triple, choose)).join('');
  return `${prefix}${q}${body}${q}`;
}

function printStr(s: string, choose: Choose, inBrackets: boolean, bytes = false): string {
  const chars = Array.from(s);
  const cut = chars.length > 1 && choose(2) ? 1 + choose(chars.length - 1) : 0;
  const parts = cut ? [chars.slice(0, cut).join(''), chars.slice(cut).join('')] : [s];
  return parts.map((p) => printStrPart(p, choose, bytes)).join(gap(choose, inBrackets) || ' ');
}

function printBytes(b: Uint8Array, choose: Choose, inBrackets: boolean): string {
  const asText = Array.from(b, (x) => String.fromCharCode(x)).join('');
  if (/^[\x20-\x7e]*$/.test(asText)) return printStr(asText, choose, inBrackets, true);
  const body = Array.from(b, (x) => (x >= 0x20 && x < 0x7f && x !== 0x5c && x !== 0x27 && !choose(3) ? String.fromCharCode(x) : `\\x${x.toString(16).padStart(2, '0')}`)).join('');
  return `${['b', 'B'][choose(2)]}'${body}'`;
}

function printInt(v: bigint, choose: Choose): string {
  const abs = v < 0n ? -v : v;
  const sign = v < 0n ? '-' : choose(5) ? '' : '+';
  const style = choose(5);
  let digits: string;
  if (style === 0) digits = '0x' + abs.toString(16);
  else if (style === 1) digits = '0o' + abs.toString(8);
  else if (style === 2) digits = '0b' + abs.toString(2);
  else digits = abs.toString();
  if (choose(3) === 0 && digits.length > 3) digits = digits.slice(0, -2) + '_' + digits.slice(-2);
  return sign + digits;
}

function printFloat(v: number): string {
  const s = String(v);
  return /[.e]/.test(s) ? s : s + '.0';
}

function printPy(v: PyValue, choose: Choose, inBrackets: boolean): string {
  const sep = () => `,${gap(choose, true)}`;
  const trailing = () => (choose(2) ? ',' : '') + gap(choose, true);
  switch (v.t) {
    case 'none':
      return 'None';
    case 'bool':
      return v.v ? 'True' : 'False';
    case 'int':
      return printInt(v.v, choose);
    case 'float':
      return printFloat(v.v);
    case 'str':
      return choose(6) ? printStr(v.v, choose, inBrackets) : `(${printStr(v.v, choose, true)})`;
    case 'bytes':
      return printBytes(v.v, choose, inBrackets);
    case 'list':
      return `[${gap(choose, true)}${v.items.map((i) => printPy(i, choose, true)).join(sep())}${v.items.length ? trailing() : ''}]`;
    case 'set':
      return `{${v.items.map((i) => printPy(i, choose, true)).join(sep())}${trailing()}}`;
    case 'tuple':
      if (v.items.length === 0) return '()';
      if (v.items.length === 1) return `(${printPy(v.items[0]!, choose, true)},${gap(choose, true)})`;
      return `(${v.items.map((i) => printPy(i, choose, true)).join(sep())}${trailing()})`;
    case 'dict':
      return `{${gap(choose, true)}${v.entries.map(([k, x]) => `${printPy(k, choose, true)}${gap(choose, true)}:${gap(choose, true)}${printPy(x, choose, true)}`).join(sep())}${v.entries.length ? trailing() : ''}}`;
  }
}

function printFile(v: PyValue, choose: Choose): string {
  const head = ['', '# -*- coding: utf-8 -*-\n', '#!/usr/bin/env python\n# Copyright notice\n\n', '\n\n'][choose(4)]!;
  const tail = ['', '\n', '\n# trailing comment\n', '  \n\n'][choose(4)]!;
  return head + printPy(v, choose, false) + tail;
}

t.test('property: parse(print(v)) = v for random literals printed in varied syntax', async (t) => {
  fc.assert(
    fc.property(pyValue, fc.array(fc.nat(1000), { minLength: 64, maxLength: 64 }), (v, seeds) => {
      let i = 0;
      const choose: Choose = (n) => seeds[i++ % seeds.length]! % n;
      const text = printFile(v, choose);
      const back = parsePythonLiteral(text, 'random.py');
      if (JSON.stringify(tagged(back)) !== JSON.stringify(tagged(v))) throw new Error(`mismatch for\n${text}`);
    }),
    { numRuns: 1500 },
  );
  t.pass('1500 random literals read back');
});
