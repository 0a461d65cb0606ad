// A reader for Python literal expressions — what `ast.literal_eval` accepts, which is how Odoo
// reads `__manifest__.py` — written so that pulser never runs Python to learn a module's graph.
import { PulserError, type SourceLocation } from '../errors.ts';
import { unicodeCharByName } from './charnames.ts';

export type PyValue =
  | { readonly t: 'none' }
  | { readonly t: 'bool'; readonly v: boolean }
  | { readonly t: 'int'; readonly v: bigint }
  | { readonly t: 'float'; readonly v: number }
  | { readonly t: 'str'; readonly v: string }
  | { readonly t: 'bytes'; readonly v: Uint8Array }
  | { readonly t: 'list' | 'tuple' | 'set'; readonly items: readonly PyValue[] }
  | { readonly t: 'dict'; readonly entries: readonly (readonly [PyValue, PyValue])[] };

export type PyDict = Extract<PyValue, { t: 'dict' }>;

export interface ParsedLiteral {
  value: PyValue;
  /** where a value (or a dict key) of the tree starts in the source */
  locate(v: PyValue): SourceLocation;
  /** notes about constructs Python accepts but Odoo's loader would not (e.g. a leading docstring) */
  warnings: string[];
}

/** JSON-friendly view: dicts with string keys become objects, tuples and sets become arrays,
 *  ints outside the safe range become decimal strings, bytes become latin-1 strings. */
export type Plain = null | boolean | number | string | Plain[] | { [key: string]: Plain };

export function toPlain(v: PyValue): Plain {
  switch (v.t) {
    case 'none':
      return null;
    case 'bool':
    case 'float':
    case 'str':
      return v.v;
    case 'int':
      return v.v >= BigInt(Number.MIN_SAFE_INTEGER) && v.v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v.v) : v.v.toString();
    case 'bytes':
      return String.fromCharCode(...v.v);
    case 'list':
    case 'tuple':
    case 'set':
      return v.items.map(toPlain);
    case 'dict': {
      const out: { [key: string]: Plain } = {};
      for (const [k, val] of v.entries) {
        const key = toPlain(k);
        Object.defineProperty(out, typeof key === 'string' ? key : JSON.stringify(key), { value: toPlain(val), enumerable: true, writable: true, configurable: true });
      }
      return out;
    }
  }
}

type TokKind = 'str' | 'num' | 'name' | 'op' | 'newline' | 'eof';
interface Token {
  kind: TokKind;
  text: string;
  offset: number;
  /** decoded string or bytes for `str` tokens */
  str?: { bytes: boolean; value: string };
}

const MAX_DEPTH = 100;
const SIMPLE_ESCAPES: Record<string, string> = { '\\': '\\', "'": "'", '"': '"', a: '\x07', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v' };

class Source {
  readonly text: string;
  private lineStarts: number[] = [0];

  constructor(
    text: string,
    readonly file: string,
  ) {
    // Python reads source with universal newlines; a UTF-8 byte order mark is not part of it.
    this.text = text.replace(/^\uFEFF/, '').replace(/\r\n?/g, '\n');
    for (let i = 0; i < this.text.length; i++) if (this.text[i] === '\n') this.lineStarts.push(i + 1);
  }

  loc(offset: number): SourceLocation {
    let lo = 0;
    let hi = this.lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.lineStarts[mid]! <= offset) lo = mid;
      else hi = mid - 1;
    }
    return { file: this.file, line: lo + 1, col: offset - this.lineStarts[lo]! + 1 };
  }

  fail(offset: number, message: string): never {
    throw new PulserError('PULSER_E_MANIFEST_SYNTAX', message, { location: this.loc(offset) });
  }
}

const isDigit = (c: string | undefined) => c !== undefined && c >= '0' && c <= '9';
const isNameStart = (c: string | undefined) => c !== undefined && /[\p{L}\p{Nl}_]/u.test(c);
const isNameChar = (c: string | undefined) => c !== undefined && /[\p{L}\p{Nl}\p{Mn}\p{Mc}\p{Nd}\p{Pc}_]/u.test(c);

