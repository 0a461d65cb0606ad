// The tracked git source on real repositories: pulser clones into its own folder, fast-forwards
// on new commits, refuses a rewritten branch with a code (never forcing), and every pass records
// the commit it applied.
import t from 'tap';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { git } from '../../src/drivers/git.ts';
import { GitOpsRepo } from '../../src/gitops/repo.ts';
import { createPulser } from '../../src/app.ts';
import { PulserError } from '../../src/errors.ts';
import { GitRemote, gitopsTree, envYaml } from '../helpers/gitrepo.ts';
import { freePort, suffix } from '../helpers/world.ts';

const name = `gs-${suffix()}`;
const remote = await GitRemote.create(gitopsTree({ kv: { [`${name}.image_tag`]: '17.0.1' }, envs: { [name]: envYaml(name, await freePort()) } }));
const state = await mkdtemp(path.join(tmpdir(), 'pulser-state-'));
t.teardown(async () => {
  await remote.cleanup();
  await rm(state, { recursive: true, force: true });
});

t.test('clone, fast-forward, and a rewritten branch is refused with a code', async (t) => {
  const dir = path.join(state, 'ff', 'repo');
  const repo = new GitOpsRepo(remote.bare, 'main', dir);
  const seen: string[] = [];
  repo.onAdvance((r) => seen.push(r.commit));
  const first = await repo.sync();
  t.equal(first.commit, await remote.head(), 'the clone is at the remote head');
  t.equal(first.changed, false, 'a fresh clone is not an advance');
  t.equal((await git(['rev-parse', 'HEAD'], { cwd: dir })).trim(), first.commit);

  const second = await remote.commit({ [`ops/kv/${name}.image_tag.txt`]: '17.0.2\n' }, 'new tag');
  const r = await repo.sync();
  t.same({ commit: r.commit, previous: r.previous, changed: r.changed }, { commit: second, previous: first.commit, changed: true });
  t.same(seen, [second], 'listeners hear the advance once');
  t.equal((await readFile(path.join(dir, `ops/kv/${name}.image_tag.txt`), 'utf8')).trim(), '17.0.2', 'the working tree moved');
  t.equal((await repo.sync()).changed, false, 'nothing new: no advance');

  // Rewrite history on the remote: reset the author clone to the seed and force-push a new commit.
  await git(['reset', '--quiet', '--hard', first.commit], { cwd: remote.author });
  await git(['commit', '--quiet', '--allow-empty', '-m', 'rewritten'], { cwd: remote.author });
  await git(['push', '--quiet', '--force', 'origin', 'HEAD:refs/heads/main'], { cwd: remote.author });
  const err = await repo.sync().then(
    () => null,
    (e: unknown) => e,
  );
  t.ok(err instanceof PulserError && err.code === 'PULSER_E_GIT_DIVERGED', 'diverged history is PULSER_E_GIT_DIVERGED');
  t.equal((await git(['rev-parse', 'HEAD'], { cwd: dir })).trim(), second, 'the clone stays at the last applied commit');
  t.same(seen, [second], 'no advance reported');
});

t.test('an unreachable remote is PULSER_E_GIT and a non-empty foreign folder is refused', async (t) => {
  const missing = new GitOpsRepo(path.join(state, 'nope.git'), 'main', path.join(state, 'missing', 'repo'));
  await t.rejects(missing.sync(), { code: 'PULSER_E_GIT' });
  const foreign = path.join(state, 'foreign');
  await git(['init', '--quiet', foreign], { cwd: state });
  await rm(path.join(foreign, '.git'), { recursive: true });
  await writeFile(path.join(foreign, 'x'), 'y');
  await t.rejects(new GitOpsRepo(remote.bare, 'main', foreign).sync(), { code: 'PULSER_E_USAGE' });
  t.throws(() => new GitOpsRepo(remote.bare, '../main', path.join(state, 'x')), { code: 'PULSER_E_USAGE' });
});

t.test('the daemon follows the branch: a new commit reloads, and passes record it', async (t) => {
  const fresh = await GitRemote.create(gitopsTree({ kv: { [`${name}.image_tag`]: '17.0.1' }, envs: { [name]: envYaml(name, await freePort()) } }));
  t.teardown(() => fresh.cleanup());
  process.env.TEST_DB_PASSWORD ??= 'test-db-password-1';
  const root = path.join(state, 'daemon', 'repo');
  const p = createPulser({ root, processMetrics: false, logWrite: () => undefined, git: { url: fresh.bare, branch: 'main', pollIntervalMs: 3_600_000 } });
  const commits: string[] = [];
  const triggers: string[] = [];
  // Passes run in plan mode here: the end-to-end test applies; this one is about the source.
  const runPass = p.engine.runPass.bind(p.engine);
  p.engine.runPass = (load, opts) => {
    triggers.push(opts.trigger);
    return runPass(load, { ...opts, mode: 'plan' }).then((rec) => {
      commits.push(rec.commit);
      return rec;
    });
  };
  t.teardown(() => p.close());
  await p.start(true);
  await p.loop.idle();
  t.same(commits, [await fresh.head()], 'the startup pass records the cloned commit');
  t.ok(existsSync(path.join(root, '..', 'evidence')), 'evidence lives next to the clone');
  t.notOk(existsSync(path.join(root, 'evidence')), 'and not in it');

  const next = await fresh.commit({ [`ops/kv/${name}.image_tag.txt`]: '17.0.2\n' }, 'tag 17.0.2');
  await p.gitops!.source.hint('test');
  await p.loop.idle();
  t.same(commits, [commits[0], next], 'the new commit triggered one pass, which recorded it');
  t.match(triggers[1], /^test [0-9a-f]{12}$/, 'the trigger names the hint and the commit');

  await fresh.commit({ 'README.md': 'docs only\n' }, 'docs');
  await p.gitops!.source.hint('test');
  await p.loop.idle();
  t.equal(commits.length, 2, 'a commit that changes no environment triggers no pass');
});
