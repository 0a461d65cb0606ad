// Name → character lookup for Python's `\N{…}` string escape, built on the Unicode data that the
// `unicode-name` package carries (it maps the other way, so the index is built once, on first use).
import { unicodeBaseName, unicodeAliases } from 'unicode-name';

const SKIP: readonly (readonly [number, number])[] = [
  [0x3400, 0x4dc0],
  [0x4e00, 0xa000],
  [0xac00, 0xd7b0],
  [0xd800, 0xf900],
  [0x20000, 0xe0000],
];
/** Past the tags and variation selectors of plane 14 only private use remains. */
const LAST_NAMED = 0xe01ef;

let index: Map<string, string> | null = null;

function buildIndex(): Map<string, string> {
  const map = new Map<string, string>();
  for (let cp = 0; cp <= LAST_NAMED; cp++) {
    // Blocks whose names embed the code point are answered without the index; surrogates,
    // private use and the unassigned planes carry no names.
    const skip = SKIP.find(([from]) => from === cp);
    if (skip) cp = skip[1];
    const ch = String.fromCodePoint(cp);
    const name = unicodeBaseName(ch);
    if (name !== undefined) map.set(name, ch);
    const aliases = unicodeAliases(ch);
    if (aliases) for (const list of Object.values(aliases)) for (const a of list ?? []) if (!map.has(a)) map.set(a, ch);
  }
  return map;
}

/** The character Python's `\N{name}` stands for (names are case-insensitive), or undefined. */
export function unicodeCharByName(name: string): string | undefined {
  const upper = name.toUpperCase();
  // Ranges whose names embed the code point are answered without the index.
  const m = /^(CJK UNIFIED IDEOGRAPH-|TANGUT IDEOGRAPH-|KHITAN SMALL SCRIPT CHARACTER-|NUSHU CHARACTER-)([0-9A-F]{4,6})$/.exec(upper);
  if (m) {
    const cp = parseInt(m[2]!, 16);
    return cp <= 0x10ffff && unicodeBaseName(cp) === upper ? String.fromCodePoint(cp) : undefined;
  }
  if (upper.startsWith('HANGUL SYLLABLE ')) {
    for (let cp = 0xac00; cp <= 0xd7a3; cp++) if (unicodeBaseName(cp) === upper) return String.fromCodePoint(cp);
    return undefined;
  }
  index ??= buildIndex();
  return index.get(upper);
}
