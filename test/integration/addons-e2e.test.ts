// Addons end to end on the real engine and PostgreSQL with the stand-in Odoo: a declared module is
// installed with its dependencies in order, a version bump and a code edit each upgrade it, and a
// broken module fails with Odoo's error lines while the serving container keeps serving.
import t from 'tap';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { World, suffix, httpGet } from '../helpers/world.ts';
import { AddonRepoFixture, dropDatabase, odooEnv, sql, standInImage } from '../helpers/odoo.ts';

await standInImage();
const w = await World.create();
const repo = await AddonRepoFixture.create('acme');
const name = `ad-${suffix()}`;
t.teardown(async () => {
  await w.cleanup();
  await repo.cleanup();
  await dropDatabase(`db_${name.replace(/-/g, '_')}`);
});

await repo.module('acme_base', { version: '1.0', depends: ['base'] }, { 'models/partner.py': 'x = 1\n' });
await repo.module('acme_sale', { version: '1.0', depends: ['acme_base', 'web'], data: ['views/sale.xml'] }, { 'views/sale.xml': '<odoo/>\n' });
await repo.module('acme_broken', { version: '1.0', depends: ['acme_base'], data: ['views/missing.xml'] });
await repo.write('oca_dependencies.txt', 'server-tools\n');
const first = await repo.commit('first');

const addonsSection = (install: string[]) => ['addons:', `  repos: [{ url: "${repo.url}", ref: "17.0" }]`, '  allow_local_repos: true', `  install: [${install.join(', ')}]`, '  upgrade: changed'];
const { port, db } = await odooEnv(w, name, { extra: addonsSection(['acme_sale']) });
const p = w.start();

type ModRow = { name: string; state: string; latest_version: string | null };
const modules = async () => Object.fromEntries((await sql<ModRow>(db, 'SELECT name, state, latest_version FROM ir_module_module')).map((r) => [r.name, r]));
const checksum = async (m: string) => (await sql<{ value: string }>(db, 'SELECT value FROM ir_config_parameter WHERE key = $1', [`pulser.addons.checksum.${m}`]))[0]?.value;
const healthy = async () => (await httpGet(`http://127.0.0.1:${port}/web/health`))?.body;

t.test('declaring a module installs it and its dependencies in order', async (t) => {
  const [rec] = await w.pass(name);
  t.equal(rec!.outcome, 'applied', JSON.stringify(rec!.errors));
  const subjects = rec!.plan.changes.map((c) => c.subject);
  t.same(subjects, [`${name}/containers/odoo`, `${name}/addons/repo/acme`, `${name}/addons/install`, `${name}/addons/restart`]);
  const install = rec!.plan.changes[2]!;
  t.same(install.op.modules, ['base', 'acme_base', 'web', 'acme_sale'], 'dependencies first');
  const checkout = rec!.apply.find((a) => a.subject.endsWith('/addons/repo/acme'))!;
  t.equal(checkout.detail?.commit, first, 'the resolved commit is recorded in evidence');
  const ran = rec!.apply.find((a) => a.subject.endsWith('/addons/install'))!;
  t.same(ran.detail?.argv, ['odoo', '-c', '/etc/odoo/odoo.conf', '-d', db, '-i', 'base,acme_base,web,acme_sale', '--stop-after-init']);
  t.equal(ran.detail?.exitCode, 0);

  const m = await modules();
  t.equal(m.acme_base?.state, 'installed');
  t.equal(m.acme_sale?.state, 'installed');
  t.equal(m.acme_sale?.latest_version, '17.0.1.0');
  t.equal(m.acme_broken?.state, 'uninstalled', 'known to Odoo, not installed');
  t.match(await checksum('acme_sale'), /^[0-9a-f]{40}$/, 'content checksum recorded');
  t.equal(await healthy(), '{"status": "pass"}');
  const addons = p.engine.status.get(name)!.facts.addons as { repos: Array<{ commit: string }>; modules: Record<string, string> };
  t.equal(addons.repos[0]!.commit, first);
  t.equal(addons.modules.acme_sale, '17.0.1.0');

  const [again] = await w.pass(name);
  t.equal(again!.outcome, 'in-sync', JSON.stringify(again!.plan.changes.map((c) => c.summary)));
});

