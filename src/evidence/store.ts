// Evidence packs on disk: an intent record before the first change, a durable journal while
// applying, the finished pack written atomically, recovery of passes cut short, and retention.
import { mkdir, readdir, readFile, rename, rm, lstat, stat } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';
import { randomInt } from 'node:crypto';
import { pickFields, type PassRecord, type ApplyEntry } from '../core/record.ts';
import type { Logger } from '../core/log.ts';
import { PulserError, type ErrorRecord } from '../errors.ts';
import { redact, redactText } from '../core/redact.ts';
import { appendLineSynced, fsyncDir, isErrno, randomSuffix, writeFileAtomic, writeNewFile } from './durable.ts';
import { ENV_PATTERN, OUTPUT_LIMIT, PACK_FILES, PASS_ID_PATTERN, excerpt, maskList, renderPack, type PackFile, type ResultJson } from './pack.ts';

export interface EvidenceStoreOptions {
  dir: string;
  /** packs kept per environment by retention */
  keep?: number;
  /** current secret values, asked for at every write so rotated secrets are covered */
  secrets: () => Iterable<string>;
  log?: Logger;
}

/** What a restarted pulser needs to report a pass that was cut short. */
const INTENT_FIELDS = [
  'passId', 'env', 'file', 'trigger', 'commit', 'startedAt', 'mode', 'specHash', 'usingLastGood',
  'desiredYaml', 'observed', 'plan', 'driftBefore', 'driftByReconciler', 'errors', 'resumes',
] as const;

export type Intent = { version: 1 } & Pick<PassRecord, (typeof INTENT_FIELDS)[number]>;

const INFLIGHT = '.inflight';
const TMP_PREFIX = '.tmp-';
/** A temporary pack folder older than this belongs to a write that died. */
const STALE_TMP_MS = 60 * 60 * 1000;
const DEFAULT_KEEP = 200;
/** Kept pass folders searched for stale temporary folders after each write. */
const TMP_SWEEP_PER_WRITE = 16;
const DEFAULT_LIST_LIMIT = 50;
const BASE36 = '0123456789abcdefghijklmnopqrstuvwxyz';

export class EvidenceStore {
  readonly dir: string;
  readonly keep: number;
  private readonly secrets: () => Iterable<string>;
  private readonly log?: Logger;
  private sweepCursor = 0;
  /** Pass ids with a pack, per environment, oldest first; read from disk once, then kept up to date. */
  private packsByEnv: Map<string, string[]> | null = null;

  constructor(opts: EvidenceStoreOptions) {
    const keep = opts.keep ?? DEFAULT_KEEP;
    if (!Number.isInteger(keep) || keep < 1) throw new PulserError('PULSER_E_INTERNAL', `evidence retention must keep at least one pass, got ${keep}`);
    this.dir = resolve(opts.dir);
    this.keep = keep;
    this.secrets = opts.secrets;
    this.log = opts.log;
  }

  newPassId(now: Date): string {
    const p = (n: number, w = 2) => String(n).padStart(w, '0');
    const date = `${p(now.getUTCFullYear(), 4)}${p(now.getUTCMonth() + 1)}${p(now.getUTCDate())}`;
    const time = `${p(now.getUTCHours())}${p(now.getUTCMinutes())}${p(now.getUTCSeconds())}`;
    let rand = '';
    for (let i = 0; i < 4; i++) rand += BASE36[randomInt(36)];
    return `${date}-${time}-${rand}`;
  }

  /** Must complete before the first change is applied: it is what makes a crash reportable. */
  async beginApply(record: PassRecord): Promise<void> {
    checkIds(record.passId, record.env);
    const folder = this.inflightDir(record.env);
    const previous = await this.inflightPassId(record.env);
    if (previous !== null && previous !== record.passId) {
      // A crash nobody recovered yet: its journal must not be mixed with this pass's.
      this.log?.warn('recovering an interrupted pass before starting a new one', { env: record.env, passId: previous });
      await this.recoverEnv(record.env);
    }
    await this.mkdirDurable(folder);
    const intent: Intent = { version: 1, ...pickFields(record, INTENT_FIELDS) };
    await writeFileAtomic(join(folder, 'intent.json'), this.maskedJson(intent) + '\n');
  }

