// Restores: a backup is checked against its manifest before anything reads it, restored with
// pg_restore into a NEW database (never over a live one), its filestore copied into the Odoo
// container under that database's name. Drills stop there, compare row counts and drop it;
// instant recovery swaps it in by renaming (see swapIn).
import { createReadStream } from 'node:fs';
import path from 'node:path';
import { extract, pack } from 'tar-stream';
import { pipeline } from 'node:stream/promises';
import type { Db, PgTarget, TcpConnect } from '../../src/drivers/postgres.ts';
import type { Drivers } from '../../src/drivers/index.ts';
import type { DesiredEnv } from '../../src/spec/model.ts';
import { asPulserError, PulserError } from '../../src/errors.ts';
import { containerName } from '../containers/design.ts';
import { FILESTORE_ROOT, libpqEnv, pgRestoreArgv, SQL } from './commands.ts';
import { dbTarget } from '../../src/odoo/db.ts';
import type { DrillRecord } from './manifest.ts';
import { hostTransport, pgEndpoint, runPg } from './proc.ts';
import { byteMeter, DEFAULT_TIMEOUT_MS } from './take.ts';
import type { BackupEntry, BackupFiles, BackupStore } from './store.ts';

export interface RestoreContext {
  desired: DesiredEnv;
  drivers: Drivers;
  store: BackupStore;
  progress: (message: string) => void;
  signal?: AbortSignal;
  connect?: TcpConnect;
  timeoutMs?: number;
}

/** The maintenance connection of the environment's server (CREATE/DROP/ALTER DATABASE). */
export function adminDb(ctx: Pick<RestoreContext, 'desired' | 'drivers'>): Db {
  return ctx.drivers.db(ctx.desired.hostName, dbTarget(ctx.desired, 'postgres'));
}

export async function databaseExists(admin: Db, name: string): Promise<boolean> {
  return (await admin.query(SQL.databaseExists, [name])).length > 0;
}

/** Creates `database` and pg_restores the backup's dump (the local file `dump`) into it; a failure drops it again. */
export async function restoreDatabase(ctx: RestoreContext, entry: BackupEntry, database: string, dump: string): Promise<void> {
  const admin = adminDb(ctx);
  await admin.query(SQL.createDatabase(database));
  const target: PgTarget = dbTarget(ctx.desired, database);
  const relay = await pgEndpoint(target.address, target.port, ctx.connect ?? hostTransport(ctx.drivers, ctx.desired.hostName));
  try {
    ctx.progress(`restoring ${entry.manifest.id} into database ${database}`);
    const run = runPg(pgRestoreArgv(relay.endpoint, database, dump), libpqEnv(target, `pulser-restore ${entry.manifest.id}`), {
      timeoutMs: ctx.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      signal: ctx.signal,
      code: 'PULSER_E_RESTORE_FAILED',
      what: `pg_restore of ${entry.manifest.id} into ${database}`,
    });
    run.stdout.resume();
    await run.done;
  } catch (err) {
    await admin.query(SQL.dropDatabase(database)).catch(() => undefined);
    throw err;
  } finally {
    await relay.close();
  }
}

/** Copies the backup's filestore (the local tar `file`) into the container as `filestore/<database>`. */
export async function restoreFilestore(ctx: RestoreContext, entry: BackupEntry, database: string, file: string | null): Promise<void> {
  if (!file) return;
  const docker = ctx.drivers.docker(ctx.desired.hostName);
  const name = containerName(ctx.desired.name);
  if (!(await docker.inspect(name))) throw new PulserError('PULSER_E_RESTORE_FAILED', `the filestore cannot be restored: container ${name} does not exist`);
  // The archive's entries start with the source database's folder name; they are renamed on the way.
  const source = entry.manifest.database;
  const input = extract();
  const output = pack();
  input.on('entry', (header, stream, next) => {
    const rel = header.name.replace(/^\.?\/?/, '');
    const rest = rel === source || rel === `${source}/` ? '' : rel.startsWith(`${source}/`) ? rel.slice(source.length + 1) : null;
    if (rest === null) {
      stream.resume();
      stream.once('end', next);
      return;
    }
    const renamed = { ...header, name: `filestore/${database}${rest ? `/${rest}` : ''}` };
    stream.pipe(output.entry(renamed, (err) => next(err ?? undefined)));
  });
  input.once('finish', () => output.finalize());
  input.once('error', (err) => output.destroy(err));
  const tar = createReadStream(file);
  const meter = byteMeter(`filestore of ${entry.manifest.id}:`, ctx.progress);
  let copied = 0;
  tar.on('data', (chunk) => meter((copied += chunk.length)));
  const reading = pipeline(tar, input);
  ctx.progress(`copying the filestore of ${entry.manifest.id} into ${name}`);
  await Promise.all([reading, docker.archiveIn(name, path.posix.dirname(FILESTORE_ROOT), output as unknown as NodeJS.ReadableStream, ctx.timeoutMs ?? DEFAULT_TIMEOUT_MS)]).catch((err: unknown) => {
    throw new PulserError('PULSER_E_RESTORE_FAILED', `copying the filestore of ${entry.manifest.id} into ${name}: ${asPulserError(err).message}`, { cause: err });
  });
}

