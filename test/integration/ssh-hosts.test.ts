// Two remote hosts (own sshd, own dockerd, own network namespace), one environment on each: pulser
// converges both over one SSH connection per host, and a change to one host's environment touches
// nothing on the other.
import t from 'tap';
import { World, suffix, freePort } from '../helpers/world.ts';
import { RemoteHosts, KEY_SECRET } from '../helpers/remote-hosts.ts';
import { DigitalOceanStandIn } from '../helpers/do-server.ts';

const hosts = await RemoteHosts.up('iso', 2);
t.teardown(() => hosts.down());
const w = await World.create({ hostsYaml: hosts.hostsYaml() });
t.teardown(() => w.cleanup());
const p = w.start();

const a = `a-${suffix()}`;
const b = `b-${suffix()}`;
// The same port on both hosts: ports are claimed per host.
const port = await freePort();
await w.env(a, { host: 'h1', port, retries: 30 });
await w.env(b, { host: 'h2', port, retries: 30 });

async function containersOn(host: string, env: string) {
  return hosts.docker(host).listContainers({ all: true, filters: { label: [`io.pulser.env=${env}`] } });
}

t.test('each environment is created on its own host, over SSH', async (t) => {
  const recs = await w.pass();
  for (const r of recs) t.equal(r.outcome, 'applied', `${r.env}: ${JSON.stringify(r.errors)}`);
  const onH1 = await containersOn('h1', a);
  const onH2 = await containersOn('h2', b);
  t.equal(onH1.length, 1);
  t.equal(onH2.length, 1);
  t.equal(onH1[0]!.Image, 'pulser-demo/odoo:17.0.1');
  t.same(await containersOn('h1', b), [], 'nothing of b on h1');
  t.same(await containersOn('h2', a), [], 'nothing of a on h2');
  const probe = await p.drivers().probe('h1', port, '/version.txt', 2000);
  t.equal(probe.status, 200, 'the published port answers through an SSH forward');
  t.equal(probe.body.trim(), '17.0.1');
  t.equal(p.drivers().ssh('h1')!.connects, 1, 'one SSH connection to h1 carried everything');
  t.equal(p.drivers().ssh('h2')!.connects, 1, 'one SSH connection to h2 carried everything');
});

t.test("a change to one host's environment touches nothing on the other", async (t) => {
  const [before] = await containersOn('h2', b);
  const info = await hosts.docker('h2').getContainer(before!.Id).inspect();
  const markNs = BigInt(Date.now()) * 1_000_000n;
  const since = Math.floor(Date.now() / 1000) - 1;
  await w.kv(`${a}.image_tag`, '17.0.2');
  const recs = await w.pass();
  const byEnv = new Map(recs.map((r) => [r.env, r]));
  t.equal(byEnv.get(a)!.outcome, 'applied', JSON.stringify(byEnv.get(a)!.errors));
  t.equal(byEnv.get(a)!.plan.changes[0]!.summary, 'image pulser-demo/odoo:17.0.1 → pulser-demo/odoo:17.0.2');
  t.equal(byEnv.get(b)!.outcome, 'in-sync');
  t.equal(byEnv.get(b)!.plan.changes.length, 0);

  const probe = await p.drivers().probe('h1', port, '/version.txt', 2000);
  t.equal(probe.body.trim(), '17.0.2', 'h1 serves the new tag');
  const probe2 = await p.drivers().probe('h2', port, '/version.txt', 2000);
  t.equal(probe2.body.trim(), '17.0.1', 'h2 still serves the old one');

  const [after] = await containersOn('h2', b);
  t.equal(after!.Id, before!.Id, 'same container on h2');
  const info2 = await hosts.docker('h2').getContainer(after!.Id).inspect();
  t.equal(info2.State.StartedAt, info.State.StartedAt, 'not restarted');
  // The engine's own event log of h2: no container was created, started, stopped or renamed.
  const until = Math.ceil(Date.now() / 1000) + 1;
  const stream = (await hosts.docker('h2').getEvents({ since, until, filters: { type: ['container'] } })) as NodeJS.ReadableStream;
  let text = '';
  for await (const chunk of stream) text += chunk.toString();
  const events = text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { Action: string; timeNano: number })
    .filter((e) => BigInt(e.timeNano) >= markNs);
  t.same(events.map((e) => e.Action).filter((x) => !x.startsWith('exec_')), [], 'no container events on h2');
  t.equal((await containersOn('h1', a)).length, 1, 'the previous container on h1 is gone');
});

