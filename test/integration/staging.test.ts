// A staging refresh on the real PostgreSQL cluster and Docker engine: production's newest backup
// restored into staging from Odoo's own table definitions, neutralized like `odoo-bin neutralize`,
// anonymized, checked, swapped in; production untouched; the same refresh value does nothing more.
import t from 'tap';
import { readFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { World, suffix, freePort } from '../helpers/world.ts';
import { PgPools } from '../../src/drivers/postgres.ts';
import { dropDb, envYaml, PG } from '../helpers/odoo-db.ts';
import { LocalBackupStore, takeBackup, backupId } from '../../reconcilers/backups/index.ts';
import { FAKE_NAMES } from '../../reconcilers/staging/sql.ts';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const sfx = suffix();
const prod = `sgp-${sfx}`;
const stg = `sgs-${sfx}`;
const prodDb = `sgp_${sfx}`;
const stgDb = `sgs_${sfx}`;
const pools = new PgPools();
const dest = await mkdtemp(path.join(tmpdir(), 'pulser-staging-'));
const w = await World.create();
t.teardown(async () => {
  await w.cleanup();
  await dropDb(pools, prodDb);
  await dropDb(pools, stgDb);
  await pools.close();
  await rm(dest, { recursive: true, force: true });
});

/** A database with Odoo's table definitions and production-like rows. */
async function odooDb(database: string, partners: number): Promise<void> {
  await pools.get({ ...PG, database: 'postgres' }).query(`CREATE DATABASE ${database}`);
  const db = pools.get({ ...PG, database });
  await db.query(await readFile(path.join(repo, 'src', 'odoo', 'tables.sql'), 'utf8'));
  await db.query(`INSERT INTO res_partner (name, email, phone) SELECT 'Customer ' || g, 'customer' || g || '@client.example', '+41 44 ' || g FROM generate_series(1, $1::int) g`, [partners]);
  await db.query(`INSERT INTO res_users (login, partner_id) VALUES ('admin', 1)`);
  await db.query(`INSERT INTO ir_act_server (name, model_name, code) SELECT jsonb_build_object('en_US', n), 'ir.autovacuum', 'model.run()' FROM unnest(ARRAY['Base: Auto-vacuum internal data', 'Mail: Email Queue Manager', 'Digest Emails']) n`);
  await db.query(`INSERT INTO ir_cron (ir_actions_server_id, cron_name, user_id, active, interval_type, nextcall) SELECT id, name->>'en_US', 1, true, 'days', now() FROM ir_act_server ORDER BY id`);
  await db.query(`INSERT INTO ir_model_data (module, name, model, res_id) VALUES ('base', 'autovacuum_job', 'ir.cron', 1), ('mail', 'ir_cron_mail_scheduler_action', 'ir.cron', 2)`);
  await db.query(`INSERT INTO ir_mail_server (name, smtp_host, smtp_user, active) VALUES ('Office 365', 'smtp.office365.com', 'erp@client.example', true), ('Mailgun', 'smtp.mailgun.org', 'postmaster', true)`);
  await db.query(`INSERT INTO ir_config_parameter (key, value) VALUES ('database.uuid', 'uuid-of-production'), ('web.base.url', 'https://erp.client.example')`);
}

const param = async (database: string, key: string) => (await pools.get({ ...PG, database }).query<{ value: string }>(`SELECT value FROM ir_config_parameter WHERE key = $1`, [key]))[0]?.value ?? null;

await odooDb(prodDb, 200);
await odooDb(stgDb, 3);
const stgPort = await freePort();
const policy = `backup:\n  schedule: "0 3 * * *"\n  filestore: false\n  destination: { type: local, path: ${dest} }\n  verify: never\n`;
const stagingSection = ['staging:', `  refresh_from: ${prod}`, '  refresh: ${kv:staging.refresh}', '  anonymize:', '    - { table: res_partner, column: email, with: hash-email }', '    - { table: res_partner, column: name, with: fake-name }', '    - { table: res_partner, column: phone, with: blank }', ''].join('\n');
await w.writeFile(`environments/${prod}.yaml`, envYaml({ name: prod, tier: 'production', port: await freePort(), database: prodDb, extra: policy }));
await w.writeFile(`environments/${stg}.yaml`, envYaml({ name: stg, tier: 'staging', port: stgPort, database: stgDb, extra: stagingSection }));
await w.kv('staging.refresh', '2026-03-24');
w.start();

t.test('a production environment with a staging section is refused at validation', async (t) => {
  await w.writeFile(`environments/${prod}.yaml`, envYaml({ name: prod, tier: 'production', port: 1, database: prodDb, extra: policy + stagingSection.replace(`refresh_from: ${prod}`, `refresh_from: ${stg}`) }));
  const l = (await w.pulser!.load()).envs.get(prod)!;
  t.equal(l.ok, false);
  t.same(l.ok ? [] : l.errors.map((e) => e.code), ['PULSER_E_STAGING_PRODUCTION']);
  await w.writeFile(`environments/${prod}.yaml`, envYaml({ name: prod, tier: 'production', port: await freePort(), database: prodDb, extra: policy }));
});

t.test('a changed refresh value refreshes staging from production, neutralized and anonymized', async (t) => {
  const snap = await w.pulser!.load();
  const l = snap.envs.get(prod)!;
  if (!l.ok) throw new Error('production does not load');
  const ctx = w.pulser!.engine.context(l.desired);
  const at = new Date();
  await takeBackup({ desired: l.desired, drivers: ctx.drivers, store: new LocalBackupStore(dest), commit: 'test', progress: () => undefined }, { id: backupId(prod, at), at, kind: 'manual', reason: 'test' });

  const [rec] = await w.pass(stg);
  t.equal(rec!.outcome, 'applied', JSON.stringify(rec!.errors));
  const refresh = rec!.apply.find((a) => a.subject === `${stg}/staging`);
  t.equal(refresh?.outcome, 'applied', JSON.stringify(refresh));

  const s = pools.get({ ...PG, database: stgDb });
  const partners = await s.query<{ id: number; name: string; email: string; phone: string | null }>(`SELECT id, name, email, phone FROM res_partner ORDER BY id`);
  t.equal(partners.length, 200, "production's rows");
  t.ok(partners.every((p) => /^u[0-9a-f]{16}@example\.invalid$/.test(p.email)), 'emails hashed');
  t.equal(new Set(partners.map((p) => p.email)).size, 200, 'distinct emails stay distinct');
  t.ok(partners.every((p) => (FAKE_NAMES as readonly string[]).includes(p.name)), 'names replaced');
  t.ok(partners.every((p) => p.phone === null), 'phones blanked');
  t.same(await s.query(`SELECT name FROM ir_mail_server WHERE active`), [], 'no active outgoing mail server');
  t.same(await s.query(`SELECT cron_name FROM ir_cron WHERE active`), [{ cron_name: 'Base: Auto-vacuum internal data' }], 'only the autovacuum cron');
  t.equal(await param(stgDb, 'database.is_neutralized'), 'true');
  const uuid = await param(stgDb, 'database.uuid');
  t.match(uuid, /^[0-9a-f-]{36}$/);
  t.not(uuid, 'uuid-of-production');
  t.equal(await param(stgDb, 'web.base.url'), `http://127.0.0.1:${stgPort}`);
  t.equal(await param(stgDb, 'pulser.staging.refresh'), '2026-03-24');

  // Deterministic: the same production email always gives the same staging email.
  const [again] = await s.query<{ e: string }>(`SELECT 'u' || left(md5('customer1@client.example'), 16) || '@example.invalid' AS e`);
  t.equal(partners[0]!.email, again!.e);

  const p = pools.get({ ...PG, database: prodDb });
  t.equal((await p.query<{ email: string }>(`SELECT email FROM res_partner WHERE id = 1`))[0]!.email, 'customer1@client.example', 'production untouched');
  t.equal((await p.query(`SELECT 1 FROM ir_cron WHERE active`)).length, 3);
  t.equal(await param(prodDb, 'database.is_neutralized'), null);
});

t.test('the same refresh value: nothing to do', async (t) => {
  const [rec] = await w.pass(stg);
  t.equal(rec!.outcome, 'in-sync', JSON.stringify(rec!.plan.changes));
  t.same(rec!.plan.changes, []);
});

t.test('a refresh whose checks fail: coded error, staging keeps its database, nothing left over', async (t) => {
  // A trigger of production's (as a custom module could install) keeps mail servers active.
  const p = pools.get({ ...PG, database: prodDb });
  await p.query(`CREATE FUNCTION keep_active() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.active := true; RETURN NEW; END $$`);
  await p.query(`CREATE TRIGGER keep_mail_server_active BEFORE UPDATE ON ir_mail_server FOR EACH ROW EXECUTE FUNCTION keep_active()`);
  t.teardown(() => p.query(`DROP TRIGGER keep_mail_server_active ON ir_mail_server; DROP FUNCTION keep_active()`));
  const l = (await w.pulser!.load()).envs.get(prod)!;
  if (!l.ok) throw new Error('production does not load');
  const ctx = w.pulser!.engine.context(l.desired);
  const at = new Date(Date.now() + 2000);
  await takeBackup({ desired: l.desired, drivers: ctx.drivers, store: new LocalBackupStore(dest), commit: 'test', progress: () => undefined }, { id: backupId(prod, at), at, kind: 'manual', reason: 'test' });
  await w.kv('staging.refresh', '2026-03-25');

  const [rec] = await w.pass(stg);
  t.equal(rec!.outcome, 'failed');
  const refresh = rec!.apply.find((a) => a.subject === `${stg}/staging`);
  t.equal(refresh?.error?.code, 'PULSER_E_STAGING_VERIFY', JSON.stringify(refresh));
  t.match(refresh?.error?.message, /no active outgoing mail server \(2 offending row\(s\)\)/);
  t.equal(await param(stgDb, 'pulser.staging.refresh'), '2026-03-24', 'staging still runs on the previous refresh');
  t.same(await pools.get({ ...PG, database: stgDb }).query(`SELECT name FROM ir_mail_server WHERE active`), []);
  const left = await pools.get({ ...PG, database: 'postgres' }).query(`SELECT datname FROM pg_database WHERE datname LIKE $1`, [`pulser_%${stg.replace(/-/g, '_')}%`]);
  t.same(left, [], 'the rejected database was dropped');
});