  /** Called when a change starts and when it ends; each call is on disk before it returns. */
  async appendApply(env: string, entry: ApplyEntry): Promise<void> {
    checkIds(undefined, env);
    const folder = this.inflightDir(env);
    await this.mkdirDurable(folder);
    const line: ApplyEntry = entry.output === undefined ? entry : { ...entry, output: excerpt(redactText(entry.output, maskList(this.secrets())), OUTPUT_LIMIT) };
    await appendLineSynced(join(folder, 'apply.jsonl'), this.maskedJson(line, false));
  }

  /** Writes the pack of a finished pass and returns its folder. A pass id is never written twice. */
  async write(record: PassRecord): Promise<string> {
    checkIds(record.passId, record.env);
    const passDir = join(this.dir, record.passId);
    const finalDir = join(passDir, record.env);
    if (await exists(finalDir)) throw packExists(finalDir);
    const { files } = renderPack(record, this.secrets(), new Date());

    // A pass that changed nothing and failed at nothing is written atomically but not synced:
    // losing the newest such pack to a power cut loses no fact, and syncing it is most of the
    // cost of a no-op pass.
    const durable = record.apply.length > 0 || !(record.outcome === 'in-sync' || record.outcome === 'planned');
    await this.mkdirDurable(passDir);
    const tmp = join(passDir, `${TMP_PREFIX}${record.env}-${randomSuffix()}`);
    await mkdir(tmp);
    try {
      for (const name of PACK_FILES) await writeNewFile(join(tmp, name), files[name], { sync: durable });
      if (durable) await fsyncDir(tmp);
      // rename() silently replaces an empty folder, so check again right before it.
      if (await exists(finalDir)) throw packExists(finalDir);
      await rename(tmp, finalDir).catch((err: unknown) => {
        throw isErrno(err, 'ENOTEMPTY') || isErrno(err, 'EEXIST') ? packExists(finalDir) : err;
      });
    } catch (err) {
      await rm(tmp, { recursive: true, force: true });
      throw err;
    }
    if (durable) await fsyncDir(passDir);

    if ((await this.inflightPassId(record.env)) === record.passId) await this.clearInflight(record.env);
    if (this.packsByEnv) this.packsByEnv.set(record.env, [...(this.packsByEnv.get(record.env) ?? []), record.passId]);
    await this.prune(Date.now(), TMP_SWEEP_PER_WRITE, record.env).catch((err: unknown) => {
      // The pack is safe; failing the pass because old packs could not be removed would hide it.
      this.log?.warn('evidence retention failed', { error: err instanceof Error ? err.message : String(err) });
    });
    return finalDir;
  }

  /** Turns every journal left by a crash into a pack with outcome `interrupted`. */
  async recoverInterrupted(): Promise<PassRecord[]> {
    const envs = (await listDirs(join(this.dir, INFLIGHT))).filter((e) => ENV_PATTERN.test(e)).sort();
    const out: PassRecord[] = [];
    for (const env of envs) {
      const record = await this.recoverEnv(env);
      if (record) out.push(record);
    }
    return out;
  }

  async latest(env: string): Promise<ResultJson | null> {
    return (await this.list(env, 1))[0] ?? null;
  }

  /** result.json of recent packs, newest first. */
  async list(env?: string, limit = DEFAULT_LIST_LIMIT): Promise<ResultJson[]> {
    if (env !== undefined && !ENV_PATTERN.test(env)) throw refused('environment', env);
    const out: ResultJson[] = [];
    for (const passId of await this.passIds()) {
      if (out.length >= limit) break;
      const envs = env !== undefined ? [env] : (await listDirs(join(this.dir, passId))).filter((e) => ENV_PATTERN.test(e)).sort();
      for (const e of envs) {
        if (out.length >= limit) break;
        const result = await readResult(join(this.dir, passId, e, 'result.json'));
        if (result) out.push(result);
      }
    }
    return out;
  }

