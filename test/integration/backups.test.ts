// Backups against the real PostgreSQL cluster and Docker engine: a scheduled backup with its
// filestore and drill, restored into another environment (identical rows and files), and the
// faults that must leave nothing half-written: a full destination, PostgreSQL cutting pg_dump
// off, a corrupted file. Then the pre-change backup that gates a production rollout.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { World, suffix, freePort, codeOf } from '../helpers/world.ts';
import { PgPools } from '../../src/drivers/postgres.ts';
import { createOdooDb, dropDb, envYaml, PG, putFilestore, readFilestore, rowCounts } from '../helpers/odoo-db.ts';
import { LocalBackupStore, restoreToEnvironment, takeBackup, backupId, drill } from '../../reconcilers/backups/index.ts';
import { SQL } from '../../reconcilers/backups/commands.ts';
import { hashFile } from '../../reconcilers/backups/store.ts';

const sfx = suffix();
const prod = `bkp-${sfx}`;
const stg = `bkr-${sfx}`;
const prodDb = `bkp_${sfx}`;
const stgDb = `bkr_${sfx}`;
const pools = new PgPools();
const dest = await mkdtemp(path.join(tmpdir(), 'pulser-backups-'));
const w = await World.create();
const prodPort = await freePort();
const stgPort = await freePort();
const files = { 'ab/ab01': 'invoice 1', 'cd/cd02': randomBytes(300_000), 'ef/ef03': 'logo' };
const backupSection = (destination: string) => `backup:\n  schedule: "0 3 * * *"\n  timezone: Europe/Berlin\n  retention: { daily: 2, weekly: 0, monthly: 0 }\n  destination: { type: local, path: ${destination} }\n  verify: weekly\n`;

t.teardown(async () => {
  await w.cleanup();
  await dropDb(pools, prodDb);
  await dropDb(pools, stgDb);
  await pools.close();
  await rm(dest, { recursive: true, force: true });
});

async function writeEnvs(o: { prodImage?: string; prodBackup?: string | null } = {}): Promise<void> {
  await w.writeFile(`environments/${prod}.yaml`, envYaml({ name: prod, tier: 'production', port: prodPort, database: prodDb, image: o.prodImage, extra: o.prodBackup === null ? '' : backupSection(o.prodBackup ?? dest) }));
  await w.writeFile(`environments/${stg}.yaml`, envYaml({ name: stg, tier: 'staging', port: stgPort, database: stgDb }));
}

const noPartials = async (dir: string) => (await readdir(dir).catch(() => [] as string[])).filter((n) => n.endsWith('.partial'));

await createOdooDb(pools, prodDb, 500);
await createOdooDb(pools, stgDb, 7);
await writeEnvs({ prodBackup: null });
w.start();

t.test('containers first, then a backup policy: the pass takes a backup and drills it', async (t) => {
  for (const rec of await w.pass()) t.equal(rec.outcome, 'applied', JSON.stringify(rec.errors));
  await putFilestore(w.docker, `pulser-${prod}-odoo`, prodDb, files);
  await writeEnvs();
  const [rec] = await w.pass(prod);
  t.equal(rec!.outcome, 'applied', JSON.stringify(rec!.errors));
  t.same(rec!.apply.map((a) => [a.subject.split('/').slice(1, 2)[0], a.action, a.outcome]), [
    ['backups', 'create', 'applied'],
    ['backups', 'run', 'applied'],
  ]);
  t.equal(rec!.driftAfter, 0, 'nothing due after the backup and its drill');
  const [entry, ...rest] = await new LocalBackupStore(dest).list(prod);
  t.equal(rest.length, 0);
  const m = entry!.manifest;
  t.match(m.id, new RegExp(`^${prod}-\\d{8}T\\d{6}Z$`));
  t.equal(m.kind, 'scheduled');
  t.equal(m.database, prodDb);
  t.equal(m.odooVersion, '17.0.1.3');
  t.same(m.modules, ['base', 'mail']);
  t.equal(m.rowCounts['public.res_partner'], 500);
  t.match(m.pgDump, /^pg_dump \(PostgreSQL\) 15/);
  t.equal(m.files.dump.sha256, (await hashFile(path.join(entry!.dir, 'db.dump'))).sha256);
  t.ok(m.files.filestore && m.files.filestore.bytes > 300_000, 'the filestore tar holds the files');
  t.equal(entry!.drill?.ok, true, JSON.stringify(entry!.drill));
  const status = w.pulser!.engine.status.get(prod)!;
  t.same(status.lastBackup, { id: m.id, at: m.at, size: entry!.bytes, verified: true });
  const metrics = await w.pulser!.metrics.registry.metrics();
  t.match(metrics, new RegExp(`pulser_backup_size_bytes\\{env="${prod}"\\} ${entry!.bytes}`));
  t.match(metrics, new RegExp(`pulser_restore_drill_success\\{env="${prod}"\\} 1`));
  t.match(metrics, new RegExp(`pulser_backup_last_success_timestamp_seconds\\{env="${prod}"\\} \\d+`));
  t.match(metrics, new RegExp(`pulser_restore_drill_duration_seconds\\{env="${prod}"\\} [0-9.]+`));
});

