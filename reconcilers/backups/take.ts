// Taking one backup: the row counts, Odoo facts and pg_dump all read one exported snapshot (side by
// side), the dump streams from pg_dump's stdout through sha256 into `<id>.partial/`, then the filestore tar
// streams out of the Odoo container through the Docker archive endpoint. Any failure removes
// the partial folder; older backups are never touched.
import type { Db, TcpConnect } from '../../src/drivers/postgres.ts';
import type { Drivers } from '../../src/drivers/index.ts';
import type { DesiredEnv } from '../../src/spec/model.ts';
import { PulserError } from '../../src/errors.ts';
import { containerName } from '../containers/design.ts';
import { FILESTORE_ROOT, libpqEnv, PG_BIN, pgDumpArgv, SQL } from './commands.ts';
import { dbTarget } from '../../src/odoo/db.ts';
import { DUMP_FILE, FILESTORE_FILE, MANIFEST_FORMAT, type Manifest, type StoredFile } from './manifest.ts';
import { hostTransport, pgEndpoint, runPg } from './proc.ts';
import type { BackupEntry, BackupStore, PartialBackup } from './store.ts';
import { PassThrough, type Readable } from 'node:stream';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

export interface BackupContext {
  desired: DesiredEnv;
  drivers: Drivers;
  store: BackupStore;
  /** commit of the spec repository */
  commit: string;
  progress: (message: string) => void;
  signal?: AbortSignal;
  /** transport to the database server (an SSH forward); plain TCP when absent */
  connect?: TcpConnect;
  /** limit for pg_dump / pg_restore and for each statement of the backup transaction */
  timeoutMs?: number;
}

export interface BackupRequest {
  id: string;
  at: Date;
  kind: Manifest['kind'];
  reason: string;
}

export const DEFAULT_TIMEOUT_MS = 6 * 3_600_000;

