// Drift made by hand is healed on the next pass; what pulser does not own is never touched.
import t from 'tap';
import { World, suffix, httpGet } from '../helpers/world.ts';

const w = await World.create();
t.teardown(() => w.cleanup());
const p = w.start();

async function converge(name: string) {
  const [rec] = await w.pass(name);
  return rec!;
}

t.test('a container killed by hand is started again', async (t) => {
  const name = `kill-${suffix()}`;
  const port = await w.env(name);
  t.equal((await converge(name)).outcome, 'applied');
  const [c] = await w.containersOf(name);
  await w.docker.getContainer(c!.Id).kill();
  const [plan] = await w.pass(name, 'plan');
  t.equal(plan!.plan.changes.length, 1);
  t.match(plan!.plan.changes[0], { action: 'update', op: { kind: 'start', id: c!.Id } });
  const rec = await converge(name);
  t.equal(rec.outcome, 'applied', JSON.stringify(rec.errors));
  t.equal((await httpGet(`http://127.0.0.1:${port}/web/health`))?.status, 200);
  const after = await w.containersOf(name);
  t.equal(after.length, 1);
  t.equal(after[0]!.Id, c!.Id, 'the same container was restarted, not replaced');
});

t.test('a container removed by hand is recreated', async (t) => {
  const name = `rm-${suffix()}`;
  const port = await w.env(name);
  await converge(name);
  const [c] = await w.containersOf(name);
  await w.docker.getContainer(c!.Id).remove({ force: true });
  const rec = await converge(name);
  t.equal(rec.outcome, 'applied');
  t.equal(rec.plan.changes[0]!.action, 'create');
  t.equal((await httpGet(`http://127.0.0.1:${port}/version.txt`))?.body.trim(), '17.0.1');
  t.equal((await w.containersOf(name)).length, 1);
});

t.test('an unlabelled container with the clashing name is left alone and reported', async (t) => {
  const name = `clash-${suffix()}`;
  await w.env(name);
  const squatter = await w.docker.createContainer({ name: `pulser-${name}-odoo`, Image: 'pulser-demo/odoo:17.0.1', Cmd: ['sleep', '300'], HostConfig: { Init: true } });
  t.teardown(() => squatter.remove({ force: true }).catch(() => {}));
  await squatter.start();
  const before = await squatter.inspect();
  const rec = await converge(name);
  t.equal(rec.outcome, 'failed');
  t.equal(rec.apply.length, 0, 'nothing was applied');
  const err = rec.errors.find((e) => e.code === 'PULSER_E_NAME_CONFLICT');
  t.ok(err);
  t.match(err!.message, /exists without pulser labels; pulser never touches it/);
  const after = await squatter.inspect();
  t.equal(after.State.StartedAt, before.State.StartedAt, 'still running, never restarted');
  t.same(after.Config.Labels, before.Config.Labels);
  t.equal(after.Name, `/pulser-${name}-odoo`);
  t.equal(p.engine.status.get(name)?.lastError?.code, 'PULSER_E_NAME_CONFLICT');
});

t.test('an invalid spec is never applied; the last good state is kept', async (t) => {
  const name = `inv-${suffix()}`;
  const port = await w.env(name, { tag: '17.0.1' });
  t.equal((await converge(name)).outcome, 'applied');
  // Change the tag AND break the spec: the new tag must not roll out.
  await w.kv(`${name}.image_tag`, '17.0.2');
  await w.writeFile(
    `environments/${name}.yaml`,
    `name: ${name}\ntier: staging\nhost: local\nodoo:\n  image: pulser-demo/odoo:\${kv:${name}.image_tag}\n  port: ${port}\n  workers: two\ndatabase: { name: d, host: h, user: u }\n`,
  );
  const rec = await converge(name);
  t.ok(rec.usingLastGood);
  t.equal(rec.errors[0]!.code, 'PULSER_E_SPEC_INVALID');
  t.same(rec.errors[0]!.location, { file: `environments/${name}.yaml`, line: 7, col: 12 });
  t.equal(rec.plan.changes.length, 0, 'the last good spec matches what runs');
  t.equal((await httpGet(`http://127.0.0.1:${port}/version.txt`))?.body.trim(), '17.0.1');
  const metrics = await p.metrics.registry.getSingleMetricAsString('pulser_spec_valid');
  t.match(metrics, new RegExp(`pulser_spec_valid\\{env="${name}"\\} 0`));
  t.equal(p.engine.status.get(name)?.specValid, false);
});

t.test('an environment invalid from the start gets nothing', async (t) => {
  const name = `bad-${suffix()}`;
  await w.env(name, { extra: 'surprise: true' });
  const rec = await converge(name);
  t.equal(rec.outcome, 'invalid');
  t.equal(rec.errors[0]!.code, 'PULSER_E_SPEC_UNKNOWN_KEY');
  t.equal((await w.containersOf(name)).length, 0);
});

t.test('an image that cannot be pulled is a coded error and the old container keeps serving', async (t) => {
  const name = `pull-${suffix()}`;
  const port = await w.env(name);
  t.equal((await converge(name)).outcome, 'applied');
  // A registry on a closed loopback port: the pull is refused at once, nothing leaves the machine.
  await w.env(name, { port, image: '127.0.0.1:9/acme/odoo:17.0.9' });
  const rec = await converge(name);
  t.equal(rec.outcome, 'failed');
  const err = rec.errors.find((e) => e.code === 'PULSER_E_IMAGE_NOT_FOUND');
  t.ok(err, JSON.stringify(rec.errors));
  t.match(err!.message, /127\.0\.0\.1:9\/acme\/odoo:17\.0\.9/);
  t.equal((await httpGet(`http://127.0.0.1:${port}/version.txt`))?.body.trim(), '17.0.1');
  t.equal((await w.containersOf(name)).length, 1);
});

t.test('a container paused by hand is unpaused', async (t) => {
  const name = `pause-${suffix()}`;
  const port = await w.env(name);
  await converge(name);
  const [c] = await w.containersOf(name);
  await w.docker.getContainer(c!.Id).pause();
  const rec = await converge(name);
  t.equal(rec.plan.changes[0]?.summary, `unpause pulser-${name}-odoo (paused)`);
  t.equal(rec.outcome, 'applied', JSON.stringify(rec.errors));
  t.equal((await httpGet(`http://127.0.0.1:${port}/web/health`))?.status, 200);
});