t.test('restored into another environment: identical row counts and filestore files', async (t) => {
  const [entry] = await new LocalBackupStore(dest).list(prod);
  const desired = await w.desired(stg);
  const ctx = w.pulser!.engine.context(desired);
  const before = await rowCounts(pools, stgDb);
  t.equal(before.res_partner, 7);
  const res = await restoreToEnvironment({ desired, drivers: ctx.drivers, store: new LocalBackupStore(dest), stateDir: path.join(w.root, '.pulser'), commit: 'test', progress: () => undefined }, entry!);
  t.equal(res.database, stgDb);
  t.same(await rowCounts(pools, stgDb), await rowCounts(pools, prodDb));
  t.same(await readFilestore(w.docker, `pulser-${stg}-odoo`, stgDb), await readFilestore(w.docker, `pulser-${prod}-odoo`, prodDb));
  t.equal(Object.keys((await readFilestore(w.docker, `pulser-${stg}-odoo`, stgDb))!).length, 3);
  const left = await pools.get({ ...PG, database: 'postgres' }).query<{ datname: string }>(`SELECT datname FROM pg_database WHERE datname LIKE 'pulser_%${stg.replace(/-/g, '_')}%'`);
  t.same(left, [], 'the previous database was dropped once the environment was healthy');
  t.same(await readdir(path.join(w.root, '.pulser', 'restores')), [], 'no swap journal left');
});

t.test('restoring over production needs the explicit flag', async (t) => {
  const [entry] = await new LocalBackupStore(dest).list(prod);
  const desired = await w.desired(prod);
  const ctx = w.pulser!.engine.context(desired);
  const code = await codeOf(restoreToEnvironment({ desired, drivers: ctx.drivers, store: new LocalBackupStore(dest), stateDir: path.join(w.root, '.pulser'), commit: 'test', progress: () => undefined }, entry!));
  t.equal(code, 'PULSER_E_RESTORE_PRODUCTION');
});

t.test('a corrupted backup file is refused and the target is untouched', async (t) => {
  const store = new LocalBackupStore(dest);
  const desired = await w.desired(prod);
  const ctx = w.pulser!.engine.context(desired);
  const at = new Date(Date.now() + 60_000);
  const entry = await takeBackup({ desired, drivers: ctx.drivers, store, commit: 'test', progress: () => undefined }, { id: backupId(prod, at), at, kind: 'manual', reason: 'test' });
  const dump = path.join(entry.dir, 'db.dump');
  const bytes = await readFile(dump);
  bytes[Math.floor(bytes.length / 2)] ^= 0xff;
  await writeFile(dump, bytes);
  await pools.get({ ...PG, database: stgDb }).query(`DELETE FROM res_partner WHERE id > 10`);
  const stgDesired = await w.desired(stg);
  const code = await codeOf(
    restoreToEnvironment({ desired: stgDesired, drivers: ctx.drivers, store, stateDir: path.join(w.root, '.pulser'), commit: 'test', progress: () => undefined }, await store.get(entry.manifest.id)),
  );
  t.equal(code, 'PULSER_E_BACKUP_CORRUPT');
  t.equal((await rowCounts(pools, stgDb)).res_partner, 10, 'the target database was not touched');
  await store.remove(entry.manifest.id);
});

const drillScratches = async () =>
  (await pools.get({ ...PG, database: 'postgres' }).query<{ datname: string }>(`SELECT datname FROM pg_database WHERE datname LIKE $1`, [`pulser_drill_${prod.replace(/-/g, '_')}%`])).map((r) => r.datname);

