// The loop with the real engine and the file watch: a new tag written to ops/kv rolls out with no
// manual trigger; a spec made invalid leaves the running container alone (last good state) and
// shows as invalid in metrics and status until it is fixed.
import t from 'tap';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { World, suffix, httpGet } from '../helpers/world.ts';

const w = await World.create();
const name = `lw-${suffix()}`;
const port = await w.env(name, { tag: '17.0.1' });
const specFile = path.join('environments', `${name}.yaml`);
const validSpec = await readFile(path.join(w.root, specFile), 'utf8');
const p = w.start({ debounceMs: 100 });
t.teardown(async () => {
  await p.loop.stop();
  await w.cleanup();
});

async function served(): Promise<string | undefined> {
  return (await httpGet(`http://127.0.0.1:${port}/version.txt`))?.body.trim();
}

/** Polls check() until it returns true; fails with the last state seen after the deadline. */
async function until(what: string, check: () => Promise<boolean> | boolean, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms / 1000}s waiting for ${what}; last log lines:\n${w.logs.slice(-15).join('\n')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function specValidMetric(): Promise<number | null> {
  const text = await p.metrics.registry.metrics();
  const m = new RegExp(`^pulser_spec_valid\\{env="${name}"\\} (\\d+)$`, 'm').exec(text);
  return m ? Number(m[1]) : null;
}

async function containerId(): Promise<string> {
  const cs = await w.containersOf(name);
  if (cs.length !== 1) throw new Error(`expected one container of ${name}, found ${cs.length}`);
  return cs[0]!.Id;
}

t.test('startup converges', async (t) => {
  await p.loop.start(true);
  await until('the first version to be served', async () => (await served()) === '17.0.1');
  await p.loop.idle();
  const s = p.engine.status.get(name)!;
  t.equal(s.lastPass.trigger, 'startup');
  t.equal(s.lastPass.outcome, 'applied');
  t.ok(s.inSync);
  t.equal(await specValidMetric(), 1);
});

t.test('a new tag in ops/kv rolls out with no manual trigger', async (t) => {
  const before = await containerId();
  await w.kv(`${name}.image_tag`, '17.0.2');
  await until('17.0.2 to be served', async () => (await served()) === '17.0.2');
  await until('the pass to be recorded', () => p.engine.status.get(name)?.lastPass.outcome === 'applied' && p.engine.status.get(name)?.lastPass.trigger === 'file change');
  const s = p.engine.status.get(name)!;
  t.ok(s.inSync, 'in sync after the rollout');
  t.equal(s.drift, 0);
  t.not(await containerId(), before, 'a new container');
  const cs = await w.containersOf(name);
  t.equal(cs[0]!.Image, 'pulser-demo/odoo:17.0.2');
  t.ok(
    w.logs.some((l) => l.includes('file change') && l.includes(`${name}.image_tag.txt`)),
    'the watch saw the kv file',
  );
});

t.test('an invalid spec keeps the running container and reports invalid', async (t) => {
  const before = await containerId();
  const passesBefore = p.engine.status.get(name)!.lastPass.passId;
  await w.writeFile(specFile, validSpec.replace('odoo:\n', 'odoo:\n  workerz: 3\n'));
  await until('pulser_spec_valid to become 0', async () => (await specValidMetric()) === 0);
  const s = p.engine.status.get(name)!;
  t.not(s.lastPass.passId, passesBefore, 'a pass ran on the change');
  t.equal(s.lastPass.trigger, 'file change');
  t.equal(s.specValid, false);
  t.equal(s.usingLastGood, true, 'the status says the last good spec is in use');
  t.ok(
    s.errors.some((e) => e.code === 'PULSER_E_SPEC_UNKNOWN_KEY' && e.location?.file === specFile),
    JSON.stringify(s.errors),
  );
  await p.loop.idle();
  t.equal(await containerId(), before, 'the running container was not touched');
  t.equal(await served(), '17.0.2', 'and still serves');
  t.equal(p.engine.status.get(name)!.drift, 0, 'no drift against the last good spec');
});

t.test('fixing the spec makes it valid again', async (t) => {
  const before = await containerId();
  await w.writeFile(specFile, validSpec);
  await until('pulser_spec_valid to become 1', async () => (await specValidMetric()) === 1);
  await p.loop.idle();
  const s = p.engine.status.get(name)!;
  t.equal(s.specValid, true);
  t.equal(s.usingLastGood, false);
  t.ok(s.inSync);
  t.same(s.errors, []);
  t.equal(await containerId(), before, 'the fix changed nothing running');
  t.equal(await served(), '17.0.2');
});