function tokenize(src: Source): Token[] {
  const s = src.text;
  const out: Token[] = [];
  const brackets: { ch: string; offset: number }[] = [];
  let i = 0;
  while (i < s.length) {
    const c = s[i]!;
    if (c === ' ' || c === '\t' || c === '\f') {
      i++;
    } else if (c === '#') {
      while (i < s.length && s[i] !== '\n') i++;
    } else if (c === '\n') {
      // Inside brackets a newline is only whitespace; outside, it ends a statement.
      if (brackets.length === 0 && out.length > 0 && out[out.length - 1]!.kind !== 'newline') out.push({ kind: 'newline', text: '\n', offset: i });
      i++;
    } else if (c === '\\') {
      if (s[i + 1] !== '\n') src.fail(i, 'unexpected character after line continuation character');
      i += 2;
    } else if (c === "'" || c === '"') {
      i = readString(src, i, '', out);
    } else if (isNameStart(c)) {
      const start = i;
      while (isNameChar(s[i])) i++;
      const word = s.slice(start, i);
      if ((s[i] === "'" || s[i] === '"') && /^(r|u|b|br|rb|f|fr|rf)$/i.test(word)) {
        if (/f/i.test(word)) src.fail(start, 'an f-string is not a literal');
        i = readString(src, i, word.toLowerCase(), out, start);
      } else out.push({ kind: 'name', text: word.normalize('NFKC'), offset: start });
    } else if (isDigit(c) || (c === '.' && isDigit(s[i + 1]))) {
      const start = i;
      i = readNumberEnd(src, i);
      out.push({ kind: 'num', text: s.slice(start, i), offset: start });
    } else if ('([{'.includes(c)) {
      brackets.push({ ch: c, offset: i });
      out.push({ kind: 'op', text: c, offset: i++ });
    } else if (')]}'.includes(c)) {
      const open = brackets.pop();
      const want = open ? { '(': ')', '[': ']', '{': '}' }[open.ch] : undefined;
      if (want !== c) src.fail(i, open ? `closing '${c}' does not match opening '${open.ch}' at line ${src.loc(open.offset).line}` : `unmatched '${c}'`);
      out.push({ kind: 'op', text: c, offset: i++ });
    } else {
      const three = s.slice(i, i + 3);
      const two = s.slice(i, i + 2);
      const op = ['**=', '//=', '>>=', '<<=', '...'].includes(three)
        ? three
        : ['**', '//', '<<', '>>', '<=', '>=', '==', '!=', '->', ':=', '+=', '-=', '*=', '/=', '%=', '&=', '|=', '^=', '@='].includes(two)
          ? two
          : c;
      if (!',:;+-*/%@&|^~<>=.!'.includes(op[0]!)) src.fail(i, `invalid character ${JSON.stringify(c)} (U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')})`);
      out.push({ kind: 'op', text: op, offset: i });
      i += op.length;
    }
  }
  if (brackets.length) {
    const open = brackets[brackets.length - 1]!;
    src.fail(open.offset, `'${open.ch}' was never closed`);
  }
  if (out.length && out[out.length - 1]!.kind !== 'newline') out.push({ kind: 'newline', text: '', offset: s.length });
  out.push({ kind: 'eof', text: '', offset: s.length });
  return out;
}

function readNumberEnd(src: Source, start: number): number {
  const s = src.text;
  const rest = s.slice(start);
  const m =
    /^0[xX](?:_?[0-9a-fA-F])+/.exec(rest) ??
    /^0[oO](?:_?[0-7])+/.exec(rest) ??
    /^0[bB](?:_?[01])+/.exec(rest) ??
    /^(?:(?:\d(?:_?\d)*)?\.\d(?:_?\d)*|\d(?:_?\d)*\.?)(?:[eE][+-]?\d(?:_?\d)*)?[jJ]?/.exec(rest);
  if (!m) src.fail(start, 'invalid number');
  const end = start + m[0].length;
  if (isNameChar(s[end])) {
    let bad = end;
    while (isNameChar(s[bad])) bad++;
    src.fail(start, `invalid number literal ${JSON.stringify(s.slice(start, bad))}`);
  }
  return end;
}

