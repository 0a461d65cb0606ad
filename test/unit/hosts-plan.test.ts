// The hosts planner and its command builders, without any engine: a missing droplet is one create
// with tags and cloud-init, a droplet not active yet is a wait, two droplets under one name a finding.
import t from 'tap';
import { dropletCreateRequest, planHosts, parseMeminfo, DEFAULT_USER_DATA, type HostsObserved } from '../../reconcilers/hosts/index.ts';
import type { DesiredEnv } from '../../src/spec/model.ts';
import type { Host } from '../../src/spec/types.gen.ts';

const doHost = {
  kind: 'digitalocean',
  token: '${secret:DO_TOKEN}',
  api: 'https://api.digitalocean.com',
  droplet: { name: 'odoo-sgp-1', size: 's-2vcpu-4gb', region: 'sgp1', image: 'debian-12-x64', tags: ['env:prod', 'pulser'], sshKeys: [12345] },
  user: 'root',
  key: '${secret:SSH_KEY}',
  hostKey: 'SHA256:JCwAt+JxsRjY23jkiKa5fzmrXO6Xk+cKHYQ0llhs1Ow',
  port: 22,
} as Host;

function desired(host: Host): DesiredEnv {
  return { name: 'prod', hostName: 'sgp-1', host } as DesiredEnv;
}

function observed(droplets: HostsObserved['droplets']): HostsObserved {
  return { host: 'sgp-1', kind: 'digitalocean', droplets, facts: null };
}

t.test('the create request: pulser tag first, cloud-init that installs Docker by default', async (t) => {
  t.same(dropletCreateRequest(doHost as Extract<Host, { kind: 'digitalocean' }>), {
    name: 'odoo-sgp-1',
    region: 'sgp1',
    size: 's-2vcpu-4gb',
    image: 'debian-12-x64',
    ssh_keys: [12345],
    tags: ['pulser', 'env:prod'],
    user_data: DEFAULT_USER_DATA,
  });
  t.match(DEFAULT_USER_DATA, /^#cloud-config\n/);
  t.match(DEFAULT_USER_DATA, /docker\.io/);
});

t.test('a missing droplet is one safe create', async (t) => {
  const p = planHosts(desired(doHost), observed([]));
  t.equal(p.changes.length, 1);
  t.match(p.changes[0], { subject: 'prod/hosts/sgp-1', reconciler: 'hosts', action: 'create', risk: 'safe', summary: 'droplet odoo-sgp-1 (s-2vcpu-4gb, sgp1, debian-12-x64)', op: { kind: 'create-droplet', host: 'sgp-1' } });
  t.same(p.findings, []);
});

t.test('a droplet that is not active is waited for; an active one needs nothing', async (t) => {
  const waiting = planHosts(desired(doHost), observed([{ id: 7, name: 'odoo-sgp-1', status: 'new', address: null, tags: ['pulser'] }]));
  t.match(waiting.changes, [{ action: 'run', op: { kind: 'await-droplet', id: 7 } }]);
  const active = planHosts(desired(doHost), observed([{ id: 7, name: 'odoo-sgp-1', status: 'active', address: '203.0.113.7', tags: ['pulser'] }]));
  t.same(active, { changes: [], findings: [] });
});

t.test('two droplets under one name: a finding, never a create or a guess', async (t) => {
  const p = planHosts(desired(doHost), observed([
    { id: 7, name: 'odoo-sgp-1', status: 'active', address: '203.0.113.7', tags: ['pulser'] },
    { id: 8, name: 'odoo-sgp-1', status: 'active', address: '203.0.113.8', tags: ['pulser'] },
  ]));
  t.same(p.changes, []);
  t.equal(p.findings[0]!.error.code, 'PULSER_E_DROPLET_AMBIGUOUS');
});

t.test('ssh and local hosts plan nothing', async (t) => {
  t.same(planHosts(desired({ kind: 'local' } as Host), { host: 'l', kind: 'local', droplets: [], facts: null }), { changes: [], findings: [] });
});

t.test('the meminfo parser', async (t) => {
  t.same(parseMeminfo('MemTotal:       24522948 kB\nMemFree:        1000 kB\nMemAvailable:   22000000 kB\n'), { total: 24522948 * 1024, available: 22000000 * 1024 });
  t.throws(() => parseMeminfo('garbage'), { code: 'PULSER_E_INTERNAL' });
});
