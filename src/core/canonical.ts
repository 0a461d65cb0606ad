// Canonical JSON (sorted keys) and its sha256: the basis of spec hashes, stable across runs.
import { createHash } from 'node:crypto';

/** JSON with sorted keys; keys for which `omit` returns true are left out at every depth. */
export function canonicalJson(value: unknown, omit: (key: string) => boolean = () => false): string {
  return JSON.stringify(sortKeys(value, omit)) ?? 'null';
}

function sortKeys(v: unknown, omit: (key: string) => boolean): unknown {
  if (Array.isArray(v)) return v.map((x) => sortKeys(x, omit));
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) if (!omit(k)) out[k] = sortKeys((v as Record<string, unknown>)[k], omit);
    return out;
  }
  return v;
}

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
