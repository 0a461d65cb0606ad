// The last line of defence for secrets: any resolved secret value found in text or in a
// structure about to be stored or printed is replaced by a fixed mask.

export const MASK = '********';
/** Values shorter than this are not searched for: they would mask ordinary words. */
export const MIN_SECRET_LENGTH = 4;

/** Longest first, so a secret that contains another one is masked whole. */
function ordered(secrets: Iterable<string>): string[] {
  return [...secrets].filter((s) => s.length >= MIN_SECRET_LENGTH).sort((a, b) => b.length - a.length);
}

export function redactText(text: string, secrets: Iterable<string>): string {
  let out = text;
  for (const s of ordered(secrets)) {
    if (s.length >= MIN_SECRET_LENGTH && out.includes(s)) out = out.split(s).join(MASK);
  }
  return out;
}

/** Deep copy of a JSON-like value with every secret occurrence masked in strings and keys. */
export function redact<T>(value: T, secrets: Iterable<string>): T {
  const list = ordered(secrets);
  if (list.length === 0) return value;
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') return redactText(v, list);
    if (Array.isArray(v)) return v.map(walk);
    if (v && typeof v === 'object' && !(v instanceof Date)) {
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) out[redactText(k, list)] = walk(x);
      return out;
    }
    return v;
  };
  return walk(value) as T;
}
