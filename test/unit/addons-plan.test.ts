// The addons planner and command builders, pure: install order, upgrades by version and by
// content, findings for missing modules and cycles, and the exact Odoo argv and container options.
import t from 'tap';
import { desiredEnv } from '../helpers/builders.ts';
import { planAddons, resolveInstallOrder, sameVersion, undeclaredModules, type AddonsObserved, type RepoObserved } from '../../reconcilers/addons/plan.ts';
import { designOneOff, odooErrorLines, odooRunArgv, SQL } from '../../reconcilers/addons/design.ts';
import { addonsMounts, repoName } from '../../reconcilers/addons/layout.ts';
import { designOdooContainer, renderOdooConf } from '../../reconcilers/containers/design.ts';
import { dbTarget } from '../../src/odoo/db.ts';

const C1 = 'a'.repeat(40);
const C2 = 'b'.repeat(40);
const sum = (c: string) => c.repeat(40);

function repo(o: Partial<RepoObserved> = {}): RepoObserved {
  return {
    name: 'acme',
    ref: '17.0',
    commit: C1,
    checkedOut: C1,
    modules: {
      acme_base: { version: '1.0', depends: ['base'], installable: true, checksum: sum('1') },
      acme_sale: { version: '1.0', depends: ['acme_base', 'sale'], installable: true, checksum: sum('2') },
      acme_extra: { version: '1.0', depends: ['acme_base'], installable: true, checksum: sum('3') },
    },
    ocaDependencies: [],
    ...o,
  };
}

function dbWith(installed: Record<string, string>, checksums: Record<string, string> = {}): NonNullable<AddonsObserved['db']> {
  const modules: Record<string, { state: string; latestVersion: string | null }> = {
    base: { state: 'installed', latestVersion: '17.0.1.3' },
    sale: { state: 'uninstalled', latestVersion: null },
    acme_base: { state: 'uninstalled', latestVersion: null },
    acme_sale: { state: 'uninstalled', latestVersion: null },
    acme_extra: { state: 'uninstalled', latestVersion: null },
  };
  for (const [m, v] of Object.entries(installed)) modules[m] = { state: 'installed', latestVersion: v };
  return { modules, dependencies: { sale: ['base'], acme_base: ['base'] }, checksums };
}

const addons = { repos: [{ url: 'https://git.example.com/acme/addons.git', ref: '17.0' }], install: ['acme_sale'] };

t.test('a fresh database: checkout, install with dependencies first, restart', async (t) => {
  const d = await desiredEnv(t, { addons });
  const plan = planAddons(d, { declared: true, repos: [repo({ checkedOut: null })], db: null });
  t.same(plan.findings, []);
  t.same(
    plan.changes.map((c) => [c.subject, c.action, c.risk, c.summary]),
    [
      ['staging/addons/repo/acme', 'create', 'safe', `checkout acme 17.0 at ${C1.slice(0, 12)}`],
      ['staging/addons/install', 'create', 'disruptive', 'install base, acme_base, sale, acme_sale'],
      ['staging/addons/restart', 'run', 'disruptive', 'restart the Odoo container to load the new module code'],
    ],
  );
  t.same(plan.changes[1]!.op, { kind: 'install', modules: ['base', 'acme_base', 'sale', 'acme_sale'], checksums: { acme_base: sum('1'), acme_sale: sum('2') } });
  t.same(plan.changes[0]!.op, { kind: 'checkout', repo: 'acme', commit: C1 });
});

t.test('in sync: nothing to do; a moved ref checks out again', async (t) => {
  const d = await desiredEnv(t, { addons });
  const db = dbWith({ sale: '17.0.1.2', acme_base: '17.0.1.0', acme_sale: '17.0.1.0' }, { acme_base: sum('1'), acme_sale: sum('2') });
  t.same(planAddons(d, { declared: true, repos: [repo()], db }).changes, []);
  const moved = planAddons(d, { declared: true, repos: [repo({ commit: C2 })], db });
  t.same(moved.changes.map((c) => c.summary), [`checkout acme 17.0 at ${C2.slice(0, 12)} (was ${C1.slice(0, 12)})`]);
});

