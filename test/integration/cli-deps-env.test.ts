// `pulser deps --env`: the repositories the environment declares, as checked out on this machine,
// and the modules installed in its database (real PostgreSQL with Odoo's module table).
import t from 'tap';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { World, suffix } from '../helpers/world.ts';
import { dropDatabase, odooEnv, sql } from '../helpers/odoo.ts';
import { main, type Io } from '../../src/cli/main.ts';

const w = await World.create();
const name = `deps-${suffix()}`;
const db = `db_${name.replace(/-/g, '_')}`;
t.teardown(async () => {
  await dropDatabase(db);
  await w.cleanup();
});

await odooEnv(w, name, {
  extra: ['addons:', '  repos:', '    - { url: "https://git.example.org/acme.git", ref: "17.0" }', '    - { url: "https://github.com/OCA/queue.git", ref: "17.0" }'],
});
// The acme checkout is where the addons reconciler puts it; queue was never checked out.
const checkout = path.join(w.root, '.pulser', 'addons', name, 'acme');
for (const [mod, manifest] of [
  ['acme_base', "{'name': 'Acme Base', 'version': '17.0.1.0.0', 'depends': ['base', 'mail']}"],
  ['acme_sale', "{'name': 'Acme Sale', 'depends': ['acme_base', 'sale']}"],
  ['acme_jobs', "{'name': 'Acme Jobs', 'depends': ['acme_base', 'queue_job']}"],
]) {
  await mkdir(path.join(checkout, mod!), { recursive: true });
  await writeFile(path.join(checkout, mod!, '__manifest__.py'), manifest!);
}
await sql('postgres', `CREATE DATABASE "${db}"`);
await sql(db, await readFile(fileURLToPath(new URL('../../src/odoo/tables.sql', import.meta.url)), 'utf8'));
for (const [mod, state] of [
  ['base', 'installed'],
  ['mail', 'installed'],
  ['acme_base', 'to upgrade'],
  ['sale', 'uninstalled'],
]) {
  await sql(db, 'INSERT INTO ir_module_module (name, state) VALUES ($1, $2)', [mod, state]);
}

async function deps(args: string[]) {
  let out = '';
  let err = '';
  const stream = Object.assign(new PassThrough(), { isTTY: false });
  stream.on('data', (d: Buffer) => (err += d.toString()));
  const io: Io = { out: (s) => (out += s + '\n'), err: stream, isTTY: false };
  const code = await main(['deps', ...args, '--env', name, '--dir', w.root], io);
  return { code, out, err };
}

t.test('installed modules come from the database, the command names its database', async (t) => {
  const r = await deps(['acme_sale', '--json']);
  t.equal(r.code, 0, r.err);
  const plan = JSON.parse(r.out);
  t.same(plan.order.map((m: { name: string; installed: boolean }) => [m.name, m.installed]), [
    ['base', true],
    ['mail', true],
    ['acme_base', true],
    ['sale', false],
    ['acme_sale', false],
  ]);
  t.same(plan.install, ['sale', 'acme_sale']);
  t.same(plan.argv, ['odoo', '-c', '/etc/odoo/odoo.conf', '-d', db, '-i', 'sale,acme_sale', '--stop-after-init']);
  t.same(plan.warnings, [`repository queue is not checked out at ${path.join(w.root, '.pulser', 'addons', name, 'queue')} (run \`pulser apply ${name}\`)`]);

  await sql(db, "UPDATE ir_module_module SET state = 'installed' WHERE name = 'sale'");
  await sql(db, "INSERT INTO ir_module_module (name, state) VALUES ('acme_sale', 'installed')");
  const again = JSON.parse((await deps(['acme_sale', '--json'])).out);
  t.same(again.install, [], 'once installed, nothing left to do');
  t.equal(again.argv, null);
});

t.test('a module of a repository not checked out is missing, with that repository as the candidate', async (t) => {
  const r = await deps(['acme_jobs']);
  t.equal(r.code, 1);
  t.match(r.out, /^warning: repository queue is not checked out/m);
  t.match(r.out, /PULSER_E_MODULE_MISSING: module queue_job \(needed by acme_jobs\) is in no addons folder and not a core module; declared repository queue \(https:\/\/github\.com\/OCA\/queue\.git 17\.0\) is not checked out/);
});

t.test('--installed overrides the database; an unknown environment is a coded error', async (t) => {
  const r = JSON.parse((await deps(['acme_sale', '--json', '--installed', 'base'])).out);
  t.same(r.install, ['mail', 'acme_base', 'sale', 'acme_sale']);
  let err = '';
  const stream = Object.assign(new PassThrough(), { isTTY: false });
  stream.on('data', (d: Buffer) => (err += d.toString()));
  const code = await main(['deps', 'x', '--env', 'nope', '--dir', w.root], { out: () => undefined, err: stream, isTTY: false });
  t.equal(code, 1);
  t.match(err, /PULSER_E_ENV_UNKNOWN: no environment "nope"/);
});
