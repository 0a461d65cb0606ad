// The stand-in Odoo image against odoo-bin's contract, on the real engine and PostgreSQL: `-i base`
// initialises an empty database with Odoo's tables, dependencies install first, an unknown module
// is ignored with Odoo's warning (exit 0), a missing dependency or data file fails with Odoo's
// CRITICAL line and traceback (exit 255), `-u` records the new version, neutralize, usage errors.
import t from 'tap';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { dockerClient, suffix } from '../helpers/world.ts';
import { dropDatabase, PG_PORT, sql, standInImage } from '../helpers/odoo.ts';

const image = await standInImage();
const docker = dockerClient();
const db = `standin_${suffix()}`;
const dir = await mkdtemp(path.join(tmpdir(), 'pulser-standin-'));
t.teardown(async () => {
  await rm(dir, { recursive: true, force: true });
  await dropDatabase(db);
});

async function module(name: string, manifest: string, files: Record<string, string> = {}): Promise<void> {
  await mkdir(path.join(dir, 'addons', name), { recursive: true });
  await writeFile(path.join(dir, 'addons', name, '__manifest__.py'), manifest);
  for (const [rel, text] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(dir, 'addons', name, rel)), { recursive: true });
    await writeFile(path.join(dir, 'addons', name, rel), text);
  }
}
await module('lib_a', "{'name': 'Lib A', 'version': '2.0', 'depends': ['base']}\n");
await module('app_b', "{\n  'name': 'App B',\n  'version': '17.0.1.0.0',\n  # comments and trailing commas, as Odoo accepts\n  'depends': ['lib_a', 'web',],\n  'data': ['views/b.xml'],\n}\n", { 'views/b.xml': '<odoo/>\n' });
await module('needs_ghost', "{'name': 'Needs', 'depends': ['ghost']}\n");
await module('bad_data', "{'name': 'Bad', 'depends': ['base'], 'data': ['views/missing.xml']}\n");
await writeFile(path.join(dir, 'odoo.conf'), `[options]\naddons_path = /mnt/addons\ndb_host = host.docker.internal\ndb_port = ${PG_PORT}\ndb_user = postgres\ndb_password = False\n`);

/** Runs `odoo ARGS` through the image's entrypoint; returns exit code and the log (stderr). */
async function odoo(...args: string[]): Promise<{ code: number; log: string; lines: string[] }> {
  const c = await docker.createContainer({
    Image: image,
    Cmd: ['odoo', ...args],
    HostConfig: { Binds: [`${dir}/odoo.conf:/etc/odoo/odoo.conf:ro`, `${dir}/addons:/mnt/addons:ro`], ExtraHosts: ['host.docker.internal:host-gateway'], Init: true },
  });
  try {
    await c.start();
    const { StatusCode } = (await c.wait()) as { StatusCode: number };
    const buf = (await c.logs({ stdout: true, stderr: true })) as unknown as Buffer;
    const { demuxToText } = await import('../../src/drivers/docker.ts');
    const log = demuxToText(buf);
    return { code: StatusCode, log, lines: log.split('\n').filter(Boolean) };
  } finally {
    await c.remove({ force: true });
  }
}

const LOG_LINE = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} \d+ (DEBUG|INFO|WARNING|ERROR|CRITICAL) (\?|[\w-]+) [\w.]+: /;
const states = async () => Object.fromEntries((await sql<{ name: string; state: string; latest_version: string | null }>(db, 'SELECT name, state, latest_version FROM ir_module_module')).map((r) => [r.name, r]));

