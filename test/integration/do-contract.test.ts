// The DigitalOcean client against a local stand-in whose every request and response is checked
// against DigitalOcean's OpenAPI description: create, already exists, becomes active, rate limits
// and server errors, with their coded errors. The checker itself is shown to catch violations.
import t from 'tap';
import { DigitalOceanStandIn } from '../helpers/do-server.ts';
import { DigitalOceanClient, publicIpv4 } from '../../src/drivers/digitalocean.ts';
import { PulserError } from '../../src/errors.ts';

const api = new DigitalOceanStandIn();
await api.start();
t.teardown(() => api.stop());

const waits: number[] = [];
function client(token = api.token) {
  return new DigitalOceanClient({ baseUrl: api.url, token: async () => token, timeoutMs: 5_000, backoffBaseMs: 10, sleep: async (ms) => void waits.push(ms) });
}
const spec = { name: 'odoo-sgp-1', region: 'sgp1', size: 's-2vcpu-4gb', image: 'debian-12-x64', tags: ['pulser', 'env:prod'], ssh_keys: ['3b:16:bf:e4:8b:00:8b:b8:59:8c:a9:d3:f0:19:45:fa'], user_data: '#cloud-config\npackages: [docker.io]\n' };

t.test('create: looked up by tag first, then created once', async (t) => {
  const c = client();
  t.same(await c.dropletsByTag('pulser'), []);
  const d = await c.createDroplet(spec);
  t.equal(d.name, 'odoo-sgp-1');
  t.equal(d.status, 'new');
  t.same(d.tags, ['pulser', 'env:prod']);
  const post = api.exchanges.find((e) => e.method === 'POST')!;
  t.equal(post.operation, 'POST /v2/droplets');
  t.same((post.requestBody as { user_data: string }).user_data, spec.user_data, 'cloud-init sent as user_data');
});

t.test('already exists: found by name and tag', async (t) => {
  const found = (await client().dropletsByTag('pulser')).filter((d) => d.name === 'odoo-sgp-1');
  t.equal(found.length, 1);
});

t.test('becomes active, with a public address', async (t) => {
  const c = client();
  const [d] = await c.dropletsByTag('pulser');
  const first = await c.droplet(d!.id);
  t.equal(first!.status, 'new');
  t.equal(publicIpv4(first!), null);
  const second = await c.droplet(d!.id);
  t.equal(second!.status, 'active');
  t.equal(publicIpv4(second!), api.nextAddress);
  t.equal(await c.droplet(999), null, 'a droplet that does not exist is null');
});

t.test('rate limited: waits for ratelimit-reset or retry-after, then retries', async (t) => {
  waits.length = 0;
  const reset = Math.floor(Date.now() / 1000) + 3;
  api.fail('GET', /^\/v2\/droplets$/, { status: 429, body: { id: 'too_many_requests', message: 'API Rate limit exceeded.' }, headers: { 'ratelimit-remaining': '0', 'ratelimit-reset': String(reset) } });
  api.fail('GET', /^\/v2\/droplets$/, { status: 429, body: { id: 'too_many_requests', message: 'API Rate limit exceeded.' }, headers: { 'retry-after': '2' } });
  const list = await client().dropletsByTag('pulser');
  t.equal(list.length, 1);
  t.equal(waits.length, 2);
  t.ok(waits[0]! > 1000 && waits[0]! <= 3000, `waited ${waits[0]} ms for the reset`);
  t.equal(waits[1], 2000, 'retry-after in seconds');
  api.fail('GET', /^\/v2\/droplets$/, { status: 429, body: { id: 'too_many_requests', message: 'API Rate limit exceeded.' }, headers: { 'retry-after': '3600' } });
  await t.rejects(client().dropletsByTag('pulser'), { code: 'PULSER_E_DO_RATE_LIMITED', class: 'transient' }, 'a wait beyond the limit is a transient error');
  const posts = api.exchanges.filter((e) => e.method === 'POST').length;
  api.fail('POST', /^\/v2\/droplets$/, { status: 429, body: { id: 'too_many_requests', message: 'API Rate limit exceeded.' }, headers: { 'retry-after': '1' } });
  await t.rejects(client().createDroplet({ ...spec, name: 'other' }), { code: 'PULSER_E_DO_RATE_LIMITED' });
  t.equal(api.exchanges.filter((e) => e.method === 'POST').length, posts + 1, 'a create is never retried blindly');
});

t.test('server errors: reads are retried, a create is not', async (t) => {
  api.fail('GET', /^\/v2\/droplets$/, { status: 500, body: { id: 'server_error', message: 'Unexpected server-side error' } }, 2);
  t.equal((await client().dropletsByTag('pulser')).length, 1, 'two 500s, then an answer');
  api.fail('GET', /^\/v2\/droplets$/, { status: 503, body: { id: 'service_unavailable', message: 'unavailable' } }, 4);
  await t.rejects(client().dropletsByTag('pulser'), { code: 'PULSER_E_DO_SERVER', class: 'transient' });
  const before = api.droplets.size;
  api.fail('POST', /^\/v2\/droplets$/, { status: 500, body: { id: 'server_error', message: 'Unexpected server-side error' } });
  await t.rejects(client().createDroplet({ ...spec, name: 'odoo-sgp-2' }), { code: 'PULSER_E_DO_SERVER', class: 'transient' });
  t.equal(api.droplets.size, before, 'nothing created twice');
});

t.test('terminal errors: bad token, invalid request', async (t) => {
  await t.rejects(client('wrong-token').dropletsByTag('pulser'), { code: 'PULSER_E_DO_AUTH', class: 'terminal' });
  const err = await client().createDroplet({ ...spec, region: 'mars1' }).catch((e: PulserError) => e);
  t.match(err, { code: 'PULSER_E_DO_INVALID', class: 'terminal' });
  t.match((err as PulserError).message, /HTTP 422 unprocessable_entity: mars1 is not a valid region/);
});

t.test('the contract checker catches what breaks the description', async (t) => {
  const seen = api.violations.length;
  await fetch(`${api.url}/v2/droplets/1/nonsense`, { headers: { authorization: `Bearer ${api.token}` } });
  t.equal(api.violations.length, seen + 1, 'an unknown route');
  await fetch(`${api.url}/v2/droplets`, { method: 'POST', headers: { authorization: `Bearer ${api.token}`, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'x', region: 'sgp1' }) });
  const before = api.droplets.size;
  const bad = await fetch(`${api.url}/v2/droplets`, { method: 'POST', headers: { authorization: `Bearer ${api.token}`, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'y', region: 'sgp1' }) });
  t.equal(bad.status, 422, 'refused like the real API would');
  t.equal(api.droplets.size, before);
  t.ok(
    api.violations.slice(seen + 1).some((v) => v.startsWith('POST /v2/droplets request')),
    'a create without size and image',
  );
  const afterCreate = api.violations.length;
  await fetch(`${api.url}/v2/droplets?colour=blue`, { headers: { authorization: `Bearer ${api.token}` } });
  t.equal(api.violations.length, afterCreate + 1);
  t.match(api.violations.at(-1), /undeclared query parameter colour/);
  api.violations.splice(seen);
});

t.test('every exchange of the client followed the contract', async (t) => {
  t.same(api.violations, []);
  t.ok(api.exchanges.length > 15, `${api.exchanges.length} exchanges checked`);
});
