// Hostile URLs, refs and configuration against the real git, judged by what git did: a marker
// file that a command would create if any option or transport got through is never created.
// Each layer is shown on its own: the URL check (git never runs), `--end-of-options` (git reads
// the URL as data), the transport allow-list (ext:: refused even where config enables it), and
// the environment (no inherited config, no ~/.gitconfig).
import t, { type Test } from 'tap';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { git } from '../../src/drivers/git.ts';
import { checkout, fetchMirror, mirrorDir, mirrorFetchArgv, resolveRef } from '../../src/drivers/gitrepo.ts';
import { GitOpsRepo } from '../../src/gitops/repo.ts';
import { AddonRepoFixture } from '../helpers/odoo.ts';
import { GitRemote, gitopsTree } from '../helpers/gitrepo.ts';

const base = await mkdtemp(path.join(tmpdir(), 'pulser-git-argv-'));
const repo = await AddonRepoFixture.create('acme');
await repo.module('acme_base', { version: '1.0' });
const first = await repo.commit('first');
t.teardown(async () => {
  await repo.cleanup();
  await rm(base, { recursive: true, force: true });
});

let n = 0;
/** A fresh marker path (not created) and a fresh mirror folder (created, empty git repository). */
async function fresh(): Promise<{ marker: string; mirror: string }> {
  const dir = path.join(base, String(++n));
  await mkdir(dir, { recursive: true });
  const mirror = path.join(dir, 'mirror.git');
  await git(['init', '--quiet', '--bare', '--', mirror]);
  return { marker: path.join(dir, 'marker'), mirror };
}

