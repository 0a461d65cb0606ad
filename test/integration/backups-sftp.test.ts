// Backups kept on another host over SFTP: a host in its own network namespace running only sshd,
// declared in hosts.yaml like any ssh host. A scheduled backup and its drill land there, a restore
// from there gives identical rows and files, and the faults leave nothing half-written: a full
// remote file system, the SSH connection dropped mid-upload, a corrupted remote file, a
// destination path that is not a folder.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { World, suffix, freePort, codeOf } from '../helpers/world.ts';
import { RemoteHosts } from '../helpers/remote-hosts.ts';
import { PgPools } from '../../src/drivers/postgres.ts';
import { PulserError } from '../../src/errors.ts';
import { createOdooDb, dropDb, envYaml, PG, putFilestore, readFilestore, rowCounts } from '../helpers/odoo-db.ts';
import { SftpBackupStore, restoreToEnvironment, takeBackup, backupId } from '../../reconcilers/backups/index.ts';
import { hashFile } from '../../reconcilers/backups/store.ts';
import { ensureDemoImages } from '../../src/demo/images.ts';

const sfx = suffix();
const prod = `bsp-${sfx}`;
const stg = `bss-${sfx}`;
const prodDb = `bsp_${sfx}`;
const stgDb = `bss_${sfx}`;
const pools = new PgPools();
const hosts = await RemoteHosts.up('sftp', 1, [], { docker: false });
t.teardown(() => hosts.down());
// The namespace host shares this machine's file system: the test reads what sshd wrote directly.
const remoteRoot = await mkdtemp(path.join(tmpdir(), 'pulser-sftp-dest-'));
const dest = path.join(remoteRoot, 'backups');
// Restores copy the backup into $TMPDIR first; a folder of the test's own shows they clean up.
const localTmp = await mkdtemp(path.join(tmpdir(), 'pulser-sftp-tmp-'));
const savedTmp = process.env.TMPDIR;
process.env.TMPDIR = localTmp;
const w = await World.create({ hostsYaml: `hosts:\n  local:\n    kind: local\n${hosts.hostsYaml().replace(/^hosts:\n/, '').replace('  h1:', '  vault:')}` });
await ensureDemoImages(w.docker);
const prodPort = await freePort();
const stgPort = await freePort();
const files = { 'ab/ab01': 'invoice 1', 'cd/cd02': randomBytes(300_000), 'ef/ef03': 'logo' };
const sftpSection = (root: string) => `backup:\n  schedule: "0 3 * * *"\n  timezone: Europe/Berlin\n  retention: { daily: 2, weekly: 0, monthly: 0 }\n  destination: { type: sftp, host: vault, path: ${root} }\n  verify: weekly\n`;

t.teardown(async () => {
  await w.cleanup();
  await dropDb(pools, prodDb);
  await dropDb(pools, stgDb);
  await pools.close();
  if (savedTmp === undefined) delete process.env.TMPDIR;
  else process.env.TMPDIR = savedTmp;
  await rm(remoteRoot, { recursive: true, force: true });
  await rm(localTmp, { recursive: true, force: true });
});

async function writeEnvs(backupRoot: string | null): Promise<void> {
  await w.writeFile(`environments/${prod}.yaml`, envYaml({ name: prod, tier: 'production', port: prodPort, database: prodDb, extra: backupRoot === null ? '' : sftpSection(backupRoot) }));
  await w.writeFile(`environments/${stg}.yaml`, envYaml({ name: stg, tier: 'staging', port: stgPort, database: stgDb }));
}

const store = (root = dest) => new SftpBackupStore('vault', root, w.pulser!.drivers());
const partials = async (dir: string) => (await readdir(dir).catch(() => [] as string[])).filter((n) => n.endsWith('.partial'));
const tmpLeft = async () => (await readdir(localTmp)).filter((n) => n.startsWith('pulser-restore-'));