/** Reads one string literal at `i` (the opening quote) and pushes its token; returns the end. */
function readString(src: Source, i: number, prefix: string, out: Token[], tokenStart = i): number {
  const s = src.text;
  const raw = prefix.includes('r');
  const bytes = prefix.includes('b');
  const q = s[i]!;
  const triple = s.startsWith(q.repeat(3), i);
  const delim = triple ? q.repeat(3) : q;
  let j = i + delim.length;
  let value = '';
  for (;;) {
    if (j >= s.length) src.fail(tokenStart, triple ? 'unterminated triple-quoted string literal' : 'unterminated string literal');
    const c = s[j]!;
    if (s.startsWith(delim, j)) {
      j += delim.length;
      break;
    }
    if (c === '\n' && !triple) src.fail(tokenStart, 'unterminated string literal (a newline inside a single-quoted string)');
    if (bytes && c.charCodeAt(0) > 0x7f) src.fail(j, 'bytes can only contain ASCII literal characters');
    if (c !== '\\') {
      value += c;
      j++;
      continue;
    }
    const e = s[j + 1];
    if (e === undefined) src.fail(tokenStart, 'unterminated string literal');
    if (raw) {
      // In a raw string a backslash keeps itself and protects the next character (even a quote).
      value += c + e;
      j += 2;
      continue;
    }
    if (e === '\n') {
      j += 2;
    } else if (e in SIMPLE_ESCAPES) {
      value += SIMPLE_ESCAPES[e];
      j += 2;
    } else if (e >= '0' && e <= '7') {
      const m = /^[0-7]{1,3}/.exec(s.slice(j + 1))![0];
      const code = parseInt(m, 8);
      if (bytes && code > 0xff) src.fail(j, `octal escape \\${m} is out of range for bytes`);
      value += String.fromCharCode(code);
      j += 1 + m.length;
    } else if (e === 'x') {
      const h = s.slice(j + 2, j + 4);
      if (!/^[0-9a-fA-F]{2}$/.test(h)) src.fail(j, 'truncated \\xXX escape');
      value += String.fromCharCode(parseInt(h, 16));
      j += 4;
    } else if (!bytes && (e === 'u' || e === 'U')) {
      const n = e === 'u' ? 4 : 8;
      const h = s.slice(j + 2, j + 2 + n);
      if (!new RegExp(`^[0-9a-fA-F]{${n}}$`).test(h)) src.fail(j, `truncated \\${e}${'X'.repeat(n)} escape`);
      const cp = parseInt(h, 16);
      if (cp > 0x10ffff) src.fail(j, `\\${e}${h} is not a Unicode code point`);
      value += String.fromCodePoint(cp);
      j += 2 + n;
    } else if (!bytes && e === 'N') {
      const m = /^\{([^}\n]*)\}/.exec(s.slice(j + 2));
      if (!m) src.fail(j, 'malformed \\N character escape');
      const ch = unicodeCharByName(m[1]!);
      if (ch === undefined) src.fail(j, `unknown Unicode character name ${JSON.stringify(m[1])}`);
      value += ch;
      j += 4 + m[1]!.length;
    } else {
      // Python keeps an unknown escape as written (with a warning), and so does this reader.
      value += c;
      j++;
    }
  }
  out.push({ kind: 'str', text: s.slice(tokenStart, j), offset: tokenStart, str: { bytes, value } });
  return j;
}

const NAMES: Record<string, PyValue> = { True: { t: 'bool', v: true }, False: { t: 'bool', v: false }, None: { t: 'none' } };

function numberValue(src: Source, tok: Token, negative: boolean): PyValue {
  const text = tok.text.replace(/_/g, '');
  if (/[jJ]$/.test(text)) src.fail(tok.offset, `complex number ${tok.text} is not supported in a manifest`);
  let v: PyValue;
  if (/^0[xXoObB]/.test(text)) v = { t: 'int', v: BigInt(text.replace(/^0[oO]/, '0o').replace(/^0[bB]/, '0b').replace(/^0[xX]/, '0x')) };
  else if (/^\d+$/.test(text)) {
    if (/^0+[1-9]/.test(text)) src.fail(tok.offset, 'leading zeros in a decimal integer are not permitted; use an 0o prefix for octal integers');
    v = { t: 'int', v: BigInt(text) };
  } else v = { t: 'float', v: Number(text) };
  if (!negative) return v;
  return v.t === 'int' ? { t: 'int', v: -v.v } : { t: 'float', v: -(v as { v: number }).v };
}

