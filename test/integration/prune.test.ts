// Pruning by inventory: containers of an environment removed from git are deleted only when its
// last known spec had sync.prune on; nothing without pulser's labels is ever touched.
import t from 'tap';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { World, suffix } from '../helpers/world.ts';

const w = await World.create();
t.teardown(() => w.cleanup());
const pruned = `pr-${suffix()}`;
const kept = `kp-${suffix()}`;
await w.env(pruned, { prune: true });
await w.env(kept, { prune: false });
const p = w.start();
await p.loop.start(false);
await p.loop.idle();

const stranger = await w.docker.createContainer({
  name: `pulser-gone-${suffix()}-odoo`,
  Image: 'pulser-demo/odoo:17.0.1',
  Cmd: ['sleep', '300'],
  Labels: { 'io.pulser.env': 'looks-like-ours' },
  HostConfig: { Init: true },
});
t.teardown(() => stranger.remove({ force: true }).catch(() => {}));

t.test('both environments converged', async (t) => {
  t.equal((await w.containersOf(pruned)).length, 1);
  t.equal((await w.containersOf(kept)).length, 1);
});

t.test('removing the files prunes only the environment that asked for it', async (t) => {
  await w.removeEnvFile(pruned);
  await w.removeEnvFile(kept);
  await p.loop.reload('test');
  await p.loop.idle();
  t.equal((await w.containersOf(pruned)).length, 0, 'sync.prune: true → removed');
  t.equal((await w.containersOf(kept)).length, 1, 'sync.prune: false → kept');
  t.ok(w.logs.some((l) => l.includes(`environment ${kept} is not in git any more`) && l.includes('kept')), 'the kept one is reported');
  const info = await stranger.inspect();
  t.equal(info.State.Status, 'created', 'a container without the managed-by label is untouched');
  t.equal(p.engine.status.get(pruned), undefined, 'status forgets the removed environment');
  const metrics = await p.metrics.registry.getSingleMetricAsString('pulser_in_sync');
  t.notMatch(metrics, new RegExp(`env="${pruned}"`), 'metrics forget it too');

  const list = await p.evidence!.list(pruned, 10);
  const prune = list.find((r) => r.trigger === 'environment removed from git');
  t.ok(prune, 'the prune pass left evidence');
  const plan = JSON.parse(await readFile(path.join(p.evidence!.dir, prune!.passId, pruned, 'plan.json'), 'utf8'));
  t.match(plan.changes, [{ action: 'delete', risk: 'destructive', subject: `${pruned}/containers/odoo` }]);
});