  /** One file of one pack, or null if there is no such pack. Names are checked, never joined blindly. */
  async read(passId: string, env: string, file: string): Promise<string | null> {
    if (!PASS_ID_PATTERN.test(passId)) throw refused('pass id', passId);
    if (!ENV_PATTERN.test(env)) throw refused('environment', env);
    if (!(PACK_FILES as readonly string[]).includes(file)) throw refused('file', file);
    const path = join(this.dir, passId, env, file as PackFile);
    if (!path.startsWith(this.dir + sep)) throw refused('file', file);
    try {
      // A symlink planted in the evidence folder must not become a way to read other files.
      if (!(await lstat(path)).isFile()) return null;
      return await readFile(path, 'utf8');
    } catch (err) {
      if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) return null;
      throw err;
    }
  }

  /**
   * Keeps the newest `keep` packs of each environment (of `only`, when given), removes pass folders
   * left empty, and removes temporary folders of writes that died. `sweep` bounds how many pass
   * folders are searched for those (round robin across calls), so a write costs a few folder reads
   * rather than one per kept pass.
   */
  async prune(now: number = Date.now(), sweep = Infinity, only?: string): Promise<void> {
    const byEnv = await this.packIndex();
    for (const [env, ids] of byEnv) {
      if (only !== undefined && env !== only) continue;
      ids.sort();
      const expired = ids.splice(0, Math.max(0, ids.length - this.keep));
      for (const passId of expired) {
        await rm(join(this.dir, passId, env), { recursive: true, force: true });
        await this.removeIfEmpty(passId);
      }
    }
    const ids = await this.passIds();
    const count = Math.min(ids.length, sweep);
    const first = ids.length ? this.sweepCursor % ids.length : 0;
    this.sweepCursor = first + count;
    for (let i = 0; i < count; i++) {
      const passId = ids[(first + i) % ids.length]!;
      const passDir = join(this.dir, passId);
      for (const name of await listDirs(passDir)) {
        if (!name.startsWith(TMP_PREFIX)) continue;
        const info = await stat(join(passDir, name)).catch(() => null);
        if (info && now - info.mtimeMs > STALE_TMP_MS) await rm(join(passDir, name), { recursive: true, force: true });
      }
    }
  }

  private async packIndex(): Promise<Map<string, string[]>> {
    if (this.packsByEnv) return this.packsByEnv;
    const index = new Map<string, string[]>();
    for (const passId of (await this.passIds()).reverse()) {
      for (const env of await listDirs(join(this.dir, passId))) {
        if (!ENV_PATTERN.test(env)) continue;
        const list = index.get(env) ?? [];
        list.push(passId);
        index.set(env, list);
      }
    }
    this.packsByEnv = index;
    return index;
  }

  /** A pass folder goes once no pack and no write in progress is left in it. */
  private async removeIfEmpty(passId: string): Promise<void> {
    const passDir = join(this.dir, passId);
    const left = await readdir(passDir).catch(() => null);
    if (left !== null && left.length === 0) await rm(passDir, { recursive: true, force: true });
  }

  private async recoverEnv(env: string): Promise<PassRecord | null> {
    const folder = this.inflightDir(env);
    const intent = await this.readIntent(env);
    const entries = await readJournal(join(folder, 'apply.jsonl'));
    if (!intent && entries.length === 0) {
      // The intent never reached disk, so no change was started: nothing to report.
      await this.clearInflight(env);
      return null;
    }
    const base = intent ?? this.intentFromJournal(env, entries);
    if (await exists(join(this.dir, base.passId, env))) {
      // The pack was written and only the clean-up was lost: the pass did finish.
      await this.clearInflight(env);
      return null;
    }
    const record = interruptedRecord(base, entries);
    await this.write(record);
    await this.clearInflight(env);
    this.log?.warn('reported a pass that was cut short', { env, passId: record.passId });
    return record;
  }

  /** Last resort when the intent is lost but the journal shows changes were started. */
  private intentFromJournal(env: string, entries: ApplyEntry[]): Intent {
    const first = Date.parse(entries[0]!.startedAt);
    const startedAt = Number.isFinite(first) ? new Date(first) : new Date();
    return {
      version: 1,
      passId: this.newPassId(startedAt),
      env,
      file: 'unknown',
      trigger: 'unknown',
      commit: 'unknown',
      startedAt: startedAt.toISOString(),
      mode: 'apply',
      specHash: null,
      usingLastGood: false,
      desiredYaml: null,
      observed: {},
      plan: { changes: [], findings: [] },
      driftBefore: 0,
      driftByReconciler: {},
      errors: [],
    };
  }

  /** intent.json, or a complete temp copy when the crash came between writing and renaming it. */
  private async readIntent(env: string): Promise<Intent | null> {
    const folder = this.inflightDir(env);
    const names = await readdir(folder).catch(() => [] as string[]);
    const candidates = ['intent.json', ...names.filter((n) => n.startsWith('intent.json.tmp-')).sort()];
    for (const name of candidates) {
      const text = await readFile(join(folder, name), 'utf8').catch(() => null);
      if (text === null) continue;
      const intent = toIntent(parseJson(text), env);
      if (intent) return intent;
    }
    return null;
  }

  private async inflightPassId(env: string): Promise<string | null> {
    return (await this.readIntent(env))?.passId ?? null;
  }

  private async clearInflight(env: string): Promise<void> {
    await rm(this.inflightDir(env), { recursive: true, force: true });
    await fsyncDir(join(this.dir, INFLIGHT)).catch((err: unknown) => {
      if (!isErrno(err, 'ENOENT')) throw err;
    });
  }

  private inflightDir(env: string): string {
    return join(this.dir, INFLIGHT, env);
  }

  /** Pass folders, newest first (the name starts with the UTC time). */
  private async passIds(): Promise<string[]> {
    return (await listDirs(this.dir)).filter((n) => PASS_ID_PATTERN.test(n)).sort().reverse();
  }

  private async mkdirDurable(path: string): Promise<void> {
    const created = await mkdir(path, { recursive: true });
    if (created === undefined) return;
    // Sync every new folder's parent, from the first one created down to the target.
    let dir = resolve(created, '..');
    const rel = path.slice(dir.length + 1).split(sep);
    for (const part of rel) {
      await fsyncDir(dir);
      dir = join(dir, part);
    }
  }

  private maskedJson(value: unknown, pretty = true): string {
    const list = maskList(this.secrets());
    return redactText(JSON.stringify(redact(value, list), null, pretty ? 2 : undefined), list);
  }
}