/** Row counts of the manifest's tables in a restored database, and the tables that differ. */
export async function compareRowCounts(db: Db, expected: Record<string, number>): Promise<NonNullable<DrillRecord['mismatches']>> {
  const out: NonNullable<DrillRecord['mismatches']> = [];
  for (const [table, n] of Object.entries(expected)) {
    const [schema, name] = table.split('.') as [string, string];
    let got: number | null = null;
    try {
      got = Number((await db.query<{ n: string }>(SQL.countRows(schema, name)))[0]?.n ?? 0);
    } catch {
      got = null;
    }
    if (got !== n) out.push({ table, manifest: n, restored: got });
  }
  return out;
}

/** Scratch database name: short enough for PostgreSQL's 63 bytes, unique per run. */
export function scratchName(prefix: string, env: string, at: Date): string {
  const stamp = at.toISOString().replace(/[-:.TZ]/g, '').slice(0, 17);
  return `${prefix}_${env.replace(/-/g, '_').slice(0, 40 - prefix.length)}_${stamp}`;
}

/**
 * A restore drill of one backup: checksums, pg_restore into a scratch database, row counts
 * compared with the manifest, scratch dropped. The record is stored next to the backup.
 */
export async function drill(ctx: RestoreContext, entry: BackupEntry, now: () => Date = () => new Date()): Promise<DrillRecord> {
  const started = now();
  const t0 = performance.now();
  const scratch = scratchName('pulser_drill', ctx.desired.name, started);
  const admin = adminDb(ctx);
  const record: DrillRecord = { backupId: entry.manifest.id, at: started.toISOString(), ok: false, durationMs: 0 };
  let files: BackupFiles | null = null;
  // The checksums are read while pg_restore reads the same file: a mismatch stops pg_restore and
  // fails the drill as corrupt, and the scratch database is dropped below whatever happened. A
  // backup on another host is copied here first (store.open), and the copy is what both read.
  const stop = new AbortController();
  const restoreCtx: RestoreContext = { ...ctx, signal: ctx.signal ? AbortSignal.any([ctx.signal, stop.signal]) : stop.signal };
  try {
    const local = (files = await ctx.store.open(entry, ctx.progress));
    const [verified, restored] = await Promise.allSettled([
      local.verify().catch((err: unknown) => {
        stop.abort();
        throw err;
      }),
      restoreDatabase(restoreCtx, entry, scratch, local.dump),
    ]);
    if (verified.status === 'rejected') throw verified.reason;
    if (restored.status === 'rejected') throw restored.reason;
    const mismatches = await compareRowCounts(ctx.drivers.db(ctx.desired.hostName, dbTarget(ctx.desired, scratch)), entry.manifest.rowCounts);
    if (mismatches.length) {
      record.mismatches = mismatches;
      throw new PulserError('PULSER_E_DRILL_MISMATCH', `drill of ${entry.manifest.id}: ${mismatches.length} table(s) differ from the manifest (${mismatches.map((m) => `${m.table} ${m.manifest}→${m.restored ?? 'missing'}`).join(', ')})`);
    }
    record.ok = true;
  } catch (err) {
    const e = asPulserError(err);
    record.error = { code: e.code, message: e.message };
  } finally {
    await admin.query(SQL.dropDatabase(scratch)).catch(() => undefined);
    await files?.release().catch(() => undefined);
    record.durationMs = Math.round(performance.now() - t0);
    await ctx.store.recordDrill(entry, record).catch(() => undefined);
  }
  return record;
}