async function backupNow(root: string, offsetMs: number) {
  const desired = await w.desired(prod);
  const ctx = w.pulser!.engine.context(desired);
  const at = new Date(Date.now() + offsetMs);
  return takeBackup({ desired, drivers: ctx.drivers, store: store(root), commit: 'test', progress: () => undefined }, { id: backupId(prod, at), at, kind: 'manual', reason: 'test' });
}

await createOdooDb(pools, prodDb, 500);
await createOdooDb(pools, stgDb, 7);
await writeEnvs(null);
w.start();

t.test('a scheduled backup and its drill land on the SFTP host', async (t) => {
  for (const rec of await w.pass()) t.equal(rec.outcome, 'applied', JSON.stringify(rec.errors));
  await putFilestore(w.docker, `pulser-${prod}-odoo`, prodDb, files);
  await writeEnvs(dest);
  const [rec] = await w.pass(prod);
  t.equal(rec!.outcome, 'applied', JSON.stringify(rec!.errors));
  t.same(rec!.apply.map((a) => [a.subject.split('/')[1], a.action, a.outcome]), [
    ['backups', 'create', 'applied'],
    ['backups', 'run', 'applied'],
  ]);
  t.equal(rec!.driftAfter, 0, 'nothing due after the backup and its drill');

  const [entry, ...rest] = await store().list(prod);
  t.equal(rest.length, 0);
  const m = entry!.manifest;
  t.equal(entry!.dir, `vault:${dest}/${prod}/${m.id}`, 'the backup is named by host and folder');
  const folder = path.join(dest, prod, m.id);
  t.same((await readdir(folder)).sort(), ['db.dump', 'drill.json', 'filestore.tar', 'manifest.json']);
  t.same(await hashFile(path.join(folder, 'db.dump')), { bytes: m.files.dump.bytes, sha256: m.files.dump.sha256 }, 'the dump on the host matches its manifest');
  t.same(await hashFile(path.join(folder, 'filestore.tar')), { bytes: m.files.filestore!.bytes, sha256: m.files.filestore!.sha256 });
  t.equal(m.rowCounts['public.res_partner'], 500);
  t.equal(entry!.drill?.ok, true, JSON.stringify(entry!.drill));
  t.same(await tmpLeft(), [], "the drill's local copy was removed");
  t.same(w.pulser!.engine.status.get(prod)!.lastBackup, { id: m.id, at: m.at, size: entry!.bytes, verified: true });
});

t.test('restored from the SFTP host into another environment: identical rows and files', async (t) => {
  const [entry] = await store().list(prod);
  const desired = await w.desired(stg);
  const ctx = w.pulser!.engine.context(desired);
  t.equal((await rowCounts(pools, stgDb)).res_partner, 7);
  const progress: string[] = [];
  const res = await restoreToEnvironment({ desired, drivers: ctx.drivers, store: store(), stateDir: path.join(w.root, '.pulser'), commit: 'test', progress: (m) => progress.push(m) }, entry!);
  t.equal(res.database, stgDb);
  t.same(await rowCounts(pools, stgDb), await rowCounts(pools, prodDb));
  const restored = await readFilestore(w.docker, `pulser-${stg}-odoo`, stgDb);
  t.same(restored, await readFilestore(w.docker, `pulser-${prod}-odoo`, prodDb));
  t.equal(Object.keys(restored!).length, 3);
  t.ok(
    progress.some((m) => m.startsWith(`copying db.dump of ${entry!.manifest.id} from vault:`)),
    'the copy from the host is reported',
  );
  t.same(await tmpLeft(), [], 'the local copy was removed');
});