class Parser {
  private pos = 0;
  private readonly where = new WeakMap<PyValue, number>();

  constructor(
    private readonly src: Source,
    private readonly toks: Token[],
  ) {}

  private peek(ahead = 0): Token {
    return this.toks[Math.min(this.pos + ahead, this.toks.length - 1)]!;
  }

  private next(): Token {
    return this.toks[this.pos++]!;
  }

  private isOp(text: string, ahead = 0): boolean {
    const t = this.peek(ahead);
    return t.kind === 'op' && t.text === text;
  }

  private expectOp(text: string, context: string): void {
    if (!this.isOp(text)) this.unexpected(this.peek(), `expected '${text}' ${context}`);
    this.pos++;
  }

  private unexpected(tok: Token, expected: string): never {
    const what = tok.kind === 'eof' ? 'end of file' : tok.kind === 'newline' ? 'end of line' : JSON.stringify(tok.text);
    this.src.fail(tok.offset, `${expected}, found ${what}`);
  }

  private mark(v: PyValue, offset: number): PyValue {
    this.where.set(v, offset);
    return v;
  }

  locate = (v: PyValue): SourceLocation => this.src.loc(this.where.get(v) ?? 0);

  parseFile(): ParsedLiteral {
    const warnings: string[] = [];
    while (this.peek().kind === 'newline') this.pos++;
    if (this.peek().kind === 'eof') this.src.fail(0, 'the file holds no literal (it is empty or only comments)');
    // A docstring statement followed by the literal: Python would reject this in `literal_eval`,
    // but the intent is unambiguous, so it is read and flagged.
    if (this.peek().kind === 'str' && this.strRunEndsStatement() && this.peek(this.strRunLength() + 1).kind !== 'eof') {
      warnings.push(`${this.position(this.peek())}: a module docstring precedes the manifest literal; Odoo's ast.literal_eval rejects such a file`);
      this.pos += this.strRunLength() + 1;
      while (this.peek().kind === 'newline') this.pos++;
    }
    const value = this.parseTopLevel();
    while (this.peek().kind === 'newline') this.pos++;
    const rest = this.peek();
    if (rest.kind !== 'eof') {
      if (rest.kind === 'op' && rest.text === ';') this.src.fail(rest.offset, 'a manifest is one literal, not several statements');
      this.unexpected(rest, 'expected the end of the file after the literal (a manifest is one literal, not several statements)');
    }
    return { value, locate: this.locate, warnings };
  }

  private position(tok: Token): string {
    const l = this.src.loc(tok.offset);
    return `${l.file}:${l.line}:${l.col}`;
  }

  private strRunLength(): number {
    let n = 0;
    while (this.peek(n).kind === 'str') n++;
    return n;
  }

  private strRunEndsStatement(): boolean {
    return this.peek(this.strRunLength()).kind === 'newline';
  }

  /** `a, b` without brackets is a tuple at the top level, as in Python's eval mode. */
  private parseTopLevel(): PyValue {
    const start = this.peek().offset;
    const first = this.parseValue(0);
    if (!this.isOp(',')) return this.afterValue(first);
    const items = [first];
    while (this.isOp(',')) {
      this.pos++;
      if (this.peek().kind === 'newline' || this.peek().kind === 'eof') break;
      items.push(this.afterValue(this.parseValue(0)));
    }
    return this.mark({ t: 'tuple', items }, start);
  }

