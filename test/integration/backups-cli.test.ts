// `pulser backup`, `pulser backups` and `pulser restore` run as child processes against the real
// PostgreSQL cluster: a backup taken, listed, restored into another environment; production
// refused without the flag; usage errors.
import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { World, suffix, freePort } from '../helpers/world.ts';
import { PgPools } from '../../src/drivers/postgres.ts';
import { createOdooDb, dropDb, envYaml, PG, rowCounts } from '../helpers/odoo-db.ts';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const bin = path.join(repo, 'bin', 'pulser.js');
const sfx = suffix();
const prod = `clp-${sfx}`;
const stg = `cls-${sfx}`;
const prodDb = `clp_${sfx}`;
const stgDb = `cls_${sfx}`;
const pools = new PgPools();
const dest = await mkdtemp(path.join(tmpdir(), 'pulser-cli-backups-'));
const w = await World.create();
t.teardown(async () => {
  await w.cleanup();
  await dropDb(pools, prodDb);
  await dropDb(pools, stgDb);
  await pools.close();
  await rm(dest, { recursive: true, force: true });
});

// The database only: these environments have no Odoo container to read a filestore from.
const policy = `backup:\n  schedule: "0 3 * * *"\n  filestore: false\n  destination: { type: local, path: ${dest} }\n`;
await createOdooDb(pools, prodDb, 300);
await createOdooDb(pools, stgDb, 5);
await w.writeFile(`environments/${prod}.yaml`, envYaml({ name: prod, tier: 'production', port: await freePort(), database: prodDb, extra: policy }));
await w.writeFile(`environments/${stg}.yaml`, envYaml({ name: stg, tier: 'staging', port: await freePort(), database: stgDb }));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function pulser(args: string[], timeoutMs = 120_000): Promise<Run> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of ['PULSER_DIR', 'PULSER_LISTEN', 'PULSER_CONCURRENCY', 'PULSER_LOG_LEVEL', 'PULSER_SECRETS_FILE']) delete env[k];
  const child = spawn(process.execPath, [bin, ...args, '--dir', w.root], { cwd: repo, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  return new Promise<Run>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

function exits(t: Test, r: Run, code: number): void {
  t.equal(r.code, code, `exit ${code}`, { stdout: r.stdout, stderr: r.stderr });
}

let id = '';

t.test('backup <env>: takes a backup, shows progress lines, prints the id and size', async (t) => {
  const r = await pulser(['backup', prod]);
  exits(t, r, 0);
  const m = new RegExp(`^backup (${prod}-\\d{8}T\\d{6}Z): [0-9.]+ (B|KiB|MiB) in [0-9.]+ s \\([0-9.]+ (B|KiB|MiB)/s\\) → ${dest}/${prod}/`, 'm').exec(r.stdout);
  t.ok(m, 'the backup line', { stdout: r.stdout });
  id = m?.[1] ?? '';
  // Not a terminal: progress comes as plain lines on stderr, no carriage returns.
  t.match(r.stderr, new RegExp(`^progress ${prod}: backup ${id}: dumping ${prodDb}$`, 'm'));
  t.notMatch(r.stderr, /\r/);
});

t.test('backups [env]: a table, and --json with age, size and verification', async (t) => {
  const [table, json, all] = await Promise.all([pulser(['backups', prod]), pulser(['backups', prod, '--json']), pulser(['backups'])]);
  exits(t, table, 0);
  t.match(table.stdout, /^ID\s+KIND\s+AGE\s+SIZE\s+VERIFIED$/m);
  t.match(table.stdout, new RegExp(`^${id}\\s+manual\\s+\\d+[smh] ago\\s+[0-9.]+ (KiB|MiB)\\s+-$`, 'm'));
  exits(t, json, 0);
  const parsed = JSON.parse(json.stdout) as { backups: Array<Record<string, unknown>> };
  t.equal(parsed.backups.length, 1);
  t.match(parsed.backups[0], { env: prod, id, kind: 'manual', database: prodDb, verified: null, drill: null });
  t.ok((parsed.backups[0]!.bytes as number) > 1000);
  t.ok((parsed.backups[0]!.ageSeconds as number) >= 0);
  exits(t, all, 0);
  t.match(all.stdout, new RegExp(`^${id}\\s`, 'm'), 'every environment with a policy is listed');
});

t.test('restore <id> --to <env>: the other environment gets the backup', async (t) => {
  await pools.get({ ...PG, database: prodDb }).query(`DELETE FROM res_partner WHERE id > 100`);
  const r = await pulser(['restore', id, '--to', stg]);
  exits(t, r, 0);
  t.match(r.stdout, new RegExp(`^restored ${id} into ${stg} \\(database ${stgDb}\\)`, 'm'));
  t.equal((await rowCounts(pools, stgDb)).res_partner, 300, 'the rows of the backup, not of production now');
  t.equal((await rowCounts(pools, prodDb)).res_partner, 100, 'the source is untouched');
});

t.test('restore over production without --force-production: exit 1 with the code, nothing touched', async (t) => {
  const r = await pulser(['restore', id, '--to', prod]);
  exits(t, r, 1);
  t.match(r.stderr, /^pulser: PULSER_E_RESTORE_PRODUCTION: /m);
  t.equal((await rowCounts(pools, prodDb)).res_partner, 100);
});

t.test('usage errors exit 2; unknown backups and environments exit 1', async (t) => {
  const [noTarget, badId, missing, noPolicy] = await Promise.all([
    pulser(['restore', id]),
    pulser(['restore', 'yesterday', '--to', stg]),
    pulser(['restore', `${prod}-20200101T000000Z`, '--to', stg]),
    pulser(['backup', stg]),
  ]);
  for (const r of [noTarget, badId]) {
    exits(t, r, 2);
    t.match(r.stderr, /^pulser: PULSER_E_USAGE: /m);
  }
  t.match(badId.stderr, /"yesterday" is not a backup id/);
  exits(t, missing, 1);
  t.match(missing.stderr, /^pulser: PULSER_E_BACKUP_NOT_FOUND: /m);
  exits(t, noPolicy, 1);
  t.match(noPolicy.stderr, /^pulser: PULSER_E_BACKUP_POLICY: .*has no backup section/m);
});