t.test('a corrupted file on the SFTP host is refused and the target is untouched', async (t) => {
  const entry = await backupNow(dest, 60_000);
  const dump = path.join(dest, prod, entry.manifest.id, 'db.dump');
  const bytes = await readFile(dump);
  bytes[Math.floor(bytes.length / 2)] ^= 0xff;
  await writeFile(dump, bytes);
  await pools.get({ ...PG, database: stgDb }).query(`DELETE FROM res_partner WHERE id > 10`);
  const desired = await w.desired(stg);
  const ctx = w.pulser!.engine.context(desired);
  const code = await codeOf(restoreToEnvironment({ desired, drivers: ctx.drivers, store: store(), stateDir: path.join(w.root, '.pulser'), commit: 'test', progress: () => undefined }, await store().get(entry.manifest.id)));
  t.equal(code, 'PULSER_E_BACKUP_CORRUPT');
  t.equal((await rowCounts(pools, stgDb)).res_partner, 10, 'the target database was not touched');
  t.same(await tmpLeft(), [], 'the local copy of the corrupt backup was removed');
  await store().remove(entry.manifest.id);
  t.same(await readdir(path.join(dest, prod)).then((n) => n.includes(entry.manifest.id)), false, 'deleted on the host');
});

t.test('the SFTP host fills up mid-backup: coded error, no partial, older backups untouched', async (t) => {
  const mnt = path.join(remoteRoot, 'small');
  await mkdir(mnt);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=520k', 'tmpfs', mnt]);
  t.teardown(() => execFileSync('umount', [mnt]));
  // An older backup fits; a second one does not.
  const [older] = await store().list(prod);
  await mkdir(path.join(mnt, prod));
  await cp(path.join(dest, prod, older!.manifest.id), path.join(mnt, prod, older!.manifest.id), { recursive: true });
  const code = await codeOf(backupNow(mnt, 120_000));
  t.equal(code, 'PULSER_E_BACKUP_NO_SPACE');
  t.same(await partials(path.join(mnt, prod)), [], 'no partial left on the host');
  const list = await store(mnt).list(prod);
  t.same(
    list.map((e) => e.manifest.id),
    [older!.manifest.id],
    'only the older backup is there',
  );
  await store(mnt).verify(list[0]!);
  t.pass('the older backup still matches its manifest');
});

t.test('the SSH connection drops mid-upload: coded error, and the next backup cleans up and succeeds', async (t) => {
  const db = pools.get({ ...PG, database: prodDb });
  await db.query(`CREATE TABLE big_padding AS SELECT g AS id, md5(random()::text) || md5(random()::text) AS pad FROM generate_series(1, 300000) g`, [], { timeoutMs: 120_000 });
  t.teardown(() => db.query('DROP TABLE IF EXISTS big_padding'));
  const before = (await store().list(prod)).map((e) => e.manifest.id);
  const desired = await w.desired(prod);
  const ctx = w.pulser!.engine.context(desired);
  const at = new Date(Date.now() + 150_000);
  let dropped = false;
  const progress = (m: string) => {
    // Once the dump is streaming to the host, every session of the host is killed.
    if (!dropped && /^dump of .*: \d/.test(m)) {
      dropped = true;
      void hosts.drop('h1');
    }
  };
  const code = await codeOf(takeBackup({ desired, drivers: ctx.drivers, store: store(), commit: 'test', progress }, { id: backupId(prod, at), at, kind: 'manual', reason: 'test' }));
  t.ok(dropped, 'the connection was dropped while the dump was streaming');
  t.equal(code, 'PULSER_E_SSH_UNREACHABLE', 'the lost connection is reported as such (transient: the next pass retries)');
  t.same((await store().list(prod)).map((e) => e.manifest.id), before, 'no new backup, older ones untouched');
  const next = await backupNow(dest, 180_000);
  t.same(await partials(path.join(dest, prod)), [], 'no partial left once the next backup ran');
  await store().verify(next);
  t.ok(next.manifest.rowCounts['public.big_padding'] === 300_000, 'the next backup is complete');
});

t.test('a destination path that is a file: coded error naming the host and path', async (t) => {
  const file = path.join(remoteRoot, 'not-a-folder');
  await writeFile(file, 'x');
  const code = await codeOf(backupNow(file, 210_000));
  t.equal(code, 'PULSER_E_BACKUP_DESTINATION');
  const err = await backupNow(file, 240_000).catch((e: unknown) => e as PulserError);
  t.match((err as PulserError).message, `vault:${file}`);
});
