// The part of an environment's status that outlives a process: whether it is stalled (and on
// which spec, why) and the last error of the daemon's passes. The daemon writes it when it
// changes; a restarted daemon and `pulser status` read it, so every door tells the same story.
import { mkdir, readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { ErrorRecord } from '../errors.ts';
import { canonicalJson } from './canonical.ts';
import { writeFileAtomic } from '../evidence/durable.ts';

export interface PersistedStatus {
  stalled: { specHash: string; error: ErrorRecord } | null;
  lastError: ErrorRecord | null;
}

// Environment names are file names already (environments/<name>.yaml), but never trusted as paths.
const SAFE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export class StatusStore {
  private readonly dir: string;
  private readonly written = new Map<string, string>();

  constructor(stateDir: string) {
    this.dir = path.join(stateDir, 'status');
  }

  /** Every environment's persisted status; unreadable or foreign files are skipped. */
  async load(): Promise<Map<string, PersistedStatus>> {
    const out = new Map<string, PersistedStatus>();
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch {
      return out;
    }
    for (const f of names) {
      const env = f.endsWith('.json') ? f.slice(0, -'.json'.length) : '';
      if (!SAFE.test(env)) continue;
      try {
        const v = JSON.parse(await readFile(path.join(this.dir, f), 'utf8')) as PersistedStatus;
        if (v && typeof v === 'object' && 'stalled' in v && 'lastError' in v) {
          out.set(env, { stalled: v.stalled ?? null, lastError: v.lastError ?? null });
          this.written.set(env, canonicalJson(out.get(env)));
        }
      } catch {
        // a half-written file cannot exist (atomic writes); anything else is not ours to trust
      }
    }
    return out;
  }

  /** Writes the status when it differs from what this process last read or wrote. */
  async save(env: string, s: PersistedStatus): Promise<void> {
    if (!SAFE.test(env)) return;
    const text = canonicalJson(s);
    if (this.written.get(env) === text) return;
    await mkdir(this.dir, { recursive: true });
    await writeFileAtomic(path.join(this.dir, `${env}.json`), text + '\n');
    this.written.set(env, text);
  }
}
