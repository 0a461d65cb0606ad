// Instant recovery: `pulser restore <backup> --to <env>`. The backup is restored into a new
// database and filestore folder while the environment keeps running, then swapped in by renaming
// (the spec keeps naming the same database, so git and the world still agree): connections to
// the live database are refused and terminated, both renames run in one transaction, the
// filestore folders are moved, Odoo restarts. The previous database and filestore stay under a
// dated name until the environment answers its health probe again; if it does not, they are
// swapped back. A journal written before the swap lets a re-run finish a swap cut short.
import { mkdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import type { DesiredEnv } from '../../src/spec/model.ts';
import type { Drivers } from '../../src/drivers/index.ts';
import type { TcpConnect } from '../../src/drivers/postgres.ts';
import { asPulserError, PulserError } from '../../src/errors.ts';
import { writeFileAtomic } from '../../src/evidence/durable.ts';
import { parseDuration } from '../../src/core/duration.ts';
import { containerName } from '../containers/design.ts';
import { backupId, FILESTORE_ROOT, SQL } from './commands.ts';
import { adminDb, databaseExists, restoreDatabase, restoreFilestore, scratchName } from './restore.ts';
import { takeBackup } from './take.ts';
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
  durationMs: number;
}

interface Journal {
  env: string;
  backupId: string;
  database: string;
  incoming: string;
  previous: string;
  filestore: boolean;
}

function journalPath(stateDir: string, env: string): string {
  return path.join(stateDir, 'restores', `${env}.json`);
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

/** Moves `from` to `to` in the filestore when `from` exists and `to` does not (idempotent). */
async function moveFolder(ctx: RecoverContext, from: string, to: string): Promise<void> {
  await exec(ctx, ['sh', '-c', 'if [ -e "$1" ] && [ ! -e "$2" ]; then mv "$1" "$2"; fi', 'move', `${FILESTORE_ROOT}/${from}`, `${FILESTORE_ROOT}/${to}`]);
}

/** Renames live → previous and incoming → live in one transaction; a no-op when already done. */
async function swapDatabases(ctx: RecoverContext, j: Journal, live: string, incoming: string, previous: string): Promise<void> {
  const admin = adminDb(ctx);
  if (!(await databaseExists(admin, incoming))) return;
  const liveExists = await databaseExists(admin, live);
  if (liveExists) {
    await admin.query(SQL.allowConnections(live, false));
    await admin.query(SQL.terminate, [live]);
  }
  // Connections left on the incoming database (its preparation's pool) would block the rename.
  await admin.query(SQL.terminate, [incoming]);
  try {
    await admin.transaction(async (q) => {
      if (liveExists) await q(SQL.rename(live, previous));
      await q(SQL.rename(incoming, live));
    });
  } catch (err) {
    if (liveExists) await admin.query(SQL.allowConnections(live, true)).catch(() => undefined);
    throw err;
  }
  if (liveExists) await admin.query(SQL.allowConnections(previous, true));
  if (j.filestore) {
    await moveFolder(ctx, live, previous);
    await moveFolder(ctx, incoming, live);
  }
}

async function waitHealthy(ctx: RecoverContext): Promise<boolean> {
  const docker = ctx.drivers.docker(ctx.desired.hostName);
  const name = containerName(ctx.desired.name);
  if (!(await docker.inspect(name))) return true;
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

async function finish(ctx: RecoverContext, j: Journal, opts: RecoverOptions): Promise<boolean> {
  await swapDatabases(ctx, j, j.database, j.incoming, j.previous);
  const healthy = opts.restart === false ? true : await waitHealthy(ctx);
  const admin = adminDb(ctx);
  if (!healthy) {
    ctx.progress(`${ctx.desired.name} is not healthy on the restored database: swapping the previous one back`);
    await swapDatabases(ctx, j, j.database, j.previous, `${j.incoming}`);
    await admin.query(SQL.dropDatabase(j.incoming));
    if (j.filestore) await exec(ctx, ['rm', '-rf', `${FILESTORE_ROOT}/${j.incoming}`]);
    if (opts.restart !== false) await waitHealthy(ctx);
    await rm(journalPath(ctx.stateDir, j.env), { force: true });
    return false;
  }
  await admin.query(SQL.dropDatabase(j.previous));
  if (j.filestore) await exec(ctx, ['rm', '-rf', `${FILESTORE_ROOT}/${j.previous}`]);
  await rm(journalPath(ctx.stateDir, j.env), { force: true });
  return true;
}

/** Finishes a swap a previous run left in its journal; null when there was none. */
export async function resumeRestore(ctx: RecoverContext, opts: RecoverOptions = {}): Promise<boolean | null> {
  let j: Journal;
  try {
    j = JSON.parse(await readFile(journalPath(ctx.stateDir, ctx.desired.name), 'utf8')) as Journal;
  } catch {
    return null;
  }
  ctx.progress(`finishing the restore of ${j.backupId} into ${j.env} that was cut short`);
  return finish(ctx, j, opts);
}

/**
 * Everything before the swap: a pre-change backup of a production target, then the backup
 * restored into a new database and filestore folder (and prepared); a failure removes both.
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
  };
  await restoreDatabase(ctx, entry, j.incoming, files.dump);
  try {
    await restoreFilestore(ctx, entry, j.incoming, files.filestore);
    await opts.prepare?.(j.incoming);
  } catch (err) {
    await adminDb(ctx).query(SQL.dropDatabase(j.incoming)).catch(() => undefined);
    if (j.filestore) await exec(ctx, ['rm', '-rf', `${FILESTORE_ROOT}/${j.incoming}`]).catch(() => undefined);
    throw err;
  }
  return { j, preRestoreBackup };
}

export async function restoreToEnvironment(ctx: RecoverContext, entry: BackupEntry, opts: RecoverOptions = {}): Promise<RecoverResult> {
  const now = ctx.now ?? (() => new Date());
  const t0 = performance.now();
  const { desired } = ctx;
  checkRestoreTarget(desired, opts.forceProduction ?? false);
  // A backup on another host is copied here once; the copy is checked before anything reads it.
  const files = await ctx.store.open(entry, ctx.progress);
  let staged: { j: Journal; preRestoreBackup: string | null };
  try {
    await files.verify();
    const resumed = await resumeRestore(ctx, opts);
    if (resumed === false) throw new PulserError('PULSER_E_RESTORE_FAILED', `an earlier restore into ${desired.name} was finished but left the environment unhealthy; it was swapped back`);
    staged = await stageRestore(ctx, entry, files, opts, now);
  } finally {
    await files.release();
  }
  const { j, preRestoreBackup } = staged;
  await mkdir(path.dirname(journalPath(ctx.stateDir, desired.name)), { recursive: true });
  await writeFileAtomic(journalPath(ctx.stateDir, desired.name), JSON.stringify(j, null, 2) + '\n');
  let healthy: boolean;
  try {
    healthy = await finish(ctx, j, opts);
  } catch (err) {
    throw new PulserError('PULSER_E_RESTORE_FAILED', `swapping ${entry.manifest.id} into ${desired.name} failed: ${asPulserError(err).message} (the journal ${journalPath(ctx.stateDir, desired.name)} lets \`pulser restore\` finish it)`, { cause: err });
  }
  if (!healthy) throw new PulserError('PULSER_E_RESTORE_FAILED', `${desired.name} did not pass its health probe on the restored database; the previous database and filestore were swapped back`);
  return { backupId: entry.manifest.id, env: desired.name, database: j.database, previous: { database: j.previous, kept: false }, preRestoreBackup, durationMs: Math.round(performance.now() - t0) };
}