function interruptedRecord(intent: Intent, entries: ApplyEntry[]): PassRecord {
  const planned = intent.plan.changes.length;
  const completed = entries.filter((e) => e.outcome !== undefined).length;
  const inProgress = entries.length - completed;
  let last = Date.parse(intent.startedAt);
  for (const e of entries) {
    for (const t of [e.startedAt, e.endedAt]) {
      const ms = t === undefined ? NaN : Date.parse(t);
      if (Number.isFinite(ms) && (!Number.isFinite(last) || ms > last)) last = ms;
    }
  }
  const started = Date.parse(intent.startedAt);
  const endedAt = Number.isFinite(last) ? new Date(last).toISOString() : intent.startedAt;
  const error = new PulserError(
    'PULSER_E_PASS_INTERRUPTED',
    `pass ${intent.passId} of ${intent.env} was cut short: ${completed} of ${planned} planned changes had completed` +
      (inProgress ? `, ${inProgress} was in progress` : '') +
      '; the next pass finishes the work',
    { details: { passId: intent.passId, planned, completed, inProgress } },
  ).toJSON();
  return {
    passId: intent.passId,
    env: intent.env,
    file: intent.file,
    trigger: intent.trigger,
    commit: intent.commit,
    startedAt: intent.startedAt,
    endedAt,
    durationMs: Number.isFinite(started) && Number.isFinite(last) ? Math.max(0, last - started) : 0,
    mode: intent.mode,
    outcome: 'interrupted',
    desiredYaml: intent.desiredYaml,
    specHash: intent.specHash,
    usingLastGood: intent.usingLastGood,
    observed: intent.observed,
    plan: intent.plan,
    apply: entries,
    driftBefore: intent.driftBefore,
    driftAfter: null,
    driftByReconciler: intent.driftByReconciler,
    errors: [...intent.errors, error],
    ...(intent.resumes ? { resumes: intent.resumes } : {}),
  };
}