t.test('a version bump and a code edit without a bump each upgrade their module', async (t) => {
  const before = await checksum('acme_base');
  await repo.module('acme_sale', { version: '1.1', depends: ['acme_base', 'web'], data: ['views/sale.xml'] });
  await repo.write('acme_base/models/partner.py', 'x = 2\n');
  await repo.commit('bump acme_sale, edit acme_base');
  const [rec] = await w.pass(name);
  t.equal(rec!.outcome, 'applied', JSON.stringify(rec!.errors));
  const upgrade = rec!.plan.changes.find((c) => c.subject.endsWith('/addons/upgrade'))!;
  t.same(upgrade.op.modules, ['acme_base', 'acme_sale'], 'dependencies first');
  t.equal(upgrade.reason, 'acme_base: code changed without a version bump; acme_sale: version 17.0.1.0 → 1.1');
  const ran = rec!.apply.find((a) => a.subject.endsWith('/addons/upgrade'))!;
  t.same(ran.detail?.argv, ['odoo', '-c', '/etc/odoo/odoo.conf', '-d', db, '-u', 'acme_base,acme_sale', '--stop-after-init']);
  t.equal((await modules()).acme_sale?.latest_version, '17.0.1.1');
  const after = await checksum('acme_base');
  t.not(after, before, 'the new checksum is recorded after the upgrade');
  t.equal(after, (upgrade.op.checksums as Record<string, string>).acme_base);
  t.equal(rec!.apply.find((a) => a.subject.endsWith('/addons/restart'))?.outcome, 'applied', 'the serving container is restarted');
  t.equal(await healthy(), '{"status": "pass"}');
});

t.test('a broken module fails with Odoo’s error lines; the serving container keeps serving', async (t) => {
  await odooEnv(w, name, { extra: addonsSection(['acme_sale', 'acme_broken']) }).then(async () => {
    // odooEnv picked a new port: keep the one the container already publishes.
    const text = await readFile(path.join(w.root, 'environments', `${name}.yaml`), 'utf8');
    await w.writeFile(`environments/${name}.yaml`, text.replace(/port: \d+\n  workers/, `port: ${port}\n  workers`));
  });
  const [rec] = await w.pass(name);
  t.equal(rec!.outcome, 'failed');
  const err = rec!.errors.find((e) => e.code === 'PULSER_E_ODOO_RUN_FAILED');
  t.ok(err, 'coded error');
  t.match(err!.message, /odoo exited with code 255/);
  t.match(err!.message, /FileNotFoundError: File not found: acme_broken\/views\/missing\.xml/);
  const lines = (err!.details as { errorLines: string[] }).errorLines;
  t.ok(lines.some((l) => /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} \d+ CRITICAL db_\S+ odoo\.service\.server: Failed to initialize database/.test(l)), 'Odoo log format');
  const restart = rec!.apply.find((a) => a.subject.endsWith('/addons/restart'));
  t.equal(restart?.outcome, 'skipped', 'no restart after a failed install');
  t.equal(await healthy(), '{"status": "pass"}', 'the serving container keeps serving');
  t.equal((await modules()).acme_broken?.state, 'uninstalled');

  const evidence = await readFile(path.join(p.evidence!.dir, rec!.passId, name, 'apply.jsonl'), 'utf8');
  t.match(evidence, /File not found: acme_broken\/views\/missing\.xml/, 'Odoo’s error lines are in the evidence');
  t.equal(p.engine.status.get(name)!.lastError?.code, 'PULSER_E_ODOO_RUN_FAILED');
});

t.test('a dependency in no repository is reported with the repositories oca_dependencies.txt names', async (t) => {
  await repo.module('acme_needs', { version: '1.0', depends: ['server_environment'] });
  await repo.commit('needs a missing module');
  const text = await readFile(path.join(w.root, 'environments', `${name}.yaml`), 'utf8');
  await w.writeFile(`environments/${name}.yaml`, text.replace('install: [acme_sale, acme_broken]', 'install: [acme_sale, acme_needs]'));
  const [rec] = await w.pass(name, 'plan');
  const missing = rec!.errors.find((e) => e.code === 'PULSER_E_MODULE_MISSING');
  t.ok(missing);
  t.match(missing!.message, /module server_environment \(needed by acme_needs\)/);
  t.match(missing!.message, /server-tools/);
});
