// `pulser kv get|set`, in process: validation with the kv rules, atomic writes, `--commit` in a
// local repository, and `--commit --git URL` which commits and pushes exactly like a dispatch.
import t from 'tap';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { main } from '../../src/cli/main.ts';
import { git } from '../../src/drivers/git.ts';
import { GitRemote, gitopsTree } from '../helpers/gitrepo.ts';

const remote = await GitRemote.create(gitopsTree({ policy: 'kv:\n  direct: ["app.*"]\n', kv: { 'app.tag': '1' } }));
const state = await mkdtemp(path.join(tmpdir(), 'pulser-kv-'));
t.teardown(async () => {
  await remote.cleanup();
  await rm(state, { recursive: true, force: true });
});

async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err = new PassThrough();
  let errText = '';
  err.on('data', (c: Buffer) => (errText += c.toString()));
  const code = await main(argv, { out: (x) => out.push(x), err, isTTY: false });
  return { code, out: out.join('\n'), err: errText };
}

t.test('get and set on a working tree', async (t) => {
  const dir = remote.author;
  t.same(await run('kv', 'get', 'app.tag', '--dir', dir), { code: 0, out: '1', err: '' });
  t.equal((await run('kv', 'set', 'app.tag', '2', '--dir', dir)).code, 0);
  t.equal(await readFile(path.join(dir, 'ops/kv/app.tag.txt'), 'utf8'), '2\n');
  t.notOk((await readdir(path.join(dir, 'ops/kv'))).some((f) => f.endsWith('.tmp')), 'no temporary file left');
  const bad = await run('kv', 'set', '../etc/passwd', 'x', '--dir', dir);
  t.equal(bad.code, 1);
  t.match(bad.err, /PULSER_E_KV_KEY_INVALID/);
  const badValue = await run('kv', 'set', 'app.tag', 'a\nb', '--dir', dir);
  t.match(badValue.err, /PULSER_E_KV_VALUE_INVALID/);
  t.equal(await readFile(path.join(dir, 'ops/kv/app.tag.txt'), 'utf8'), '2\n', 'a refused value leaves the file alone');
  t.equal((await run('kv', 'get', 'nope', '--dir', dir)).code, 1);
  t.equal((await run('kv', 'frob', '--dir', dir)).code, 2, 'usage');
  t.notOk(existsSync(path.join(dir, 'etc')));
});

t.test('set --commit in a local repository commits only that file', async (t) => {
  const dir = remote.author;
  const res = await run('kv', 'set', 'app.tag', '3', '--commit', '--message', 'bump app.tag', '--dir', dir, '--json');
  t.equal(res.code, 0, res.err);
  const out = JSON.parse(res.out) as { commit: string };
  t.equal((await git(['rev-parse', 'HEAD'], { cwd: dir })).trim(), out.commit);
  t.equal((await git(['show', '--name-only', '--format=%s', 'HEAD'], { cwd: dir })).trim(), 'bump app.tag\n\nops/kv/app.tag.txt');
});

t.test('set --commit --git goes through the tracked clone like a dispatch', async (t) => {
  const res = await run('kv', 'set', 'app.other', '42', '--commit', '--git', remote.bare, '--state-dir', state, '--json');
  t.equal(res.code, 0, res.err);
  const out = JSON.parse(res.out) as { commit: string; direct: boolean; branch: string };
  t.same({ direct: out.direct, branch: out.branch }, { direct: true, branch: 'main' });
  t.equal(out.commit, await remote.head(), 'pushed to the remote');
  t.equal(await remote.show('main', 'ops/kv/app.other.txt'), '42\n');
  const review = JSON.parse((await run('kv', 'set', 'db.thing', 'x', '--commit', '--git', remote.bare, '--state-dir', state, '--json')).out) as { direct: boolean; branch: string };
  t.same(review, { ...review, direct: false, branch: 'pulser/kv/db.thing' }, 'a key the policy reserves for review goes to a branch');
  t.equal((await run('kv', 'set', 'app.x', '1', '--git', remote.bare, '--state-dir', state)).code, 2, '--git without --commit is a usage error');
});
