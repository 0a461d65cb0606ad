// A tag change rolls out and the new container serves; a tag whose health check fails (or whose
// container crashes) is rolled back, and the previous container keeps answering HTTP.
import t from 'tap';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { World, suffix, httpGet } from '../helpers/world.ts';
import { createPulser } from '../../src/app.ts';

const w = await World.create();
t.teardown(() => w.cleanup());
const name = `ro-${suffix()}`;
const port = await w.env(name, { tag: '17.0.1', retries: 20 });
const p = w.start();

async function served(): Promise<string | undefined> {
  return (await httpGet(`http://127.0.0.1:${port}/version.txt`))?.body.trim();
}

t.test('a new environment gets its container', async (t) => {
  const [rec] = await w.pass(name);
  t.equal(rec!.outcome, 'applied', JSON.stringify(rec!.errors));
  t.equal(rec!.plan.changes[0]!.action, 'create');
  t.equal(await served(), '17.0.1');
  const cs = await w.containersOf(name);
  t.equal(cs.length, 1);
  t.equal(cs[0]!.Names[0], `/pulser-${name}-odoo`);
  t.equal(cs[0]!.Labels['io.pulser.service'], 'odoo');
  t.match(cs[0]!.Labels['io.pulser.spec-hash'], /^sha256:[0-9a-f]{64}$/);
});

t.test('a tag change rolls out and the new container serves', async (t) => {
  await w.kv(`${name}.image_tag`, '17.0.2');
  const [plan] = await w.pass(name, 'plan');
  t.equal(plan!.outcome, 'planned');
  t.equal(plan!.plan.changes[0]!.summary, 'image pulser-demo/odoo:17.0.1 → pulser-demo/odoo:17.0.2');
  t.equal(plan!.plan.changes[0]!.risk, 'disruptive');
  t.equal(await served(), '17.0.1', 'planning changed nothing');

  const [rec] = await w.pass(name);
  t.equal(rec!.outcome, 'applied', JSON.stringify(rec!.errors));
  t.equal(rec!.driftAfter, 0);
  t.equal(await served(), '17.0.2');
  const cs = await w.containersOf(name);
  t.equal(cs.length, 1, 'the previous container is gone');
  t.equal(cs[0]!.Image, 'pulser-demo/odoo:17.0.2');
  const info = await w.docker.getContainer(cs[0]!.Id).inspect();
  t.equal(info.HostConfig.RestartPolicy?.Name, 'unless-stopped', 'a healthy container gets the steady restart policy');
  const status = p.engine.status.get(name)!;
  t.ok(status.inSync);
  const running = (status.facts.containers as { running: { image: string; imageId: string } }).running;
  t.equal(running.image, 'pulser-demo/odoo:17.0.2');
  t.match(running.imageId, /^sha256:/, 'the image id actually running is recorded');
  t.equal(rec!.apply[0]!.detail?.imageId, running.imageId);
});

t.test('a tag failing its health check is rolled back; the old container still answers', async (t) => {
  await w.kv(`${name}.image_tag`, 'broken');
  const [rec] = await w.pass(name);
  t.equal(rec!.outcome, 'failed');
  const err = rec!.errors.find((e) => e.code === 'PULSER_E_HEALTH_CHECK_FAILED');
  t.ok(err, 'coded error');
  t.match(err!.message, /failed 20 health probe\(s\); last: GET http:\/\/127\.0\.0\.1:\d+\/web\/health: HTTP 404/);
  t.match(err!.message, /rolled back to [0-9a-f]{12} \(pulser-demo\/odoo:17\.0\.2\)/);
  t.equal(await served(), '17.0.2', 'old container serves again');
  t.equal((await httpGet(`http://127.0.0.1:${port}/web/health`))?.status, 200);
  const cs = await w.containersOf(name);
  t.equal(cs.length, 1, 'the failed container was removed');
  t.equal(cs[0]!.Names[0], `/pulser-${name}-odoo`, 'the old container has its name back');

  const status = p.engine.status.get(name)!;
  t.equal(status.lastError?.code, 'PULSER_E_HEALTH_CHECK_FAILED');
  t.match(status.lastError?.message, /HTTP 404/);
  t.equal(status.stalled?.error.code, 'PULSER_E_HEALTH_CHECK_FAILED');

  const pack = path.join(p.evidence!.dir, rec!.passId, name);
  const lines = (await readFile(path.join(pack, 'apply.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
  const probe = lines.at(-1).detail.probe;
  t.equal(probe.status, 404, 'evidence names the failing probe status');
  t.match(probe.url, /\/web\/health$/);
  t.equal(probe.attempts, 20);
  const summary = await readFile(path.join(pack, 'summary.md'), 'utf8');
  t.match(summary, /PULSER_E_HEALTH_CHECK_FAILED/);
});

t.test('the same failing spec is not retried until it changes (stalled), but `apply` forces it', async (t) => {
  const [again] = await w.pass(name);
  t.equal(again!.outcome, 'planned');
  t.ok(again!.errors.some((e) => e.code === 'PULSER_E_STALLED'));
  t.equal(again!.apply.length, 0);
});

t.test('another process (a restarted daemon, `pulser status`) tells the same stall and error, and does not retry', async (t) => {
  const daemon = p.engine.status.get(name)!;
  const other = createPulser({ root: w.root, evidenceDir: null, processMetrics: false, logWrite: () => undefined });
  t.teardown(() => other.close());
  const load = (await other.load()).envs.get(name)!;
  await other.engine.runPass(load, { mode: 'plan', trigger: 'cli status', fresh: true });
  const seen = other.engine.status.get(name)!;
  t.same(seen.stalled, daemon.stalled, 'the same stall, on the same spec');
  t.equal(seen.stalled?.error.code, 'PULSER_E_HEALTH_CHECK_FAILED');
  t.equal(seen.lastError?.code, daemon.lastError?.code, `the same last error (${daemon.lastError?.code})`);
  const again = await other.engine.runPass(load, { mode: 'apply', trigger: 'restart' });
  t.equal(again.outcome, 'planned', 'a restarted process does not retry the failing spec either');
  t.ok(again.errors.some((e) => e.code === 'PULSER_E_STALLED'));
  t.equal(await served(), '17.0.2');
});

t.test('a container that crashes during rollout is rolled back too', async (t) => {
  await w.kv(`${name}.image_tag`, 'crash');
  const [rec] = await w.pass(name);
  t.equal(rec!.outcome, 'failed');
  const err = rec!.errors.find((e) => e.code === 'PULSER_E_CONTAINER_EXITED');
  t.ok(err, JSON.stringify(rec!.errors));
  t.match(err!.message, /exited with code 3/);
  t.equal(await served(), '17.0.2');
  const lines = (await readFile(path.join(p.evidence!.dir, rec!.passId, name, 'apply.jsonl'), 'utf8')).trim().split('\n');
  t.match(JSON.parse(lines.at(-1)!).detail.logTail, /Odoo version/, 'the crashed container log is kept in evidence');
});

t.test('a fixed spec converges again', async (t) => {
  await w.kv(`${name}.image_tag`, '17.0.3');
  const [rec] = await w.pass(name);
  t.equal(rec!.outcome, 'applied');
  t.equal(await served(), '17.0.3');
  t.equal(p.engine.status.get(name)!.stalled, null);
});