t.test('upgrades: a version bump, a content change without a bump, upgrade: never', async (t) => {
  const d = await desiredEnv(t, { addons });
  const bumped = repo();
  bumped.modules.acme_sale = { ...bumped.modules.acme_sale!, version: '1.1' };
  bumped.modules.acme_base = { ...bumped.modules.acme_base!, checksum: sum('9') };
  const db = dbWith({ sale: '17.0.1.2', acme_base: '17.0.1.0', acme_sale: '17.0.1.0' }, { acme_base: sum('1'), acme_sale: sum('2') });
  const plan = planAddons(d, { declared: true, repos: [bumped], db });
  t.same(plan.changes.map((c) => c.subject), ['staging/addons/upgrade', 'staging/addons/restart']);
  const up = plan.changes[0]!;
  t.same(up.op, { kind: 'upgrade', modules: ['acme_base', 'acme_sale'], checksums: { acme_base: sum('9'), acme_sale: sum('2') } });
  t.equal(up.reason, 'acme_base: code changed without a version bump; acme_sale: version 17.0.1.0 → 1.1');
  t.same(up.diff.acme_sale, { before: '17.0.1.0', after: '1.1' });

  const never = await desiredEnv(t, { addons: { ...addons, upgrade: 'never' } });
  t.same(planAddons(never, { declared: true, repos: [bumped], db }).changes, []);
});

t.test('a module in no repository is a finding naming who needs it and oca_dependencies hints', async (t) => {
  const d = await desiredEnv(t, { addons });
  const r = repo({ ocaDependencies: ['server-tools', 'acme'] });
  r.modules.acme_sale = { ...r.modules.acme_sale!, depends: ['acme_base', 'queue_job'] };
  const plan = planAddons(d, { declared: true, repos: [r], db: dbWith({}) });
  t.same(plan.changes, []);
  t.equal(plan.findings.length, 1);
  t.equal(plan.findings[0]!.error.code, 'PULSER_E_MODULE_MISSING');
  t.equal(plan.findings[0]!.error.message, "module queue_job (needed by acme_sale) is in no addons folder and not a core module; acme's oca_dependencies.txt names server-tools");
  t.equal(plan.findings[0]!.subject, 'staging/addons/module/queue_job');
});

t.test('a dependency cycle is reported with its path', async (t) => {
  const r = repo();
  r.modules.acme_base = { ...r.modules.acme_base!, depends: ['acme_sale'] };
  const { findings } = resolveInstallOrder(['acme_sale'], { declared: true, repos: [r], db: dbWith({}) }, 'staging');
  t.equal(findings[0]!.error.code, 'PULSER_E_MODULE_CYCLE');
  t.equal(findings[0]!.error.message, 'module dependencies form a cycle: acme_base → acme_sale → acme_base');
});

t.test('undeclared installed modules are reported, never planned for removal', async (t) => {
  const d = await desiredEnv(t, { addons });
  const db = dbWith({ sale: '17.0.1.2', acme_base: '17.0.1.0', acme_sale: '17.0.1.0', acme_extra: '17.0.1.0' }, { acme_base: sum('1'), acme_sale: sum('2'), acme_extra: sum('3') });
  const observed: AddonsObserved = { declared: true, repos: [repo()], db };
  t.same(undeclaredModules(d, observed), ['acme_extra']);
  t.same(planAddons(d, observed).changes, []);
});

t.test('repository errors and database errors are findings; no addons section plans nothing', async (t) => {
  const d = await desiredEnv(t, { addons });
  const error = { code: 'PULSER_E_GIT_REF', class: 'terminal', reason: 'GitRefNotFound', message: 'ref 17.0 is no branch' } as const;
  const plan = planAddons(d, { declared: true, repos: [repo({ commit: null, error })], db: null });
  t.same(plan.findings.map((f) => f.error.code), ['PULSER_E_GIT_REF']);
  const plain = await desiredEnv(t);
  t.same(planAddons(plain, { declared: false, repos: [], db: null }), { changes: [], findings: [] });
});

