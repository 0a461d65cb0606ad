// Faults of a remote host: a dropped SSH connection is made again, a host that goes away (sshd
// stopped, link cut in the middle of a rollout) gives a transient error and the next pass converges,
// and a host presenting another host key than the pinned one is refused before anything runs.
import t from 'tap';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { World, suffix, freePort } from '../helpers/world.ts';
import { RemoteHosts } from '../helpers/remote-hosts.ts';

const hosts = await RemoteHosts.up('faults', 1);
t.teardown(() => hosts.down());
const w = await World.create({ hostsYaml: hosts.hostsYaml() });
t.teardown(() => w.cleanup());
const p = w.start({ ssh: { connectTimeoutMs: 2_000, operationTimeoutMs: 2_000, keepaliveIntervalMs: 500, keepaliveCountMax: 2, backoffBaseMs: 50, backoffMaxMs: 500 } });

const env = `f-${suffix()}`;
const port = await freePort();
await w.env(env, { host: 'h1', port, retries: 40 });

async function served(): Promise<string | undefined> {
  const r = await p.drivers().probe('h1', port, '/version.txt', 2000);
  return r.status === 200 ? r.body.trim() : undefined;
}

async function containers() {
  return hosts.docker('h1').listContainers({ all: true, filters: { label: [`io.pulser.env=${env}`] } });
}

t.test('the environment converges on the remote host', async (t) => {
  const [rec] = await w.pass(env);
  t.equal(rec!.outcome, 'applied', JSON.stringify(rec!.errors));
  t.equal(await served(), '17.0.1');
});

t.test('a dropped SSH connection is made again by the next call', async (t) => {
  const conn = p.drivers().ssh('h1')!;
  const before = conn.connects;
  await hosts.drop('h1');
  const [rec] = await w.pass(env, 'plan');
  t.equal(rec!.outcome, 'in-sync', JSON.stringify(rec!.errors));
  t.equal(conn.connects, before + 1, 'exactly one new connection');
  t.equal(await served(), '17.0.1');
});

t.test('sshd stopped: a transient error, then the next pass converges', async (t) => {
  await hosts.sshd('h1', 'stop');
  await hosts.drop('h1');
  await w.kv(`${env}.image_tag`, '17.0.2');
  const [down] = await w.pass(env);
  t.equal(down!.outcome, 'failed');
  t.equal(down!.errors[0]!.code, 'PULSER_E_SSH_UNREACHABLE', JSON.stringify(down!.errors));
  t.equal(down!.errors[0]!.class, 'transient');
  t.match(await p.metrics.registry.metrics(), /pulser_host_up\{host="h1"\} 0/, 'the host is reported down');
  await hosts.sshd('h1', 'start');
  const [up] = await w.pass(env);
  t.equal(up!.outcome, 'applied', JSON.stringify(up!.errors));
  t.equal(await served(), '17.0.2');
  t.match(await p.metrics.registry.metrics(), /pulser_host_up\{host="h1"\} 1/, 'and up again');
});

t.test('the link goes down in the middle of a rollout: transient error, the next pass finishes it', async (t) => {
  await w.kv(`${env}.image_tag`, '17.0.1');
  const pass = w.pass(env);
  // Cut the link as soon as the new container exists (the rollout then waits for its health).
  const deadline = Date.now() + 20_000;
  while ((await containers()).length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  t.equal((await containers()).length, 2, 'the rollout had created the new container');
  await hosts.link('h1', 'down');
  const [cut] = await pass;
  t.equal(cut!.outcome, 'failed');
  const codes = cut!.errors.map((e) => e.code);
  t.ok(
    cut!.errors.every((e) => e.class === 'transient'),
    `transient errors only: ${codes.join(', ')}`,
  );
  t.ok(codes.some((c) => c === 'PULSER_E_SSH_UNREACHABLE' || c === 'PULSER_E_TIMEOUT'), codes.join(', '));
  await hosts.link('h1', 'up');
  const [next] = await w.pass(env);
  t.equal(next!.outcome, 'applied', JSON.stringify(next!.errors));
  t.equal(next!.driftAfter, 0);
  const left = await containers();
  t.equal(left.length, 1, 'one container left, nothing duplicated');
  t.equal(left[0]!.Image, 'pulser-demo/odoo:17.0.1');
  t.equal(await served(), '17.0.1');
});

t.test('a host presenting another host key is refused and nothing runs on it', async (t) => {
  const log = path.join(path.dirname(hosts.get('h1').keyFile), 'h1', 'sshd.log');
  const accepted = async () => ((await readFile(log, 'utf8')).match(/Accepted publickey/g) ?? []).length;
  const newPin = await hosts.rekey('h1');
  t.not(newPin, hosts.get('h1').fingerprint);
  const sessions = await accepted();
  const before = (await containers()).map((c) => c.Id);
  await w.kv(`${env}.image_tag`, '17.0.2');
  const [refused] = await w.pass(env);
  t.equal(refused!.outcome, 'failed');
  t.equal(refused!.errors[0]!.code, 'PULSER_E_SSH_HOST_KEY');
  t.equal(refused!.errors[0]!.class, 'terminal');
  t.match(refused!.errors[0]!.message, newPin, 'the message names the key presented');
  t.equal(await accepted(), sessions, 'no SSH session was opened');
  t.same((await containers()).map((c) => c.Id), before, 'nothing changed on the host');

  // Pinning the new key (a change of hosts.yaml) lets the next pass through.
  await w.writeFile('environments/hosts.yaml', hosts.hostsYaml({ h1: newPin }));
  const [ok] = await w.pass(env);
  t.equal(ok!.outcome, 'applied', JSON.stringify(ok!.errors));
  t.equal(await served(), '17.0.2');
});