/** Sets process variables for the duration of `fn` (git children inherit process.env). */
async function withEnv<T>(vars: Record<string, string>, fn: () => Promise<T>): Promise<T> {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  Object.assign(process.env, vars);
  try {
    return await fn();
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

function absent(t: Test, marker: string, what: string): void {
  t.notOk(existsSync(marker), `${what}: nothing ran (${path.basename(path.dirname(marker))}/marker absent)`);
}

t.test('the mirror fetch refuses hostile URLs before git runs', async (t) => {
  const root = path.join(base, 'addons-root');
  for (const url of ['--upload-pack=touch MARKER;', '--upload-pack=touch${IFS}MARKER;', 'ext::sh -c touch% MARKER', 'https://example.org/a.git\n--upload-pack=touch MARKER', 'ssh://-oProxyCommand=touch%20MARKER/x', '-oProxyCommand=touch MARKER:x']) {
    const { marker } = await fresh();
    const hostile = url.replace(/MARKER/g, marker);
    const mirror = mirrorDir(root, hostile);
    await t.rejects(fetchMirror(mirror, hostile, { allowLocal: true }), { code: 'PULSER_E_REPO_URL' }, JSON.stringify(url));
    absent(t, marker, url);
    t.notOk(existsSync(mirror), 'not even the mirror was created');
  }
});

t.test('--end-of-options: a URL that looks like --upload-pack reaches git as a repository, not an option', async (t) => {
  const { marker, mirror } = await fresh();
  // The driver's own argv, run without the URL check in front of it.
  const err = await git(mirrorFetchArgv(mirror, `--upload-pack=touch ${marker};`)).then(
    () => null,
    (e: Error & { code?: string }) => e,
  );
  t.equal(err?.code, 'PULSER_E_GIT', 'git failed to find such a repository');
  absent(t, marker, '--upload-pack as a URL');
});

t.test('the transport allow-list: ext:: is refused even when the repository config enables it', async (t) => {
  const { marker, mirror } = await fresh();
  // Repository config is not scrubbed like the environment is: only GIT_ALLOW_PROTOCOL stops this.
  await git(['-C', mirror, 'config', 'protocol.ext.allow', 'always']);
  await t.rejects(git(mirrorFetchArgv(mirror, `ext::sh -c touch% ${marker}`)), { code: 'PULSER_E_GIT', message: /transport 'ext' not allowed/ });
  absent(t, marker, 'ext::');
  // An https-only fetch cannot read a local path either.
  await t.rejects(git(mirrorFetchArgv(mirror, repo.url), { transports: ['https'] }), { message: /transport 'file' not allowed/ });
  await git(mirrorFetchArgv(mirror, repo.url), { transports: ['file'] });
  t.equal((await git(['-C', mirror, 'rev-parse', 'refs/heads/17.0'])).trim(), first, 'with its own transport the same fetch works');
});

t.test('the environment: GIT_CONFIG_*, GIT_CONFIG_PARAMETERS and ~/.gitconfig add nothing', async (t) => {
  const work = path.join(base, 'work');
  await git(['init', '--quiet', '--', work]);
  const { marker: m1 } = await fresh();
  const { marker: m2 } = await fresh();
  const { marker: m3 } = await fresh();
  const { marker: m4, mirror } = await fresh();
  const home = path.join(base, 'home');
  await mkdir(home, { recursive: true });
  // core.fsmonitor is a command `git status` runs: any config that reaches git would run it.
  await writeFile(path.join(home, '.gitconfig'), `[core]\n\tfsmonitor = "touch ${m3}; false"\n`);
  await withEnv(
    {
      GIT_CONFIG_COUNT: '2',
      GIT_CONFIG_KEY_0: 'core.fsmonitor',
      GIT_CONFIG_VALUE_0: `touch ${m1}; false`,
      GIT_CONFIG_KEY_1: 'protocol.ext.allow',
      GIT_CONFIG_VALUE_1: 'always',
      GIT_CONFIG_PARAMETERS: `'core.fsmonitor'='touch ${m2}; false'`,
      HOME: home,
    },
    async () => {
      await git(['status', '--porcelain'], { cwd: work });
      await t.rejects(git(mirrorFetchArgv(mirror, `ext::sh -c touch% ${m4}`)));
    },
  );
  absent(t, m1, 'GIT_CONFIG_COUNT/KEY/VALUE');
  absent(t, m2, 'GIT_CONFIG_PARAMETERS');
  absent(t, m3, '~/.gitconfig');
  absent(t, m4, 'ext:: enabled through GIT_CONFIG_*');
});

t.test('GIT_SSH_COMMAND and GIT_PROXY_COMMAND from the environment never run', async (t) => {
  const { marker: m1, mirror } = await fresh();
  const { marker: m2 } = await fresh();
  await withEnv({ GIT_SSH_COMMAND: `touch ${m1}; false`, GIT_SSH: `/bin/false`, GIT_PROXY_COMMAND: `touch ${m2}` }, async () => {
    await t.rejects(git(mirrorFetchArgv(mirror, 'ssh://git@127.0.0.1:1/x.git'), { transports: ['ssh'], timeoutMs: 20_000 }));
  });
  absent(t, m1, 'GIT_SSH_COMMAND');
  absent(t, m2, 'GIT_PROXY_COMMAND');
});

t.test('a ref or commit that looks like an option is data or refused', async (t) => {
  const root = path.join(base, 'checkouts');
  const mirror = mirrorDir(root, repo.url);
  await fetchMirror(mirror, repo.url, { allowLocal: true });
  t.equal(await resolveRef(mirror, '17.0', repo.url), first);
  for (const ref of ['--all', '-h', '--git-dir', '--output=x']) {
    await t.rejects(resolveRef(mirror, ref, repo.url), { code: 'PULSER_E_GIT_REF' }, `${ref} is no revision`);
  }
  const dir = path.join(root, 'staging', 'acme');
  for (const commit of ['--orphan=x', '-b', 'HEAD', '17.0']) {
    await t.rejects(checkout(dir, mirror, commit), { code: 'PULSER_E_ARGUMENT_UNSAFE' }, `checkout refuses ${commit}`);
  }
  t.notOk(existsSync(dir), 'nothing was cloned for a refused commit');
  await checkout(dir, mirror, first);
  t.equal((await git(['-C', dir, 'rev-parse', 'HEAD'])).trim(), first);
});

t.test('the GitOps clone: a hostile remote URL, branch or pull-request ref never becomes an option', async (t) => {
  const { marker } = await fresh();
  const clone = path.join(base, 'gitops-hostile', 'repo');
  const hostile = new GitOpsRepo(`--upload-pack=touch ${marker};`, 'main', clone, 10_000);
  await t.rejects(hostile.sync());
  absent(t, marker, 'an upload-pack URL');
  t.throws(() => new GitOpsRepo('/x', '--upload-pack=x', path.join(base, 'b')), { code: 'PULSER_E_USAGE' });

  const remote = await GitRemote.create(gitopsTree());
  t.teardown(() => remote.cleanup());
  const gitops = new GitOpsRepo(remote.bare, 'main', path.join(base, 'gitops', 'repo'), 10_000);
  await gitops.sync();
  const { marker: m2 } = await fresh();
  const missing = 'f'.repeat(40);
  await t.rejects(gitops.withWorktree(missing, [`--upload-pack=touch ${m2};`], async () => 'ran'));
  absent(t, m2, 'a pull-request ref that looks like --upload-pack');
  t.same((await readdir(path.join(base, 'gitops'))).filter((f) => f.startsWith('.worktree-')), [], 'no worktree left behind');
});