t.test('Odoo CLI argv, one-off container options, odoo.conf addons_path (golden)', async (t) => {
  const d = await desiredEnv(t, { addons, image: 'pulser-standin/odoo:17.0', database: { name: 'odoo_staging', port: 5433 } });
  t.same(odooRunArgv('install', 'odoo_staging', ['base', 'acme_sale']), ['odoo', '-c', '/etc/odoo/odoo.conf', '-d', 'odoo_staging', '-i', 'base,acme_sale', '--stop-after-init']);
  t.same(odooRunArgv('upgrade', 'db', ['a']), ['odoo', '-c', '/etc/odoo/odoo.conf', '-d', 'db', '-u', 'a', '--stop-after-init']);
  const dir = d.host.kind === 'local' ? d.host.addons_dir : '';
  t.match(dir, /\/\.pulser\/addons$/, 'checkouts default to the state dir');
  const { options, argv } = designOneOff(d, 'install', ['acme_sale'], 'n0nce');
  t.same(argv, ['odoo', '-c', '/etc/odoo/odoo.conf', '-d', 'odoo_staging', '-i', 'acme_sale', '--stop-after-init']);
  t.same(options, {
    name: 'pulser-staging-odoo-install-n0nce',
    Image: 'pulser-standin/odoo:17.0',
    Cmd: argv,
    Env: ['ODOO_RC=/etc/odoo/odoo.conf'],
    Labels: { 'io.pulser.managed-by': 'pulser', 'io.pulser.env': 'staging', 'io.pulser.service': 'odoo-run' },
    HostConfig: {
      Init: true,
      RestartPolicy: { Name: 'no' },
      ExtraHosts: ['host.docker.internal:host-gateway'],
      Binds: [`${dir}/staging/addons:/mnt/pulser-addons/addons:ro`],
    },
  });
  const design = designOdooContainer(d);
  t.match(renderOdooConf(design.options), /\naddons_path = \/mnt\/extra-addons,\/mnt\/pulser-addons\/addons\n/);
  t.same(addonsMounts(await desiredEnv(t)), { binds: [], addonsPath: null }, 'no repositories: no mounts and the image’s addons_path');
  t.equal(repoName({ url: 'git@github.com:OCA/server-tools.git', ref: '17.0' }), 'server-tools');
  t.equal(repoName({ url: 'https://x/y.git', ref: '1', name: 'own' }), 'own');
});

t.test('SQL, error lines, versions', async (t) => {
  t.equal(SQL.modules, 'SELECT name, state, latest_version FROM ir_module_module ORDER BY name');
  t.match(SQL.recordChecksum, /ON CONFLICT \(key\) DO UPDATE SET value = EXCLUDED\.value/);
  const log = [
    '2026-01-01 10:00:00,001 7 INFO db odoo.modules.loading: loading 1 modules...',
    '2026-01-01 10:00:00,002 7 CRITICAL db odoo.service.server: Failed to initialize database `db`.',
    'Traceback (most recent call last):',
    '  File "x.py", line 1, in f',
    'FileNotFoundError: File not found: m/views/v.xml',
    '2026-01-01 10:00:00,003 7 INFO db odoo: done',
  ].join('\n');
  t.same(odooErrorLines(log), log.split('\n').slice(1, 5));
  t.ok(sameVersion('1.0', '17.0.1.0', '17.0'));
  t.ok(sameVersion('17.0.1.0', '17.0.1.0', '17.0'));
  t.notOk(sameVersion('1.1', '17.0.1.0', '17.0'));
  t.notOk(sameVersion('1.0', null, '17.0'));
});

t.test('the database address pulser connects to', async (t) => {
  const viaGateway = await desiredEnv(t, { database: { host: 'host.docker.internal', port: 5433 } });
  t.same(dbTarget(viaGateway), { address: '127.0.0.1', port: 5433, user: 'odoo', password: 'db-secret-1', database: 'odoo_staging' }, 'the Docker host alias means this machine');
  const remote = await desiredEnv(t, { database: { host: 'db.internal' } });
  t.equal(dbTarget(remote).address, 'db.internal');
  const explicit = await desiredEnv(t, { database: { host: 'pg', address: '10.0.0.5' } });
  t.equal(dbTarget(explicit).address, '10.0.0.5', 'database.address wins');
});