t.test('-i on an empty database: base tables, dependencies first, versions, unknown names ignored', async (t) => {
  const r = await odoo('-d', db, '-i', 'app_b,no_such_module', '--stop-after-init');
  t.equal(r.code, 0, r.log);
  t.match(r.log, /\d+ WARNING \S+ odoo\.modules\.loading: invalid module names, ignored: no_such_module\n/, 'an unknown module is ignored with Odoo’s warning, and the command succeeds');
  const records = r.lines.filter((l) => !l.startsWith(' ') && !l.startsWith('Traceback'));
  t.ok(records.every((l) => LOG_LINE.test(l)), 'every record in Odoo’s log format');
  const order = r.lines.map((l) => /Loading module (\w+)/.exec(l)?.[1]).filter(Boolean);
  t.same([...order].sort(), ['app_b', 'base', 'lib_a', 'web']);
  const at = (m: string) => order.indexOf(m);
  t.ok(at('base') === 0 && at('lib_a') < at('app_b') && at('web') < at('app_b'), `dependencies load first: ${order.join(', ')}`);
  const m = await states();
  t.same([m.base?.state, m.lib_a?.state, m.app_b?.state, m.needs_ghost?.state], ['installed', 'installed', 'installed', 'uninstalled']);
  t.equal(m.lib_a?.latest_version, '17.0.2.0', 'a short version is prefixed with the series');
  t.equal(m.app_b?.latest_version, '17.0.1.0.0');
  const deps = await sql<{ name: string }>(db, "SELECT d.name FROM ir_module_module_dependency d JOIN ir_module_module m ON m.id = d.module_id WHERE m.name = 'app_b' ORDER BY d.name");
  t.same(deps.map((d) => d.name), ['lib_a', 'web']);
  const params = await sql<{ key: string }>(db, "SELECT key FROM ir_config_parameter WHERE key IN ('database.uuid', 'web.base.url') ORDER BY key");
  t.same(params.map((p) => p.key), ['database.uuid', 'web.base.url']);
  const cron = await sql<{ cron_name: string }>(db, "SELECT cron_name FROM ir_cron c JOIN ir_model_data d ON d.res_id = c.id AND d.model = 'ir.cron' WHERE d.module = 'base' AND d.name = 'autovacuum_job'");
  t.equal(cron.length, 1, 'the autovacuum job neutralize keeps');
});

t.test('a missing dependency fails like Odoo: CRITICAL, traceback, exit 255, nothing installed', async (t) => {
  const r = await odoo('-d', db, '-i', 'needs_ghost', '--stop-after-init');
  t.equal(r.code, 255);
  t.match(r.log, new RegExp(`CRITICAL ${db} odoo\\.service\\.server: Failed to initialize database \`${db}\`\\.\\nTraceback \\(most recent call last\\):`));
  t.match(r.log, /odoo\.exceptions\.UserError: You try to install module 'needs_ghost' that depends on module 'ghost'\.\nBut the latter module is not available in your system\./);
  t.equal((await states()).needs_ghost?.state, 'uninstalled', 'the failed load was rolled back');
});

t.test('a missing data file fails with FileNotFoundError', async (t) => {
  const r = await odoo('-d', db, '-i', 'bad_data', '--stop-after-init');
  t.equal(r.code, 255);
  t.match(r.log, /FileNotFoundError: File not found: bad_data\/views\/missing\.xml/);
});

t.test('-u records the new manifest version', async (t) => {
  await module('lib_a', "{'name': 'Lib A', 'version': '2.1', 'depends': ['base']}\n");
  const r = await odoo('-d', db, '-u', 'lib_a', '--stop-after-init', '--test-enable');
  t.equal(r.code, 0, r.log);
  t.equal((await states()).lib_a?.latest_version, '17.0.2.1');
});

t.test('neutralize: mail servers off, crons off but autovacuum, database.is_neutralized', async (t) => {
  await sql(db, "INSERT INTO ir_mail_server (name, smtp_host, smtp_port, smtp_encryption, active) VALUES ('prod', 'smtp.example', 587, 'starttls', true)");
  await sql(db, `INSERT INTO ir_act_server (name) VALUES ('{"en_US": "Mail: send"}')`);
  await sql(db, "INSERT INTO ir_cron (ir_actions_server_id, cron_name, user_id, nextcall) SELECT max(id), 'Mail: send', 1, now() FROM ir_act_server");
  const r = await odoo('neutralize', '-d', db);
  t.equal(r.code, 0, r.log);
  t.match(r.log, /INFO \S+ odoo\.cli\.neutralize: Neutralization finished/);
  t.same(await sql(db, 'SELECT name, active FROM ir_mail_server'), [{ name: 'prod', active: false }]);
  t.same(await sql(db, 'SELECT cron_name, active FROM ir_cron ORDER BY id'), [
    { cron_name: 'Base: Auto-vacuum internal data', active: true },
    { cron_name: 'Mail: send', active: false },
  ]);
  t.same(await sql(db, "SELECT value FROM ir_config_parameter WHERE key = 'database.is_neutralized'"), [{ value: 'True' }]);
});

t.test('usage errors exit 2; --version', async (t) => {
  const bad = await odoo('--bogus');
  t.equal(bad.code, 2);
  t.match(bad.log, /no such option: --bogus/);
  const v = await odoo('--version');
  t.equal(v.code, 0);
  t.match(v.log, /^Odoo Server 17\.0\.\d+/);
});