/** Start and end lines merged per change; unreadable lines (a torn last write) are skipped. */
async function readJournal(path: string): Promise<ApplyEntry[]> {
  const text = await readFile(path, 'utf8').catch(() => '');
  const byIndex = new Map<number, ApplyEntry>();
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const v = parseJson(line);
    if (!isObject(v) || typeof v.index !== 'number' || typeof v.subject !== 'string' || typeof v.startedAt !== 'string') continue;
    const entry = v as unknown as ApplyEntry;
    byIndex.set(entry.index, { ...byIndex.get(entry.index), ...entry });
  }
  return [...byIndex.values()].sort((a, b) => a.index - b.index);
}

function toIntent(v: unknown, env: string): Intent | null {
  if (!isObject(v) || typeof v.passId !== 'string' || !PASS_ID_PATTERN.test(v.passId)) return null;
  const str = (x: unknown, fallback: string) => (typeof x === 'string' ? x : fallback);
  const plan = isObject(v.plan) && Array.isArray(v.plan.changes) ? (v.plan as PassRecord['plan']) : { changes: [], findings: [] };
  return {
    version: 1,
    passId: v.passId,
    // The folder decides: an intent is only ever written under its own environment.
    env,
    file: str(v.file, 'unknown'),
    trigger: str(v.trigger, 'unknown'),
    commit: str(v.commit, 'unknown'),
    startedAt: str(v.startedAt, new Date(0).toISOString()),
    mode: v.mode === 'plan' ? 'plan' : 'apply',
    specHash: typeof v.specHash === 'string' ? v.specHash : null,
    usingLastGood: v.usingLastGood === true,
    desiredYaml: typeof v.desiredYaml === 'string' ? v.desiredYaml : null,
    observed: isObject(v.observed) ? v.observed : {},
    plan: { changes: plan.changes, findings: Array.isArray(plan.findings) ? plan.findings : [] },
    driftBefore: typeof v.driftBefore === 'number' ? v.driftBefore : plan.changes.length,
    driftByReconciler: isObject(v.driftByReconciler) ? (v.driftByReconciler as Record<string, number>) : byReconciler(plan.changes),
    errors: Array.isArray(v.errors) ? (v.errors as ErrorRecord[]) : [],
    ...(isObject(v.resumes) ? { resumes: v.resumes as NonNullable<PassRecord['resumes']> } : {}),
  };
}

function byReconciler(changes: PassRecord['plan']['changes']): Record<string, number> {
  const out: Record<string, number> = {};
  for (const c of changes) out[c.reconciler] = (out[c.reconciler] ?? 0) + 1;
  return out;
}

async function readResult(path: string): Promise<ResultJson | null> {
  const text = await readFile(path, 'utf8').catch(() => null);
  if (text === null) return null;
  const v = parseJson(text);
  // A damaged pack must not take `pulser status` down with it.
  if (!isObject(v) || typeof v.passId !== 'string' || typeof v.env !== 'string') return null;
  return v as unknown as ResultJson;
}

function checkIds(passId: string | undefined, env: string): void {
  if (passId !== undefined && !PASS_ID_PATTERN.test(passId)) throw new PulserError('PULSER_E_INTERNAL', `invalid pass id for evidence: ${JSON.stringify(passId)}`);
  if (!ENV_PATTERN.test(env)) throw new PulserError('PULSER_E_INTERNAL', `invalid environment name for evidence: ${JSON.stringify(env)}`);
}

function refused(what: string, value: string): PulserError {
  return new PulserError('PULSER_E_USAGE', `not a valid evidence ${what}: ${JSON.stringify(value)}`, { details: { field: what } });
}

function packExists(path: string): PulserError {
  return new PulserError('PULSER_E_INTERNAL', `evidence pack ${path} already exists: a pass id must be unique`);
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return false;
    throw err;
  }
}

async function listDirs(path: string): Promise<string[]> {
  try {
    return (await readdir(path, { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => d.name);
  } catch (err) {
    if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) return [];
    throw err;
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