  /** Rejects an operator or call that follows a value: a manifest holds no expressions. */
  private afterValue(v: PyValue): PyValue {
    const t = this.peek();
    if (t.kind === 'op' && t.text === '(') this.src.fail(t.offset, 'a call is not a literal');
    if (t.kind === 'op' && (t.text === '[' || t.text === '.')) this.src.fail(t.offset, `${t.text === '[' ? 'subscript' : 'attribute access'} is not a literal`);
    if (t.kind === 'op' && !['(', ')', '[', ']', '{', '}', ',', ':', ';'].includes(t.text)) this.src.fail(t.offset, `operator '${t.text}' is not allowed: a manifest holds literals, not expressions`);
    if (t.kind === 'name' || t.kind === 'num' || t.kind === 'str') this.unexpected(t, 'expected a comma, a closing bracket or the end of the literal');
    return v;
  }

  private parseValue(depth: number): PyValue {
    if (depth > MAX_DEPTH) this.src.fail(this.peek().offset, `literal nested deeper than ${MAX_DEPTH} levels`);
    const tok = this.peek();
    switch (tok.kind) {
      case 'str':
        return this.parseStrings();
      case 'num':
        this.pos++;
        return this.mark(numberValue(this.src, tok, false), tok.offset);
      case 'name': {
        this.pos++;
        const v = NAMES[tok.text];
        if (v) return this.mark({ ...v }, tok.offset);
        if (this.isOp('(')) this.src.fail(tok.offset, `a call (${tok.text}(…)) is not a literal`);
        return this.src.fail(tok.offset, `name ${JSON.stringify(tok.text)} is not a literal (only True, False and None are)`);
      }
      case 'op':
        if (tok.text === '-' || tok.text === '+') {
          this.pos++;
          const n = this.peek();
          if (n.kind !== 'num') this.unexpected(n, `expected a number after unary '${tok.text}'`);
          this.pos++;
          return this.mark(numberValue(this.src, n, tok.text === '-'), tok.offset);
        }
        if (tok.text === '[') return this.parseSequence('[', ']', 'list', depth);
        if (tok.text === '(') return this.parseParen(depth);
        if (tok.text === '{') return this.parseBrace(depth);
        if (tok.text === '*' || tok.text === '**') this.src.fail(tok.offset, 'unpacking is not a literal');
        return this.unexpected(tok, 'expected a value');
      default:
        return this.unexpected(tok, 'expected a value');
    }
  }

  private parseStrings(): PyValue {
    const first = this.peek();
    let bytes: boolean | undefined;
    let value = '';
    while (this.peek().kind === 'str') {
      const t = this.next();
      if (bytes !== undefined && bytes !== t.str!.bytes) this.src.fail(t.offset, 'cannot mix bytes and nonbytes literals');
      bytes = t.str!.bytes;
      value += t.str!.value;
    }
    const v: PyValue = bytes ? { t: 'bytes', v: Uint8Array.from(value, (ch) => ch.charCodeAt(0)) } : { t: 'str', v: value };
    return this.mark(v, first.offset);
  }

  private parseItems(close: string, what: string, item: () => void): void {
    for (;;) {
      if (this.isOp(close)) return;
      item();
      if (this.isOp(',')) {
        this.pos++;
        continue;
      }
      if (!this.isOp(close)) this.unexpected(this.peek(), `expected ',' or '${close}' in ${what}`);
    }
  }

  private parseSequence(open: string, close: string, t: 'list' | 'set', depth: number): PyValue {
    const start = this.next().offset;
    const items: PyValue[] = [];
    this.parseItems(close, t, () => items.push(this.afterValue(this.parseValue(depth + 1))));
    this.expectOp(close, `to close the ${t} opened with '${open}'`);
    return this.mark({ t, items: t === 'set' ? uniqueItems(this.src, items, this.where) : items }, start);
  }

  private parseParen(depth: number): PyValue {
    const start = this.next().offset;
    if (this.isOp(')')) {
      this.pos++;
      return this.mark({ t: 'tuple', items: [] }, start);
    }
    const first = this.afterValue(this.parseValue(depth + 1));
    if (this.isOp(')')) {
      // (x) is x itself, not a tuple.
      this.pos++;
      return first;
    }
    if (!this.isOp(',')) this.unexpected(this.peek(), "expected ',' or ')'");
    this.pos++;
    const items = [first];
    this.parseItems(')', 'tuple', () => items.push(this.afterValue(this.parseValue(depth + 1))));
    this.expectOp(')', 'to close the tuple');
    return this.mark({ t: 'tuple', items }, start);
  }

