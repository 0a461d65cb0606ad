// Caught mail on disk, per environment: one raw `.eml` per message and a JSON index, both written
// atomically, with a bounded retention (oldest evicted first). The index is kept in memory too, so
// listing and searching never read the messages.
import { mkdir, readFile, readdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { writeFileAtomic, writeNewFile, isErrno } from '../evidence/durable.ts';
import { PulserError } from '../errors.ts';

export interface MailAttachment {
  filename: string | null;
  contentType: string;
  size: number;
}

export interface MailEntry {
  id: string;
  env: string;
  from: string | null;
  to: string[];
  cc: string[];
  /** envelope recipients that no To or Cc header names */
  bcc: string[];
  subject: string;
  /** the Date header, or the time it was received when there is none */
  date: string;
  receivedAt: string;
  size: number;
  hasHtml: boolean;
  attachments: MailAttachment[];
  messageId: string | null;
}

export interface MailRetention {
  /** messages kept per environment (default 500) */
  maxMessages: number;
  /** bytes of raw messages kept per environment (default 100 MiB) */
  maxBytes: number;
}

export interface MailQuery {
  env?: string;
  /** substring of a recipient (To, Cc or Bcc), case-insensitive */
  to?: string;
  /** substring of the subject, case-insensitive */
  subject?: string;
  /** received at or after */
  since?: Date;
  limit?: number;
}

export const DEFAULT_RETENTION: MailRetention = { maxMessages: 500, maxBytes: 100 * 1024 * 1024 };
/** The environment name pattern of schema/environment.schema.json. */
export const ENV_NAME = /^[a-z0-9][a-z0-9-]{0,39}$/;
const ID = /^[0-9a-z]{10}-[0-9a-f]{8}$/;
const INDEX = 'index.json';

export class MailStore {
  private readonly byEnv = new Map<string, MailEntry[]>();
  private readonly envOf = new Map<string, string>();
  private readonly queues = new Map<string, Promise<unknown>>();
  private lastStamp = 0;

  constructor(
    readonly dir: string,
    readonly retention: MailRetention = DEFAULT_RETENTION,
  ) {}

  /** Loads every environment's index. The .eml files are the truth and the index a synced-late
   *  cache of them: entries whose file is gone are dropped, files the index does not name (a crash
   *  before the index was written) are described again with `recover`. */
  async open(recover: (raw: Buffer) => Promise<Omit<MailEntry, 'id' | 'env' | 'size' | 'receivedAt'>>): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    for (const env of (await readdir(this.dir)).filter((e) => ENV_NAME.test(e)).sort()) {
      let entries: MailEntry[] = [];
      try {
        entries = JSON.parse(await readFile(path.join(this.dir, env, INDEX), 'utf8')) as MailEntry[];
      } catch (err) {
        // A torn or missing index is rebuilt from the messages themselves.
        if (!isErrno(err, 'ENOENT') && !(err instanceof SyntaxError)) throw new PulserError('PULSER_E_MAIL_CATCHER', `mail index of ${env} is unreadable: ${(err as Error).message}`, { cause: err });
      }
      const files = new Set((await readdir(path.join(this.dir, env))).filter((f) => f.endsWith('.eml')).map((f) => f.slice(0, -4)));
      const kept = entries.filter((e) => ID.test(e.id) && files.has(e.id));
      const known = new Set(kept.map((e) => e.id));
      for (const id of [...files].filter((f) => ID.test(f) && !known.has(f))) {
        const raw = await readFile(path.join(this.dir, env, `${id}.eml`));
        kept.push({ id, env, ...(await recover(raw)), size: raw.length, receivedAt: new Date(parseInt(id.slice(0, 10), 36)).toISOString() });
      }
      kept.sort((a, b) => (a.id < b.id ? -1 : 1));
      if (kept.length !== entries.length || known.size !== files.size) await this.writeIndex(env, kept);
      this.byEnv.set(env, kept);
      for (const e of kept) {
        this.envOf.set(e.id, env);
        this.lastStamp = Math.max(this.lastStamp, parseInt(e.id.slice(0, 10), 36));
      }
    }
  }

  /** Stores one message; returns its entry. Evicts the oldest beyond the retention limits. */
  add(env: string, raw: Buffer, describe: (id: string) => Omit<MailEntry, 'id' | 'env' | 'size' | 'receivedAt'>, now = new Date()): Promise<MailEntry> {
    return this.serial(env, async () => {
      const id = this.newId(now);
      const entry: MailEntry = { id, env, ...describe(id), size: raw.length, receivedAt: now.toISOString() };
      const folder = path.join(this.dir, env);
      await mkdir(folder, { recursive: true });
      await writeFileAtomic(path.join(folder, `${id}.eml`), raw);
      const list = [...(this.byEnv.get(env) ?? []), entry];
      const evicted: MailEntry[] = [];
      let bytes = list.reduce((n, e) => n + e.size, 0);
      while (list.length > 1 && (list.length > this.retention.maxMessages || bytes > this.retention.maxBytes)) {
        const old = list.shift()!;
        bytes -= old.size;
        evicted.push(old);
      }
      // The index is written before evicted files are removed: a crash in between leaves files
      // the index no longer names (recovered on open), never an index naming missing files.
      await this.writeIndex(env, list);
      this.byEnv.set(env, list);
      this.envOf.set(id, env);
      for (const old of evicted) {
        this.envOf.delete(old.id);
        await rm(path.join(folder, `${old.id}.eml`), { force: true });
      }
      return entry;
    });
  }

  /** Newest first. */
  list(q: MailQuery = {}): MailEntry[] {
    const envs = q.env !== undefined ? [q.env] : [...this.byEnv.keys()];
    const to = q.to?.toLowerCase();
    const subject = q.subject?.toLowerCase();
    const since = q.since?.getTime();
    const out = envs
      .flatMap((e) => this.byEnv.get(e) ?? [])
      .filter((m) => (to === undefined || [...m.to, ...m.cc, ...m.bcc].some((r) => r.toLowerCase().includes(to))) && (subject === undefined || m.subject.toLowerCase().includes(subject)) && (since === undefined || Date.parse(m.receivedAt) >= since))
      .sort((a, b) => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
    return out.slice(0, q.limit ?? 50);
  }

  get(id: string): MailEntry | null {
    const env = ID.test(id) ? this.envOf.get(id) : undefined;
    return env ? (this.byEnv.get(env)?.find((m) => m.id === id) ?? null) : null;
  }

  /** The raw message, or null when unknown (or evicted meanwhile). */
  async raw(id: string): Promise<Buffer | null> {
    const entry = this.get(id);
    if (!entry) return null;
    try {
      return await readFile(path.join(this.dir, entry.env, `${id}.eml`));
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return null;
      throw err;
    }
  }

  /** Drains writes under way. */
  async flush(): Promise<void> {
    await Promise.allSettled([...this.queues.values()]);
  }

  /** Atomic (rename) but not synced: the synced .eml files are enough to rebuild it. */
  private async writeIndex(env: string, list: readonly MailEntry[]): Promise<void> {
    const file = path.join(this.dir, env, INDEX);
    const temp = `${file}.tmp-${randomBytes(4).toString('hex')}`;
    try {
      await writeNewFile(temp, JSON.stringify(list), { sync: false });
      await rename(temp, file);
    } catch (err) {
      await rm(temp, { force: true });
      throw err;
    }
  }

  /** Time-ordered ids: milliseconds (strictly increasing within this store) and a random tail. */
  private newId(now: Date): string {
    this.lastStamp = Math.max(now.getTime(), this.lastStamp + 1);
    return `${this.lastStamp.toString(36).padStart(10, '0')}-${randomBytes(4).toString('hex')}`;
  }

  private serial<T>(env: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.queues.get(env) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    this.queues.set(
      env,
      next.catch(() => undefined),
    );
    return next;
  }
}