t.test('a drill reads the checksums beside pg_restore: a corrupt file fails it as corrupt, no scratch database left', async (t) => {
  const store = new LocalBackupStore(dest);
  const desired = await w.desired(prod);
  const ctx = w.pulser!.engine.context(desired);
  const at = new Date(Date.now() + 240_000);
  const entry = await takeBackup({ desired, drivers: ctx.drivers, store, commit: 'test', progress: () => undefined }, { id: backupId(prod, at), at, kind: 'manual', reason: 'test' });
  t.teardown(() => store.remove(entry.manifest.id));
  const dump = path.join(entry.dir, 'db.dump');
  const good = await readFile(dump);
  const flipped = Buffer.from(good);
  flipped[Math.floor(flipped.length / 2)] ^= 0xff;
  // Trailing bytes pg_restore does not read: the restore itself succeeds, the checksum does not.
  const extended = Buffer.concat([good, Buffer.from('trailing bytes')]);
  for (const [what, bytes] of [
    ['a byte flipped', flipped],
    ['bytes appended', extended],
  ] as const) {
    await writeFile(dump, bytes);
    const rec = await drill({ desired, drivers: ctx.drivers, store, progress: () => undefined }, await store.get(entry.manifest.id));
    t.equal(rec.ok, false, what);
    t.equal(rec.error?.code, 'PULSER_E_BACKUP_CORRUPT', `${what}: ${rec.error?.message ?? 'no error'}`);
    t.same(await drillScratches(), [], `${what}: the scratch database was dropped`);
    t.equal((await store.get(entry.manifest.id)).drill?.error?.code, 'PULSER_E_BACKUP_CORRUPT', `${what}: the failed drill is recorded`);
  }
  await writeFile(dump, good);
  const rec = await drill({ desired, drivers: ctx.drivers, store, progress: () => undefined }, await store.get(entry.manifest.id));
  t.equal(rec.ok, true, `the intact file drills: ${JSON.stringify(rec.error)}`);
});

t.test('a drill whose restored row counts differ from the manifest fails with the tables that differ', async (t) => {
  const store = new LocalBackupStore(dest);
  const desired = await w.desired(prod);
  const ctx = w.pulser!.engine.context(desired);
  const at = new Date(Date.now() + 300_000);
  const entry = await takeBackup({ desired, drivers: ctx.drivers, store, commit: 'test', progress: () => undefined }, { id: backupId(prod, at), at, kind: 'manual', reason: 'test' });
  t.teardown(() => store.remove(entry.manifest.id));
  t.equal(entry.manifest.rowCounts['public.res_partner'], 500);
  const rowCounts = { ...entry.manifest.rowCounts, 'public.res_partner': 501, 'public.not_restored': 3 };
  const rec = await drill({ desired, drivers: ctx.drivers, store, progress: () => undefined }, { ...entry, manifest: { ...entry.manifest, rowCounts } });
  t.equal(rec.ok, false);
  t.equal(rec.error?.code, 'PULSER_E_DRILL_MISMATCH', rec.error?.message ?? 'no error');
  t.same(rec.mismatches, [
    { table: 'public.res_partner', manifest: 501, restored: 500 },
    { table: 'public.not_restored', manifest: 3, restored: null },
  ]);
  t.same(await drillScratches(), [], 'the scratch database was dropped');
});

t.test("the manifest's counting settings last for the snapshot transaction only", async (t) => {
  const db = pools.get({ ...PG, database: prodDb });
  const settings = `SELECT current_setting('max_parallel_workers_per_gather') AS workers, current_setting('jit') AS jit`;
  const [before] = await db.query(settings);
  t.not(before!.workers, '0', "the server's own setting allows parallel workers");
  const inside = await db.transaction(async (q) => {
    await q(SQL.serialCounts);
    return (await q(settings))[0];
  });
  t.same(inside, { workers: '0', jit: 'off' });
  t.same((await db.transaction(async (q) => q(settings)))[0], before, 'the next transaction on the connection has the server\'s settings again');
});

t.test('the destination fills up mid-backup: coded error, no partial, older backups untouched', async (t) => {
  const mnt = await mkdtemp(path.join(tmpdir(), 'pulser-full-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=520k', 'tmpfs', mnt]);
  t.teardown(async () => {
    execFileSync('umount', [mnt]);
    await rm(mnt, { recursive: true, force: true });
  });
  const [older] = await new LocalBackupStore(dest).list(prod);
  await mkdir(path.join(mnt, prod));
  await cp(older!.dir, path.join(mnt, prod, older!.manifest.id), { recursive: true });
  const store = new LocalBackupStore(mnt);
  const desired = await w.desired(prod);
  const ctx = w.pulser!.engine.context(desired);
  const at = new Date(Date.now() + 120_000);
  const code = await codeOf(takeBackup({ desired, drivers: ctx.drivers, store, commit: 'test', progress: () => undefined }, { id: backupId(prod, at), at, kind: 'manual', reason: 'test' }));
  t.equal(code, 'PULSER_E_BACKUP_NO_SPACE');
  t.same(await noPartials(path.join(mnt, prod)), []);
  const list = await store.list(prod);
  t.same(list.map((e) => e.manifest.id), [older!.manifest.id], 'only the older backup is there');
  await store.verify(list[0]!);
  t.pass('the older backup still matches its manifest');
});

