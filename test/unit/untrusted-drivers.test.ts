// The drivers of an untrusted plan pass on only what the tracked branch declares; everything else
// is refused before the real drivers are called at all.
import t from 'tap';
import { loadSpecs } from '../../src/spec/load.ts';
import { SecretSource } from '../../src/spec/secrets.ts';
import { trustBoundary, untrustedDrivers, withTrackedHost } from '../../src/drivers/untrusted.ts';
import type { Drivers, PgTarget } from '../../src/drivers/index.ts';
import { dbTarget } from '../../src/odoo/db.ts';
import type { SpecSnapshot } from '../../src/spec/model.ts';

const HOSTS = 'hosts:\n  local:\n    kind: local\n  box:\n    kind: ssh\n    address: 10.9.8.7\n    user: root\n    key: "${secret:BOX_KEY}"\n    hostKey: SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n';
const env = (db: string, repo = 'https://github.com/OCA/queue.git') => `name: shop
tier: staging
host: local
odoo: { image: "odoo:17.0", port: 8070 }
database: { name: shop, host: ${db}, user: odoo, password: "\${secret:DB_PW}" }
addons:
  repos: [ { url: "${repo}", ref: "17.0" } ]
  install: [queue_job]
`;

/** A Drivers whose every call is recorded (and otherwise does nothing). */
function recorder(): { drivers: Drivers; calls: string[] } {
  const calls: string[] = [];
  const rec = (name: string) => (...args: unknown[]) => {
    calls.push(`${name} ${JSON.stringify(args)}`);
    return Promise.resolve(undefined);
  };
  const drivers = new Proxy({} as Drivers, {
    get: (_t, prop: string) => {
      if (prop === 'db') return (host: string, target: PgTarget) => (calls.push(`db ${host} ${JSON.stringify(target)}`), { target, query: async () => [], transaction: async () => undefined });
      if (prop === 'hostNames') return () => ['local', 'box'];
      return rec(prop);
    },
  });
  return { drivers, calls };
}

async function load(root: string, untrusted: boolean): Promise<SpecSnapshot> {
  return loadSpecs(root, { secrets: new SecretSource({ env: { DB_PW: 'real-password', BOX_KEY: 'k' } }), untrusted });
}

t.test('what the tracked branch declares passes, with the tracked credentials', async (t) => {
  const tracked = await load(t.testdir({ environments: { 'hosts.yaml': HOSTS, 'shop.yaml': env('db1') } }), false);
  const pr = await load(t.testdir({ environments: { 'hosts.yaml': HOSTS, 'shop.yaml': env('db1') } }), true);
  const boundary = trustBoundary(tracked, pr);
  t.same([...boundary.hosts].sort(), ['box', 'local']);
  const { drivers, calls } = recorder();
  const guarded = untrustedDrivers(drivers, boundary);
  const l = pr.envs.get('shop')!;
  if (!l.ok) throw new Error('invalid');
  const d = withTrackedHost(l.desired, tracked, boundary);
  t.equal(d.spec.database.password, '${secret:DB_PW}', 'the pull request holds the reference');
  await guarded.db('local', dbTarget(d)).query('select 1');
  t.match(calls[0], /^db local .*"password":"real-password"/, 'the tracked password goes to the tracked server only');
  await guarded.fetchMirror('/tmp/m', 'https://github.com/OCA/queue.git', { allowLocal: false });
  await guarded.docker('box');
  t.equal(calls.length, 3);
});

t.test('what a pull request adds or changes never reaches the real drivers', async (t) => {
  const tracked = await load(t.testdir({ environments: { 'hosts.yaml': HOSTS, 'shop.yaml': env('db1') } }), false);
  const changedHosts = HOSTS.replace('10.9.8.7', '10.9.8.8') + '  extra:\n    kind: local\n';
  const pr = await load(t.testdir({ environments: { 'hosts.yaml': changedHosts, 'shop.yaml': env('evil-db', 'https://evil.example/x.git') } }), true);
  const boundary = trustBoundary(tracked, pr);
  const { drivers, calls } = recorder();
  const guarded = untrustedDrivers(drivers, boundary);
  const l = pr.envs.get('shop')!;
  if (!l.ok) throw new Error('invalid');
  await t.rejects(guarded.db('local', dbTarget(l.desired)).query('select 1'), { code: 'PULSER_E_NOT_OBSERVED', message: /would connect to database shop as odoo at evil-db:5432/ });
  await t.rejects(guarded.fetchMirror('/tmp/m', 'https://evil.example/x.git', { allowLocal: false }), { code: 'PULSER_E_NOT_OBSERVED', message: /repository https:\/\/evil\.example\/x\.git/ });
  t.throws(() => guarded.docker('box'), { code: 'PULSER_E_NOT_OBSERVED', message: /host box \(root@10\.9\.8\.8:22\) is declared differently/ });
  t.throws(() => guarded.docker('extra'), { code: 'PULSER_E_NOT_OBSERVED', message: /not declared on the tracked branch/ });
  t.throws(() => guarded.digitalOcean('box'), { code: 'PULSER_E_NOT_OBSERVED' });
  await t.rejects(guarded.exec('box', ['true']), { code: 'PULSER_E_NOT_OBSERVED' });
  await t.rejects(guarded.tcp('local', '10.0.0.1', 5432), { code: 'PULSER_E_NOT_OBSERVED' });
  await t.rejects(guarded.secret('${secret:DB_PW}', 'x'), { code: 'PULSER_E_NOT_OBSERVED' }, 'no secret is resolved for an untrusted plan');
  // Same server, another password reference: the tracked password is not handed over.
  const other = await load(t.testdir({ environments: { 'hosts.yaml': HOSTS, 'shop.yaml': env('db1').replace('DB_PW', 'OTHER_PW') } }), true);
  const lo = other.envs.get('shop')!;
  if (!lo.ok) throw new Error('invalid');
  await t.rejects(untrustedDrivers(drivers, trustBoundary(tracked, other)).db('local', dbTarget(lo.desired)).query('select 1'), { code: 'PULSER_E_NOT_OBSERVED' });
  t.same(calls, [], 'the real drivers were never called');
});

t.test('without a tracked branch nothing is trusted', async (t) => {
  const pr = await load(t.testdir({ environments: { 'hosts.yaml': HOSTS, 'shop.yaml': env('db1') } }), true);
  const boundary = trustBoundary(null, pr);
  t.same([...boundary.hosts], []);
  const { drivers, calls } = recorder();
  t.throws(() => untrustedDrivers(drivers, boundary).docker('local'), { code: 'PULSER_E_NOT_OBSERVED' });
  t.same(calls, []);
});