/** Reports bytes and rate at most twice a second. */
export function byteMeter(label: string, progress: (m: string) => void): (total: number) => void {
  const started = Date.now();
  let last = 0;
  return (total) => {
    const now = Date.now();
    if (now - last < 500) return;
    last = now;
    const secs = Math.max(0.001, (now - started) / 1000);
    progress(`${label} ${formatBytes(total)} (${formatBytes(total / secs)}/s)`);
  };
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

type Query = Db['query'];

/** How long a killed pg_dump is given to report its exit before the failure is reported anyway. */
const EXIT_WAIT_MS = 10_000;

async function settledWithin(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([p.catch(() => undefined), new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}

let versionCache: Promise<string> | undefined;
function pgDumpVersion(): Promise<string> {
  versionCache ??= promisify(execFile)(`${PG_BIN}/pg_dump`, ['--version'], { timeout: 10_000 }).then(
    (r) => r.stdout.trim(),
    () => 'unknown',
  );
  return versionCache;
}

async function describeDatabase(q: Query): Promise<Pick<Manifest, 'rowCounts' | 'odooVersion' | 'modules' | 'databaseBytes'>> {
  const rowCounts: Record<string, number> = {};
  await q(SQL.serialCounts);
  for (const t of await q<{ schema: string; name: string }>(SQL.largestTables)) {
    const [row] = await q<{ n: string }>(SQL.countRows(t.schema, t.name));
    rowCounts[`${t.schema}.${t.name}`] = Number(row?.n ?? 0);
  }
  const [has] = await q<{ present: boolean }>(SQL.hasModuleTable);
  let odooVersion: string | null = null;
  let modules: string[] = [];
  if (has?.present) {
    odooVersion = (await q<{ latest_version: string | null }>(SQL.odooVersion))[0]?.latest_version ?? null;
    modules = (await q<{ name: string }>(SQL.installedModules)).map((r) => r.name);
  }
  const [size] = await q<{ bytes: string }>(SQL.databaseSize);
  return { rowCounts, odooVersion, modules, databaseBytes: Number(size?.bytes ?? 0) };
}

async function dumpInto(ctx: BackupContext, partial: PartialBackup, database: string, snapshot: string, appName: string): Promise<{ file: StoredFile; version: string }> {
  const target = dbTarget(ctx.desired, database);
  const relay = await pgEndpoint(target.address, target.port, ctx.connect ?? hostTransport(ctx.drivers, ctx.desired.hostName));
  try {
    const dump = runPg(pgDumpArgv(relay.endpoint, database, snapshot), libpqEnv(target, appName), {
      timeoutMs: ctx.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      signal: ctx.signal,
      code: 'PULSER_E_BACKUP_FAILED',
      what: `pg_dump of ${database}`,
    });
    let stored: StoredFile;
    try {
      stored = await partial.write(DUMP_FILE, dump.stdout, byteMeter(`dump of ${database}:`, ctx.progress));
    } catch (err) {
      dump.kill();
      await settledWithin(dump.done, EXIT_WAIT_MS);
      throw err;
    }
    await dump.done;
    return { file: stored, version: await pgDumpVersion() };
  } finally {
    await relay.close();
  }
}

async function filestoreInto(ctx: BackupContext, partial: PartialBackup, database: string): Promise<StoredFile | null> {
  const docker = ctx.drivers.docker(ctx.desired.hostName);
  const name = containerName(ctx.desired.name);
  if (!(await docker.inspect(name))) {
    throw new PulserError('PULSER_E_BACKUP_FAILED', `the filestore cannot be read: container ${name} does not exist (set backup.filestore: false to back up the database only)`);
  }
  const tar = await docker.archiveOut(name, `${FILESTORE_ROOT}/${database}`);
  // Odoo creates the folder with the first attachment: none yet is an empty filestore.
  if (!tar) return null;
  // The engine's response is relayed through a stream of our own: pipeline() does not settle when
  // it tears down that HTTP response itself, so it is destroyed here once writing has stopped.
  const body = tar as Readable;
  const relay = new PassThrough({ highWaterMark: 1 << 20 });
  body.once('error', (err) => relay.destroy(err));
  // A connection dropped without an error would otherwise leave the relay waiting for its end.
  body.once('close', () => {
    if (!body.readableEnded) relay.destroy(new PulserError('PULSER_E_BACKUP_FAILED', `the Docker engine closed the filestore archive of ${database} before its end`));
  });
  body.pipe(relay);
  try {
    return await partial.write(FILESTORE_FILE, relay, byteMeter(`filestore of ${database}:`, ctx.progress));
  } finally {
    body.unpipe(relay);
    body.destroy();
  }
}

export async function takeBackup(ctx: BackupContext, req: BackupRequest): Promise<BackupEntry> {
  const { desired, store } = ctx;
  const database = desired.spec.database.name;
  const started = Date.now();
  await store.removePartials(desired.name);
  const partial = await store.begin(desired.name, req.id);
  try {
    const db = ctx.drivers.db(desired.hostName, dbTarget(desired));
    const timeoutMs = ctx.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    ctx.progress(`backup ${req.id}: dumping ${database}`);
    const { facts, dump } = await db.transaction(
      async (q) => {
        await q('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY');
        const [snap] = await q<{ snapshot: string }>(SQL.exportSnapshot);
        // pg_dump and the manifest's counts read the same snapshot, so they run side by side;
        // a failed count stops pg_dump.
        const stop = new AbortController();
        const signal = ctx.signal ? AbortSignal.any([ctx.signal, stop.signal]) : stop.signal;
        const dumping = dumpInto({ ...ctx, signal }, partial, database, snap!.snapshot, `pulser-backup ${req.id}`);
        dumping.catch(() => undefined);
        let facts: Awaited<ReturnType<typeof describeDatabase>>;
        try {
          facts = await describeDatabase(q);
        } catch (err) {
          stop.abort();
          await dumping.catch(() => undefined);
          throw err;
        }
        return { facts, dump: await dumping };
      },
      { timeoutMs },
    );
    const dumpMs = Date.now() - started;
    let filestore: StoredFile | null = null;
    if (desired.spec.backup?.filestore !== false) {
      ctx.progress(`backup ${req.id}: reading the filestore`);
      filestore = await filestoreInto(ctx, partial, database);
    }
    const total = Date.now() - started;
    const manifest: Manifest = {
      format: MANIFEST_FORMAT,
      id: req.id,
      env: desired.name,
      kind: req.kind,
      reason: req.reason,
      database,
      commit: ctx.commit,
      at: req.at.toISOString(),
      ...facts,
      files: { dump: dump.file, filestore },
      durationsMs: { dump: dumpMs, filestore: total - dumpMs, total },
      pgDump: dump.version,
    };
    const dir = await partial.commit(manifest);
    return { manifest, drill: null, dir, bytes: dump.file.bytes + (filestore?.bytes ?? 0) };
  } finally {
    await partial.abort();
  }
}