t.test('the log explorer reads a remote container over the same connection', async (t) => {
  const res = await p.logs(a, { grep: 'Odoo version', n: '5' });
  t.equal(res.host, 'h1');
  t.equal(res.records.length, 1);
  t.equal(res.records[0]!.message, 'Odoo version 17.0.2');
  t.equal(res.records[0]!.level, 'INFO');
  t.equal(p.drivers().ssh('h1')!.connects, 1);
});

t.test('host facts reach status and metrics', async (t) => {
  const facts = (p.engine.status.get(a)!.facts.hosts as { facts: { dockerVersion: string; diskUsedRatio: number; memTotalBytes: number } }).facts;
  t.match(facts.dockerVersion, /^\d+\.\d+/);
  t.ok(facts.diskUsedRatio > 0 && facts.diskUsedRatio < 1, `disk ${facts.diskUsedRatio}`);
  t.ok(facts.memTotalBytes > 0);
  const text = await p.metrics.registry.metrics();
  t.match(text, /pulser_host_up\{host="h1"\} 1/);
  t.match(text, /pulser_host_up\{host="h2"\} 1/);
  t.match(text, /pulser_host_disk_used_ratio\{host="h1"\} 0\.\d+/);
});

t.test('a digitalocean host: one droplet created for two environments, then reached over SSH', async (t) => {
  const api = new DigitalOceanStandIn();
  await api.start();
  t.teardown(() => api.stop());
  // The droplet the stand-in hands out is h2: a real machine with sshd and dockerd.
  const h2 = hosts.get('h2');
  api.nextAddress = h2.address;
  process.env.TEST_DO_TOKEN = api.token;
  const doYaml = [
    '  do1:',
    '    kind: digitalocean',
    `    api: ${api.url}`,
    '    token: ${secret:TEST_DO_TOKEN}',
    '    droplet: { name: odoo-test-1, size: s-1vcpu-1gb, region: sgp1, image: debian-12-x64, tags: [env-test] }',
    '    user: root',
    `    key: \${secret:${KEY_SECRET}}`,
    `    hostKey: ${h2.fingerprint}`,
    `    docker: { socket: ${h2.dockerSocket} }`,
  ].join('\n');
  await w.writeFile('environments/hosts.yaml', hosts.hostsYaml() + doYaml + '\n');
  const d1 = `d1-${suffix()}`;
  const d2 = `d2-${suffix()}`;
  await w.env(d1, { host: 'do1', port: port + 1 });
  await w.env(d2, { host: 'do1', port: port + 2 });
  const recs = await w.pass();
  for (const r of recs) t.ok(r.outcome === 'applied' || r.outcome === 'in-sync', `${r.env}: ${r.outcome} ${JSON.stringify(r.errors)}`);
  const creates = api.exchanges.filter((e) => e.method === 'POST');
  t.equal(creates.length, 1, 'one droplet created for two environments');
  t.same((creates[0]!.requestBody as { tags: string[] }).tags, ['pulser', 'env-test']);
  t.match((creates[0]!.requestBody as { user_data: string }).user_data, /docker\.io/);
  t.equal(api.droplets.size, 1);
  t.equal((await containersOn('h2', d1)).length, 1, 'the environment runs on the droplet');
  t.equal((await containersOn('h2', d2)).length, 1);
  const again = await w.pass();
  for (const r of again) t.equal(r.outcome, 'in-sync', `${r.env}: ${JSON.stringify(r.errors)}`);
  t.equal(api.exchanges.filter((e) => e.method === 'POST').length, 1, 'no second create');
  t.same(api.violations, [], 'every exchange followed the DigitalOcean API description');
  t.match(await p.metrics.registry.metrics(), /pulser_host_up\{host="do1"\} 1/);
});
