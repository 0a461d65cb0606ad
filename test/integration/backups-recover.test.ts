// Instant recovery cut short and refused, on the real PostgreSQL cluster and Docker engine: a swap
// interrupted at each of its steps (a fault injected by wrapping the real driver and overriding one
// method, and the CLI killed with SIGKILL) is finished by the next `pulser restore`; a backup under
// which the environment fails its health probe is swapped back, leaving the original data live.
//
// The Odoo container serves its own filestore over HTTP and its health path is a file of the live
// database's filestore, so the probe passes or fails on the data that was swapped in.
import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { World, suffix, freePort, httpGet } from '../helpers/world.ts';
import { PgPools } from '../../src/drivers/postgres.ts';
import type { Db } from '../../src/drivers/postgres.ts';
import type { Drivers } from '../../src/drivers/index.ts';
import type { DockerDriver } from '../../src/drivers/docker.ts';
import { PulserError } from '../../src/errors.ts';
import { createOdooDb, dropDb, PG, putFilestore, readFilestore, rowCounts } from '../helpers/odoo-db.ts';
import { LocalBackupStore, restoreToEnvironment, takeBackup, backupId, type BackupEntry } from '../../reconcilers/backups/index.ts';
import type { DesiredEnv } from '../../src/spec/model.ts';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const bin = path.join(repo, 'bin', 'pulser.js');
const sfx = suffix();
const env = `rcv-${sfx}`;
const db = `rcv_${sfx}`;
const container = `pulser-${env}-odoo`;
const pools = new PgPools();
const admin = pools.get({ ...PG, database: 'postgres' });
const dest = await mkdtemp(path.join(tmpdir(), 'pulser-recover-'));
const w = await World.create();
const port = await freePort();
const stateDir = path.join(w.root, '.pulser');
const journals = path.join(stateDir, 'restores');

t.teardown(async () => {
  await w.docker.getContainer(container).remove({ force: true }).catch(() => undefined);
  await w.cleanup();
  for (const r of await leftovers()) await dropDb(pools, r);
  await dropDb(pools, db);
  await pools.close();
  await rm(dest, { recursive: true, force: true });
});

/** The environment: busybox httpd serving the container's root, health on `healthPath`. */
async function writeEnv(healthPath: string, retries: number, backups = true): Promise<void> {
  const yaml = [
    `name: ${env}`,
    'tier: staging',
    'host: local',
    'sync: { auto: true, interval: 1h }',
    'odoo:',
    '  image: pulser-demo/odoo:17.0.1',
    `  command: ["sh", "-c", "mkdir -p /var/lib/odoo/filestore && exec httpd -f -p 8069 -h /"]`,
    `  port: ${port}`,
    `  health: { path: ${healthPath}, interval: 100ms, timeout: 1s, retries: ${retries} }`,
    'database:',
    `  name: ${db}`,
    `  host: ${PG.address}`,
    `  port: ${PG.port}`,
    `  user: ${PG.user}`,
    ...(backups ? ['backup:', '  schedule: "0 3 * * *"', `  destination: { type: local, path: ${dest} }`, '  verify: never'] : []),
  ].join('\n');
  await w.writeFile(`environments/${env}.yaml`, yaml + '\n');
}

async function desired(): Promise<DesiredEnv> {
  const l = (await w.pulser!.load()).envs.get(env);
  if (!l?.ok) throw new Error(`${env} does not load: ${JSON.stringify(l)}`);
  return l.desired;
}

async function leftovers(): Promise<string[]> {
  const rows = await admin.query<{ datname: string }>(`SELECT datname FROM pg_database WHERE datname LIKE $1 ORDER BY datname`, [`pulser_%${env.replace(/-/g, '_')}%`]);
  return rows.map((r) => r.datname);
}

async function folders(): Promise<string[]> {
  const r = await w.pulser!.engine.context(await desired()).drivers.docker('local').exec(container, ['ls', '/var/lib/odoo/filestore'], { timeoutMs: 10_000, maxOutputBytes: 4096 });
  return r.output.split(/\s+/).filter(Boolean).sort();
}

