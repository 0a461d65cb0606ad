// Instant recovery: `pulser restore <backup> --to <env>`. The backup is restored into a new
// database and filestore folder while the environment keeps running, then swapped in by renaming
// (the spec keeps naming the same database, so git and the world still agree): connections to
// the live database are refused and terminated, both renames run in one transaction, the
// filestore folders are moved, Odoo restarts. The previous database and filestore stay under a
// dated name until the environment answers its health probe again; if it does not, they are
// swapped back. A journal, written before anything is created and moved on at each phase, lets a
// re-run discard a half-built copy, finish a swap, or finish swapping back.
import { mkdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import type { DesiredEnv } from '../../src/spec/model.ts';
import type { Drivers } from '../../src/drivers/index.ts';
import type { TcpConnect } from '../../src/drivers/postgres.ts';
import { asPulserError, PulserError } from '../../src/errors.ts';
import { databaseName } from '../../src/core/argv.ts';
import { writeFileAtomic } from '../../src/evidence/durable.ts';
import { parseDuration } from '../../src/core/duration.ts';
import { containerName } from '../containers/design.ts';
import { backupId, FILESTORE_ROOT, SQL } from './commands.ts';
import { adminDb, databaseExists, restoreDatabase, restoreFilestore, scratchName } from './restore.ts';
import { formatBytes, takeBackup } from './take.ts';
import { backupPolicy } from './plan.ts';
import type { BackupEntry, BackupFiles, BackupStore } from './store.ts';
import { storeFor } from './store-sftp.ts';

export interface RecoverContext {
  desired: DesiredEnv;
  drivers: Drivers;
  /** where the backup is read from (the source environment's destination) */
  store: BackupStore;
  /** folder for the swap journal (pulser's state folder) */
  stateDir: string;
  commit: string;
  progress: (message: string) => void;
  signal?: AbortSignal;
  connect?: TcpConnect;
  now?: () => Date;
}

export interface RecoverOptions {
  forceProduction?: boolean;
  /** skip the restart and health wait (no Odoo container, or the caller restarts it) */
  restart?: boolean;
  /** runs on the restored database before it is swapped in (a staging refresh neutralizes it there) */
  prepare?: (database: string) => Promise<void>;
}

export interface RecoverResult {
  backupId: string;
  env: string;
  database: string;
  previous: { database: string; kept: boolean };
  preRestoreBackup: string | null;
  /** true when this run only finished a swap of the same backup that an earlier run left in its journal */
  resumed: boolean;
  durationMs: number;
}

/**
 * What a re-run does with a journal it finds. restoring: the incoming copy was still being built,
 * so it is discarded; swapping: it goes in (then the health probe decides); cleaning: the probe
 * passed, so the previous database and filestore are dropped (never swapped back, whatever a later
 * probe says); reverting: the probe failed and the previous database and filestore go back.
 */
type Phase = 'restoring' | 'swapping' | 'cleaning' | 'reverting';

export interface Journal {
  env: string;
  backupId: string;
  database: string;
  incoming: string;
  previous: string;
  filestore: boolean;
  /** absent in journals that predate phases, which were written right before the swap */
  phase?: Phase;
}

type Outcome = 'restored' | 'reverted' | 'discarded';

function journalPath(stateDir: string, env: string): string {
  return path.join(stateDir, 'restores', `${env}.json`);
}

async function writeJournal(ctx: RecoverContext, j: Journal): Promise<void> {
  const file = journalPath(ctx.stateDir, j.env);
  await mkdir(path.dirname(file), { recursive: true });
  await writeFileAtomic(file, JSON.stringify(j, null, 2) + '\n');
}

/** Refuses production without the explicit flag; a coded error either way the caller can show. */
export function checkRestoreTarget(desired: DesiredEnv, forceProduction: boolean): void {
  if (desired.tier === 'production' && !forceProduction) {
    throw new PulserError('PULSER_E_RESTORE_PRODUCTION', `${desired.name} is a production environment: restoring over it needs --force-production`);
  }
}

async function exec(ctx: RecoverContext, argv: string[]): Promise<void> {
  const docker = ctx.drivers.docker(ctx.desired.hostName);
  const r = await docker.exec(containerName(ctx.desired.name), argv, { timeoutMs: 60_000, maxOutputBytes: 64 * 1024 });
  if (r.exitCode !== 0) throw new PulserError('PULSER_E_RESTORE_FAILED', `${argv.join(' ')} in ${containerName(ctx.desired.name)} exited ${r.exitCode}: ${r.output.trim().slice(0, 300)}`);
}

/**
 * Puts the folder `from` in place of `live`, keeping `live` as `keep`. Whether `from` still exists
 * tells whether this was done, so a re-run after a crash between the two moves completes it.
 */
const SWAP_FOLDERS = `set -e
live="$1/$2"; from="$1/$3"; keep="$1/$4"
[ -e "$from" ] || exit 0
if [ -e "$live" ]; then
  if [ -e "$keep" ]; then echo "$keep already exists" >&2; exit 1; fi
  mv -- "$live" "$keep"
fi
mv -- "$from" "$live"`;

async function swapFolders(ctx: RecoverContext, live: string, from: string, keep: string): Promise<void> {
  await exec(ctx, ['sh', '-c', SWAP_FOLDERS, 'swap-filestore', FILESTORE_ROOT, databaseName(live), databaseName(from), databaseName(keep)]);
}

/**
 * Makes `from` the live database and keeps the live one as `keep`, in one transaction; then the
 * filestore folders the same way. Each half is skipped when already done (the database `from`
 * or the folder `from` is gone), so it can run again after a crash at any point.
 */
async function swap(ctx: RecoverContext, j: Journal, from: string, keep: string): Promise<void> {
  const live = j.database;
  const admin = adminDb(ctx);
  if (await databaseExists(admin, from)) {
    const liveExists = await databaseExists(admin, live);
    if (liveExists) {
      await admin.query(SQL.allowConnections(live, false));
      await admin.query(SQL.terminate, [live]);
    }
    // Connections left on the incoming database (its preparation's pool) would block the rename.
    await admin.query(SQL.terminate, [from]);
    await admin.transaction(async (q) => {
      if (liveExists) await q(SQL.rename(live, keep));
      await q(SQL.rename(from, live));
    });
  }
  // A crash between refusing connections and the rename leaves that flag on whichever name the
  // database now has: both are open again on every run.
  for (const name of [live, keep]) {
    if (await databaseExists(admin, name)) await admin.query(SQL.allowConnections(name, true));
  }
  if (j.filestore) await swapFolders(ctx, live, from, keep);
}

async function waitHealthy(ctx: RecoverContext): Promise<boolean> {
  const docker = ctx.drivers.docker(ctx.desired.hostName);
  const name = containerName(ctx.desired.name);
  if (!(await docker.inspect(name))) return true;
  ctx.progress(`restarting ${name}`);
  await docker.stop(name);
  await docker.start(name);
  const h = ctx.desired.spec.odoo.health;
  for (let i = 0; i < h.retries; i++) {
    const p = await ctx.drivers.probe(ctx.desired.hostName, ctx.desired.spec.odoo.port, h.path, parseDuration(h.timeout), ctx.desired.spec.odoo.bind);
    if (p.ok) return true;
    await new Promise((r) => setTimeout(r, parseDuration(h.interval)));
  }
  return false;
}

/** Drops a database and its filestore folder that are no longer wanted. */
async function dropCopy(ctx: RecoverContext, j: Journal, database: string): Promise<void> {
  await adminDb(ctx).query(SQL.dropDatabase(database));
  // No container, no folder: a copy whose filestore could not be restored leaves none behind.
  if (j.filestore && (await ctx.drivers.docker(ctx.desired.hostName).inspect(containerName(ctx.desired.name)))) await exec(ctx, ['rm', '-rf', '--', `${FILESTORE_ROOT}/${databaseName(database)}`]);
}

/** Starts the Odoo container when a run was cut short while it was stopped: the folders are moved inside it. */
async function ensureRunning(ctx: RecoverContext): Promise<void> {
  const docker = ctx.drivers.docker(ctx.desired.hostName);
  const name = containerName(ctx.desired.name);
  const info = await docker.inspect(name);
  if (info && !info.State.Running) await docker.start(name);
}

/** Takes the journal from its phase to the end; every step can run again after a crash. */
async function finish(ctx: RecoverContext, j: Journal, opts: RecoverOptions): Promise<Outcome> {
  let phase = j.phase ?? 'swapping';
  if (j.filestore) await ensureRunning(ctx);
  if (phase === 'restoring') {
    await dropCopy(ctx, j, j.incoming);
    await rm(journalPath(ctx.stateDir, j.env), { force: true });
    return 'discarded';
  }
  if (phase === 'swapping') {
    ctx.progress(`swapping ${j.incoming} in as ${j.database}`);
    await swap(ctx, j, j.incoming, j.previous);
    const healthy = opts.restart === false ? true : await waitHealthy(ctx);
    phase = healthy ? 'cleaning' : 'reverting';
    await writeJournal(ctx, { ...j, phase });
  }
  if (phase === 'cleaning') {
    await dropCopy(ctx, j, j.previous);
    await rm(journalPath(ctx.stateDir, j.env), { force: true });
    return 'restored';
  }
  ctx.progress(`${ctx.desired.name} is not healthy on the restored database: swapping the previous one back`);
  await swap(ctx, j, j.previous, j.incoming);
  await dropCopy(ctx, j, j.incoming);
  if (opts.restart !== false) await waitHealthy(ctx);
  await rm(journalPath(ctx.stateDir, j.env), { force: true });
  return 'reverted';
}

async function readJournal(ctx: RecoverContext): Promise<Journal | null> {
  let text: string;
  try {
    text = await readFile(journalPath(ctx.stateDir, ctx.desired.name), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  const j = JSON.parse(text) as Journal;
  // Its names become SQL identifiers (quoted) and filestore folders removed with rm -rf: checked before any is used.
  for (const name of [j.database, j.incoming, j.previous]) databaseName(String(name));
  return j;
}

/** Finishes a restore a previous run left in its journal; null when there was none. */
export async function resumeRestore(ctx: RecoverContext, opts: RecoverOptions = {}): Promise<{ journal: Journal; outcome: Outcome } | null> {
  const j = await readJournal(ctx);
  if (!j) return null;
  ctx.progress(`finishing the restore of ${j.backupId} into ${j.env} that was cut short`);
  return { journal: j, outcome: await finish(ctx, j, opts) };
}

/**
 * Reports the growth of a database pg_restore is filling, from its size on the server (pg_restore
 * reads the dump file itself, so there is no stream to count), at most twice a second and once at the end.
 */
async function meteredRestore(ctx: RecoverContext, database: string, work: () => Promise<void>): Promise<void> {
  const admin = adminDb(ctx);
  // A role that may not read sizes gets no meter; the restore itself does not depend on it.
  const sizeOf = async (name: string) => Number((await admin.query<{ bytes: string }>(SQL.sizeOf, [name]))[0]?.bytes ?? 0);
  const empty = await sizeOf('template0').catch(() => 0);
  const t0 = performance.now();
  const report = async () => {
    const bytes = Math.max(0, (await sizeOf(database)) - empty);
    const secs = Math.max(0.001, (performance.now() - t0) / 1000);
    return `pg_restore: ${formatBytes(bytes)} (${formatBytes(bytes / secs)}/s)`;
  };
  let running = true;
  const timer = setInterval(() => {
    report().then(
      (m) => {
        if (running) ctx.progress(m);
      },
      () => undefined,
    );
  }, 500);
  try {
    await work();
  } finally {
    running = false;
    clearInterval(timer);
  }
  const last = await report().catch(() => null);
  if (last) ctx.progress(last);
}

/**
 * Everything before the swap: a pre-change backup of a production target, then the backup
 * restored into a new database and filestore folder (and prepared). The journal is written
 * before anything is created; a failure discards the copy.
 */
async function stageRestore(ctx: RecoverContext, entry: BackupEntry, files: BackupFiles, opts: RecoverOptions, now: () => Date): Promise<{ j: Journal; preRestoreBackup: string | null }> {
  const { desired } = ctx;
  let preRestoreBackup: string | null = null;
  const ownPolicy = backupPolicy(desired);
  if (desired.tier === 'production' && ownPolicy) {
    const at = now();
    const pre = await takeBackup(
      { desired, drivers: ctx.drivers, store: storeFor(ownPolicy.destination, ctx.drivers), commit: ctx.commit, progress: ctx.progress, signal: ctx.signal, connect: ctx.connect },
      { id: backupId(desired.name, at), at, kind: 'pre-change', reason: `before restoring ${entry.manifest.id}` },
    );
    preRestoreBackup = pre.manifest.id;
  }

  const stamp = now();
  const j: Journal = {
    env: desired.name,
    backupId: entry.manifest.id,
    database: desired.spec.database.name,
    incoming: scratchName('pulser_in', desired.name, stamp),
    previous: scratchName('pulser_prev', desired.name, stamp),
    filestore: entry.manifest.files.filestore !== null,
    phase: 'restoring',
  };
  // Written before anything is created, so a crash while building the copy leaves nothing a re-run cannot find.
  await writeJournal(ctx, j);
  try {
    await meteredRestore(ctx, j.incoming, () => restoreDatabase(ctx, entry, j.incoming, files.dump));
    await restoreFilestore(ctx, entry, j.incoming, files.filestore);
    // Both folders exist from here on, so swapping them back is the mirror of swapping them in.
    if (j.filestore) await exec(ctx, ['mkdir', '-p', '--', `${FILESTORE_ROOT}/${databaseName(j.database)}`]);
    await opts.prepare?.(j.incoming);
  } catch (err) {
    await finish(ctx, j, opts).catch(() => undefined);
    throw err;
  }
  return { j, preRestoreBackup };
}

export async function restoreToEnvironment(ctx: RecoverContext, entry: BackupEntry, opts: RecoverOptions = {}): Promise<RecoverResult> {
  const now = ctx.now ?? (() => new Date());
  const t0 = performance.now();
  const { desired } = ctx;
  checkRestoreTarget(desired, opts.forceProduction ?? false);
  const resumed = await resumeRestore(ctx, opts);
  if (resumed?.outcome === 'reverted') throw new PulserError('PULSER_E_RESTORE_FAILED', `an earlier restore of ${resumed.journal.backupId} into ${desired.name} left the environment unhealthy; the previous database and filestore were swapped back`);
  const result = (preRestoreBackup: string | null, previous: string, done: boolean): RecoverResult => ({
    backupId: entry.manifest.id,
    env: desired.name,
    database: desired.spec.database.name,
    previous: { database: previous, kept: false },
    preRestoreBackup,
    resumed: done,
    durationMs: Math.round(performance.now() - t0),
  });
  if (resumed?.outcome === 'restored' && resumed.journal.backupId === entry.manifest.id) return result(null, resumed.journal.previous, true);

  // A backup on another host is copied here once; the copy is checked before anything reads it.
  const files = await ctx.store.open(entry, ctx.progress);
  let staged: { j: Journal; preRestoreBackup: string | null };
  try {
    await files.verify();
    staged = await stageRestore(ctx, entry, files, opts, now);
  } finally {
    await files.release();
  }
  const { j, preRestoreBackup } = staged;
  await writeJournal(ctx, { ...j, phase: 'swapping' });
  let outcome: Outcome;
  try {
    outcome = await finish(ctx, { ...j, phase: 'swapping' }, opts);
  } catch (err) {
    throw new PulserError('PULSER_E_RESTORE_FAILED', `swapping ${entry.manifest.id} into ${desired.name} failed: ${asPulserError(err).message} (the journal ${journalPath(ctx.stateDir, desired.name)} lets \`pulser restore\` finish it)`, { cause: err });
  }
  if (outcome !== 'restored') throw new PulserError('PULSER_E_RESTORE_FAILED', `${desired.name} did not pass its health probe on the restored database; the previous database and filestore were swapped back`);
  return result(preRestoreBackup, j.previous, false);
}