t.test('PostgreSQL cuts pg_dump off mid-dump: coded error, no partial', async (t) => {
  const db = pools.get({ ...PG, database: prodDb });
  await db.query(`CREATE TABLE big_padding AS SELECT g AS id, md5(g::text) || md5((g + 1)::text) || md5((g + 2)::text) AS pad FROM generate_series(1, 400000) g`, [], { timeoutMs: 120_000 });
  t.teardown(() => db.query('DROP TABLE IF EXISTS big_padding'));
  const store = new LocalBackupStore(dest);
  const before = (await store.list(prod)).map((e) => e.manifest.id);
  const desired = await w.desired(prod);
  const ctx = w.pulser!.engine.context(desired);
  const at = new Date(Date.now() + 180_000);
  const id = backupId(prod, at);
  const admin = pools.get({ ...PG, database: 'postgres' });
  let killed = 0;
  const killer = (async () => {
    for (let i = 0; i < 2000 && killed === 0; i++) {
      const rows = await admin.query<{ ok: boolean }>(`SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE application_name = $1 AND state = 'active' AND query LIKE 'COPY%'`, [`pulser-backup ${id}`]);
      killed += rows.filter((r) => r.ok).length;
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  const code = await codeOf(takeBackup({ desired, drivers: ctx.drivers, store, commit: 'test', progress: () => undefined }, { id, at, kind: 'manual', reason: 'test' }));
  await killer;
  t.equal(killed, 1, "pg_dump's backend was terminated while copying");
  t.equal(code, 'PULSER_E_BACKUP_FAILED');
  t.same(await noPartials(path.join(dest, prod)), []);
  t.same((await store.list(prod)).map((e) => e.manifest.id), before, 'older backups untouched');
});

t.test('a production rollout takes a pre-change backup first, and does not start when it fails', async (t) => {
  await writeEnvs({ prodImage: 'pulser-demo/odoo:17.0.2' });
  const [plan] = await w.pass(prod, 'plan');
  t.equal(plan!.plan.changes[0]!.reconciler, 'backups');
  t.equal(plan!.plan.changes[0]!.gate, true);
  t.match(plan!.plan.changes[0]!.summary, /^pre-change backup /);
  t.match(plan!.plan.changes[0]!.reason, /image pulser-demo\/odoo:17.0.1 → pulser-demo\/odoo:17.0.2/);
  const before = (await new LocalBackupStore(dest).list(prod)).map((e) => e.manifest.id);
  const [rec] = await w.pass(prod);
  // The new backup pushes the older one of the same day out of retention; the drilled backup
  // leaving, the new one is drilled: all within this pass, which converges.
  t.equal(rec!.outcome, 'applied', JSON.stringify(rec!.errors));
  t.same(rec!.apply.map((a) => [a.subject.split('/')[1], a.action, a.outcome]), [
    ['backups', 'create', 'applied'],
    ['containers', 'update', 'applied'],
    ['backups', 'run', 'applied'],
    ['backups', 'delete', 'applied'],
  ]);
  t.equal(rec!.driftAfter, 0);
  t.same(rec!.apply[3]!.subject, `${prod}/backups/${before[0]}`);
  const [next] = await w.pass(prod);
  t.equal(next!.outcome, 'in-sync', JSON.stringify(next!.errors));
  t.same(next!.apply, []);
  const newest = (await new LocalBackupStore(dest).list(prod))[0]!;
  t.equal(newest.manifest.kind, 'pre-change');
  t.equal(rec!.apply[0]!.detail?.id, newest.manifest.id);

  const blocker = path.join(w.root, 'not-a-folder');
  await writeFile(blocker, 'x');
  await writeEnvs({ prodImage: 'pulser-demo/odoo:17.0.3', prodBackup: blocker });
  const [failed] = await w.pass(prod);
  t.equal(failed!.outcome, 'failed');
  const [backup, rollout] = failed!.apply;
  t.equal(backup!.outcome, 'failed');
  t.equal(backup!.error?.code, 'PULSER_E_BACKUP_DESTINATION');
  t.equal(rollout!.outcome, 'skipped');
  t.equal(rollout!.error?.code, 'PULSER_E_DEPENDENCY_FAILED');
  const running = (await w.containersOf(prod)).filter((c) => c.State === 'running').map((c) => c.Image);
  t.same(running, ['pulser-demo/odoo:17.0.2'], 'the rollout did not start');
});