async function removeFile(rel: string): Promise<void> {
  await w.pulser!.engine.context(await desired()).drivers.docker('local').exec(container, ['rm', '-f', `/var/lib/odoo/filestore/${db}/${rel}`], { timeoutMs: 10_000, maxOutputBytes: 4096 });
}

const partners = async () => (await rowCounts(pools, db)).res_partner;
const allowsConnections = async () => (await admin.query<{ ok: boolean }>(`SELECT datallowconn AS ok FROM pg_database WHERE datname = $1`, [db]))[0]?.ok;

async function codeOf(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await p;
  } catch (err) {
    return err instanceof PulserError ? { code: err.code, message: err.message } : { code: 'uncoded', message: String(err) };
  }
  return { code: 'no error', message: '' };
}

/** The environment holds exactly the data of `expected`, and nothing of the swap is left behind. */
async function converged(t: Test, expected: { partners: number; files: Record<string, string> }): Promise<void> {
  t.equal(await partners(), expected.partners, 'the live database holds the expected rows');
  t.equal(await allowsConnections(), true, 'the live database accepts connections');
  t.same(await readFilestore(w.docker, container, db), expected.files, 'the live filestore holds the expected files');
  t.same(await leftovers(), [], 'no pulser_in_/pulser_prev_ database left');
  t.same(await folders(), [db], 'no other filestore folder left');
  t.same(await readdir(journals).catch(() => []), [], 'no journal left');
  t.equal((await httpGet(`http://127.0.0.1:${port}/var/lib/odoo/filestore/${db}/ok`))?.status, 200, 'the environment answers its health path');
}

// Odoo's state before each restore: different rows and one more file than the good backup.
async function drift(): Promise<void> {
  await pools.get({ ...PG, database: db }).query(`DELETE FROM res_partner WHERE id > 50`);
  await putFilestore(w.docker, container, db, { 'ok': 'ok', 'gh/gh04': `drift ${Date.now()}` });
}

function ctxFor(d: DesiredEnv, drivers: Drivers) {
  return { desired: d, drivers, store: new LocalBackupStore(dest), stateDir, commit: 'test', progress: () => undefined };
}

await createOdooDb(pools, db, 300);
await writeEnv('/www/web/health', 50, false);
w.start();
const [first] = await w.pass(env);
if (first!.outcome !== 'applied') throw new Error(`the environment did not come up: ${JSON.stringify(first!.errors)}`);
// From here on the health path is a file of the live filestore.
await writeEnv(`/var/lib/odoo/filestore/${db}/ok`, 20);
await putFilestore(w.docker, container, db, { 'ok': 'ok', 'ab/ab01': 'invoice 1', 'cd/cd02': 'x'.repeat(200_000) });
const goodFiles = (await readFilestore(w.docker, container, db))!;
const store = new LocalBackupStore(dest);

async function backup(offsetMs: number): Promise<BackupEntry> {
  const d = await desired();
  const at = new Date(Date.now() + offsetMs);
  return takeBackup({ desired: d, drivers: w.pulser!.engine.context(d).drivers, store, commit: 'test', progress: () => undefined }, { id: backupId(env, at), at, kind: 'manual', reason: 'test' });
}

const good = await backup(0);
// The bad backup: other rows, and no `ok` in its filestore, so the probe fails on it.
await pools.get({ ...PG, database: db }).query(`DELETE FROM res_partner WHERE id > 120`);
await removeFile('ok');
const bad = await backup(60_000);