  private parseBrace(depth: number): PyValue {
    const open = this.peek();
    if (this.isOp('}', 1)) {
      this.pos += 2;
      return this.mark({ t: 'dict', entries: [] }, open.offset);
    }
    // The first element decides: `{k: v, …}` is a dict, `{a, …}` a set.
    const save = this.pos;
    this.pos++;
    if (this.isOp('**')) this.src.fail(this.peek().offset, 'dict unpacking is not a literal');
    this.afterValue(this.parseValue(depth + 1));
    const isDict = this.isOp(':');
    this.pos = save;
    if (!isDict) return this.parseSequence('{', '}', 'set', depth);
    this.pos++;
    const entries: [PyValue, PyValue][] = [];
    const seen = new Map<string, number>();
    this.parseItems('}', 'dict', () => {
      const key = this.afterValue(this.parseValue(depth + 1));
      this.expectOp(':', 'after a dict key');
      const value = this.afterValue(this.parseValue(depth + 1));
      // As in Python, a repeated key keeps its first position and takes the last value.
      const k = hashKey(this.src, key, this.where);
      const at = seen.get(k);
      if (at === undefined) {
        seen.set(k, entries.length);
        entries.push([key, value]);
      } else entries[at] = [entries[at]![0], value];
    });
    this.expectOp('}', 'to close the dict');
    return this.mark({ t: 'dict', entries }, open.offset);
  }
}

/** Python's equality for hashable literals: 1 == 1.0 == True, and tuples compare item by item. */
function hashKey(src: Source, v: PyValue, where: WeakMap<PyValue, number>): string {
  switch (v.t) {
    case 'none':
      return 'N';
    case 'bool':
      return v.v ? 'n:1' : 'n:0';
    case 'int':
      return `n:${v.v}`;
    case 'float':
      return Number.isInteger(v.v) ? `n:${BigInt(v.v)}` : `f:${v.v}`;
    case 'str':
      return `s:${v.v}`;
    case 'bytes':
      return `b:${Array.from(v.v).join(',')}`;
    case 'tuple':
      return `t:${JSON.stringify(v.items.map((i) => hashKey(src, i, where)))}`;
    default:
      return src.fail(where.get(v) ?? 0, `a ${v.t} is unhashable: it cannot be a dict key or a set item`);
  }
}

function uniqueItems(src: Source, items: PyValue[], where: WeakMap<PyValue, number>): PyValue[] {
  const seen = new Set<string>();
  return items.filter((i) => {
    const k = hashKey(src, i, where);
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/** Parses the text of a Python file holding one literal. Throws PULSER_E_MANIFEST_SYNTAX with
 *  file:line:col for anything that is not a plain literal. */
export function parsePythonLiteralWithPositions(text: string, file: string): ParsedLiteral {
  const src = new Source(text, file);
  return new Parser(src, tokenize(src)).parseFile();
}

export function parsePythonLiteral(text: string, file = '<literal>'): PyValue {
  return parsePythonLiteralWithPositions(text, file).value;
}

/** Python's semantics for a dict with a repeated key: the last one wins. */
export function dictGet(d: PyDict, key: string): PyValue | undefined {
  let found: PyValue | undefined;
  for (const [k, v] of d.entries) if (k.t === 'str' && k.v === key) found = v;
  return found;
}

/** Decodes a manifest file's bytes, honouring a PEP 263 coding line for Latin-1 files. */
export function decodePythonSource(buf: Uint8Array): string {
  const head = new TextDecoder('latin1').decode(buf.subarray(0, 400)).split('\n').slice(0, 2);
  const m = head.map((l) => /^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)/.exec(l)).find(Boolean);
  const enc = m?.[1]?.toLowerCase().replace(/_/g, '-');
  if (enc && /^(latin-1|iso-8859-1|iso8859-1|l1)$/.test(enc)) return Array.from(buf, (b) => String.fromCharCode(b)).join('');
  if (enc && /^(cp1252|windows-1252)$/.test(enc)) return new TextDecoder('windows-1252').decode(buf);
  return new TextDecoder('utf-8', { fatal: true }).decode(buf);
}