/** A driver set whose one method fails, standing in for a crash at that point of the swap. */
function faulty(real: Drivers, point: string): Drivers {
  const d = Object.create(real) as Drivers;
  const crash = () => new Error(`crash ${point}`);
  if (point === 'before the rename') {
    d.db = (host, target) => {
      const inner = real.db(host, target);
      if (target.database !== 'postgres') return inner;
      const wrapped = Object.create(inner) as Db;
      wrapped.transaction = async () => {
        throw crash();
      };
      return wrapped;
    };
  } else {
    d.docker = (host) => {
      const inner = real.docker(host);
      const wrapped = Object.create(inner) as DockerDriver;
      if (point === 'after the rename') {
        wrapped.exec = async (id, argv, opts) => {
          if (argv[0] === 'sh') throw crash();
          return inner.exec(id, argv, opts);
        };
      } else if (point === 'after the filestore move') {
        wrapped.stop = async () => {
          throw crash();
        };
      } else {
        wrapped.exec = async (id, argv, opts) => {
          if (argv[0] === 'rm') throw crash();
          return inner.exec(id, argv, opts);
        };
      }
      return wrapped;
    };
  }
  return d;
}

for (const point of ['before the rename', 'after the rename', 'after the filestore move', 'after the probe, before the cleanup']) {
  t.test(`a swap cut short ${point}: the next restore finishes it`, async (t) => {
    await drift();
    const d = await desired();
    const real = w.pulser!.engine.context(d).drivers;
    const cut = await codeOf(restoreToEnvironment(ctxFor(d, faulty(real, point)), good));
    t.equal(cut.code, 'PULSER_E_RESTORE_FAILED');
    t.match(cut.message, new RegExp(`crash ${point}.*the journal .*${env}\\.json lets \`pulser restore\` finish it`));
    t.same(await readdir(journals), [`${env}.json`], 'the journal is left for the next run');
    const live = await admin.query(`SELECT 1 FROM pg_database WHERE datname = $1`, [db]);
    t.equal(live.length, 1, 'a database of the live name exists at every point');

    const progress: string[] = [];
    const res = await restoreToEnvironment({ ...ctxFor(d, real), progress: (m) => progress.push(m) }, good);
    t.equal(res.resumed, true, 'the re-run finished the swap instead of restoring again');
    // Once the probe has passed, the swap is kept: the re-run only drops the previous copy.
    const probed = point === 'after the probe, before the cleanup';
    t.equal(progress.some((m) => m.startsWith('restarting ')), !probed, probed ? 'no second restart' : 'Odoo restarted on the restored data');
    await converged(t, { partners: 300, files: goodFiles });
  });
}

t.test('a restore cut short while copying the filestore: the next restore drops the half-built copy and restores', async (t) => {
  await drift();
  const d = await desired();
  const real = w.pulser!.engine.context(d).drivers;
  // The copy fails and so does dropping it: what a crash at that point leaves behind.
  const cut = Object.create(real) as Drivers;
  cut.docker = (host) => {
    const inner = real.docker(host);
    const wrapped = Object.create(inner) as DockerDriver;
    wrapped.archiveIn = async () => {
      throw new Error('crash while copying');
    };
    return wrapped;
  };
  cut.db = (host, target) => {
    const inner = real.db(host, target);
    const wrapped = Object.create(inner) as Db;
    wrapped.query = async (sql, params, opts) => {
      if (sql.startsWith('DROP DATABASE')) throw new Error('crash while copying');
      return inner.query(sql, params, opts);
    };
    return wrapped;
  };
  t.match(await codeOf(restoreToEnvironment(ctxFor(d, cut), good)), { code: 'PULSER_E_RESTORE_FAILED' });
  t.same(await readdir(journals), [`${env}.json`], 'the journal names the half-built copy');
  t.match(await leftovers(), [/^pulser_in_/], 'the half-built database is there');
  t.equal(await partners(), 50, 'the live database is untouched');
  const res = await restoreToEnvironment(ctxFor(d, real), good);
  t.equal(res.resumed, false, 'the backup was restored afresh');
  await converged(t, { partners: 300, files: goodFiles });
});

t.test('the CLI killed with SIGKILL during the swap: `pulser restore` run again finishes it', async (t) => {
  await drift();
  const killed = await cli(['restore', good.manifest.id, '--to', env], /: restarting /);
  t.equal(killed.signal, 'SIGKILL', 'killed on its restart line', { stderr: killed.stderr });
  t.same(await readdir(journals), [`${env}.json`]);
  const again = await cli(['restore', good.manifest.id, '--to', env]);
  t.equal(again.code, 0, 'the re-run succeeds', { stderr: again.stderr, stdout: again.stdout });
  t.match(again.stderr, new RegExp(`^progress ${env}: finishing the restore of ${good.manifest.id} into ${env} that was cut short$`, 'm'));
  t.match(again.stdout, new RegExp(`^restored ${good.manifest.id} into ${env} \\(database ${db}\\)`, 'm'));
  await converged(t, { partners: 300, files: goodFiles });
});

t.test('a restore under which the probe fails is swapped back: the original data stays live', async (t) => {
  await drift();
  const original = { partners: await partners(), files: (await readFilestore(w.docker, container, db))! };
  t.equal(original.partners, 50);
  t.ok(original.files['gh/gh04'], 'the original filestore has its own file');
  t.notOk(bad.manifest.files.filestore === null, 'the bad backup has a filestore');
  const progress: string[] = [];
  const d = await desired();
  const res = await codeOf(restoreToEnvironment({ ...ctxFor(d, w.pulser!.engine.context(d).drivers), progress: (m) => progress.push(m) }, bad));
  t.equal(res.code, 'PULSER_E_RESTORE_FAILED');
  t.match(res.message, /did not pass its health probe on the restored database; the previous database and filestore were swapped back/);
  t.ok(progress.some((m) => /is not healthy on the restored database: swapping the previous one back/.test(m)), 'the swap back was reported');
  await converged(t, original);
});

t.test('a swap back cut short after its rename: the next restore finishes swapping back', async (t) => {
  await drift();
  const original = { partners: await partners(), files: (await readFilestore(w.docker, container, db))! };
  const d = await desired();
  const real = w.pulser!.engine.context(d).drivers;
  // The first folder swap puts the bad filestore in; the second, swapping it back, dies.
  const cutBack = Object.create(real) as Drivers;
  let swaps = 0;
  cutBack.docker = (host) => {
    const inner = real.docker(host);
    const wrapped = Object.create(inner) as DockerDriver;
    wrapped.exec = async (id, argv, opts) => {
      if (argv[0] === 'sh' && ++swaps === 2) throw new Error('crash while swapping back');
      return inner.exec(id, argv, opts);
    };
    return wrapped;
  };
  const cut = await codeOf(restoreToEnvironment(ctxFor(d, cutBack), bad));
  t.equal(cut.code, 'PULSER_E_RESTORE_FAILED');
  t.match(cut.message, /crash while swapping back/);
  t.equal(await partners(), original.partners, 'the original database is live again already');
  t.same(await readdir(journals), [`${env}.json`]);
  const again = await codeOf(restoreToEnvironment(ctxFor(d, real), bad));
  t.equal(again.code, 'PULSER_E_RESTORE_FAILED');
  t.match(again.message, new RegExp(`an earlier restore of ${bad.manifest.id} into ${env} left the environment unhealthy; the previous database and filestore were swapped back`));
  await converged(t, original);
});

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** `pulser ARGS` as a child process; with `killOn`, SIGKILL as soon as a stderr line matches. */
function cli(args: string[], killOn?: RegExp): Promise<Run> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of ['PULSER_DIR', 'PULSER_LISTEN', 'PULSER_CONCURRENCY', 'PULSER_LOG_LEVEL', 'PULSER_SECRETS_FILE']) delete env[k];
  // tap's per-process coverage hook makes each CLI start-up half as long again; these runs are
  // about what the CLI does and prints.
  delete env.NODE_OPTIONS;
  const child = spawn(process.execPath, [bin, ...args, '--dir', w.root], { cwd: repo, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
  child.stderr.setEncoding('utf8').on('data', (s: string) => {
    stderr += s;
    if (killOn && killOn.test(stderr)) child.kill('SIGKILL');
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}
