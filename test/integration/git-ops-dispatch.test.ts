// POST /pulser/git-ops against a real bare repository: signed dispatches become commits of
// ops/kv/<key>.txt (directly or on a branch, by ops/policy.yaml); every bad request gets a coded
// 4xx and leaves the repository byte-for-byte as it was; concurrent dispatches are all kept.
import t from 'tap';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createPulser } from '../../src/app.ts';
import { signBody } from '../../src/gitops/signature.ts';
import { git } from '../../src/drivers/git.ts';
import { GitRemote, gitopsTree } from '../helpers/gitrepo.ts';

const SECRET = `dispatch-secret-${Math.random().toString(36).slice(2)}`;
process.env.PULSER_DISPATCH_SECRET = SECRET;
const policy = 'kv:\n  default: pull_request\n  direct: ["d.*", same, ok.key]\n';
const remote = await GitRemote.create(gitopsTree({ policy, kv: { 'ok.key': 'v0' } }));
const state = await mkdtemp(path.join(tmpdir(), 'pulser-state-'));
const logs: string[] = [];
const p = createPulser({ root: path.join(state, 'repo'), processMetrics: false, logJson: true, logWrite: (l) => logs.push(l), git: { url: remote.bare, branch: 'main', pollIntervalMs: 3_600_000 } });
await p.start(false);
const app = p.server();
t.teardown(async () => {
  await app.close();
  await p.close();
  await remote.cleanup();
  await rm(state, { recursive: true, force: true });
});

let seq = 0;
interface Req {
  body?: string | Buffer;
  headers?: Record<string, string>;
}
function signed(payload: unknown, o: { delivery?: string | null; ts?: string; secret?: string } = {}): Req {
  const body = JSON.stringify(payload);
  const headers: Record<string, string> = { 'content-type': 'application/json', 'x-pulser-signature': signBody(o.secret ?? SECRET, body, o.ts) };
  if (o.delivery !== null) headers['x-pulser-delivery'] = o.delivery ?? `t-${process.pid}-${++seq}`;
  if (o.ts !== undefined) headers['x-pulser-timestamp'] = o.ts;
  return { body, headers };
}
const post = (r: Req) => app.inject({ method: 'POST', url: '/pulser/git-ops', payload: r.body, headers: r.headers });
const dispatch = (key: string, value: string, extra: Record<string, unknown> = {}) => ({ branch: 'main', message: `set ${key}`, kv_key: key, kv_value: value, ...extra });
const now = () => String(Math.floor(Date.now() / 1000));

t.test('a signed dispatch of a direct key is committed on the tracked branch and pushed', async (t) => {
  const before = await remote.head();
  const res = await post(signed(dispatch('ok.key', 'v1', { message: 'Odoo: bump ok.key' }), { ts: now() }));
  t.equal(res.statusCode, 200, res.body);
  const out = res.json() as { commit: string; branch: string; direct: boolean; pullRequest: unknown };
  t.same({ branch: out.branch, direct: out.direct, pullRequest: out.pullRequest }, { branch: 'main', direct: true, pullRequest: null });
  t.equal(out.commit, await remote.head(), 'the answer names the pushed head');
  t.equal(await remote.show(out.commit, 'ops/kv/ok.key.txt'), 'v1\n');
  t.equal((await git(['log', '-1', '--format=%P%n%B', out.commit], { cwd: remote.bare })).trim(), `${before}\nOdoo: bump ok.key`, 'one commit on top, with the message given');
  t.equal((await git(['rev-parse', 'HEAD'], { cwd: p.root })).trim(), out.commit, 'the tracked clone fast-forwarded to it');
});

t.test('a key the policy does not allow goes to a branch, never to the tracked branch', async (t) => {
  const main = await remote.head();
  const res = await post(signed(dispatch('prod.tag', '18.0.1')));
  t.equal(res.statusCode, 200, res.body);
  const out = res.json() as { commit: string; branch: string; direct: boolean };
  t.same({ branch: out.branch, direct: out.direct }, { branch: 'pulser/kv/prod.tag', direct: false });
  t.equal(await remote.head('pulser/kv/prod.tag'), out.commit);
  t.equal(await remote.head(), main, 'main is untouched');
  const res2 = await post(signed(dispatch('prod.tag', '18.0.2', { branch: 'odoo/prod-tag' })));
  t.equal((res2.json() as { branch: string }).branch, 'odoo/prod-tag', 'the requested branch is used when it is not the tracked one');
  t.equal(await remote.show('refs/heads/odoo/prod-tag', 'ops/kv/prod.tag.txt'), '18.0.2\n');
});

t.test('bad requests: a coded 4xx each, and the repository is byte-for-byte unchanged', async (t) => {
  // Two accepted deliveries to replay: one with a delivery id, one identified by its signature.
  const first = signed(dispatch('d.replay', 'r1'), { delivery: 'replay-me-1' });
  const noId = signed(dispatch('d.replay2', 'r2'), { delivery: null });
  t.equal((await post(first)).statusCode, 200);
  t.equal((await post(noId)).statusCode, 200);
  const before = await remote.fingerprint();
  const cloneBefore = (await git(['rev-parse', 'HEAD'], { cwd: p.root })).trim();

  const good = dispatch('d.x', 'fine');
  const body = JSON.stringify(good);
  const sig = signBody(SECRET, body);
  const h = (extra: Record<string, string>) => ({ 'content-type': 'application/json', 'x-pulser-delivery': `bad-${++seq}`, ...extra });
  const old = String(Math.floor(Date.now() / 1000) - 3600);
  const future = String(Math.floor(Date.now() / 1000) + 3600);
  const cases: [string, Req, number, string][] = [
    ['no signature', { body, headers: h({}) }, 401, 'PULSER_E_WEBHOOK_SIGNATURE'],
    ['empty signature', { body, headers: h({ 'x-pulser-signature': '' }) }, 401, 'PULSER_E_WEBHOOK_SIGNATURE'],
    ['wrong prefix', { body, headers: h({ 'x-pulser-signature': sig.replace('sha256=', 'sha1=') }) }, 401, 'PULSER_E_WEBHOOK_SIGNATURE'],
    ['no prefix', { body, headers: h({ 'x-pulser-signature': sig.slice(7) }) }, 401, 'PULSER_E_WEBHOOK_SIGNATURE'],
    ['truncated signature', { body, headers: h({ 'x-pulser-signature': sig.slice(0, -1) }) }, 401, 'PULSER_E_WEBHOOK_SIGNATURE'],
    ['signature too long', { body, headers: h({ 'x-pulser-signature': sig + '0' }) }, 401, 'PULSER_E_WEBHOOK_SIGNATURE'],
    ['non-hex signature', { body, headers: h({ 'x-pulser-signature': 'sha256=' + 'z'.repeat(64) }) }, 401, 'PULSER_E_WEBHOOK_SIGNATURE'],
    ['wrong secret', { body, headers: h({ 'x-pulser-signature': signBody('not-the-secret', body) }) }, 401, 'PULSER_E_WEBHOOK_SIGNATURE'],
    ['body changed after signing', { body: body.replace('fine', 'fina'), headers: h({ 'x-pulser-signature': sig }) }, 401, 'PULSER_E_WEBHOOK_SIGNATURE'],
    ['whitespace added after signing', { body: body + ' ', headers: h({ 'x-pulser-signature': sig }) }, 401, 'PULSER_E_WEBHOOK_SIGNATURE'],
    ['timestamp added, not signed', { body, headers: h({ 'x-pulser-signature': sig, 'x-pulser-timestamp': now() }) }, 401, 'PULSER_E_WEBHOOK_SIGNATURE'],
    ['old client: the secret itself in a header', { body, headers: h({ 'x-pulser-secret': SECRET }) }, 401, 'PULSER_E_WEBHOOK_SIGNATURE'],
    ['stale timestamp', signed(good, { ts: old }), 401, 'PULSER_E_WEBHOOK_STALE'],
    ['timestamp from the future', signed(good, { ts: future }), 401, 'PULSER_E_WEBHOOK_STALE'],
    ['malformed timestamp', signed(good, { ts: 'yesterday' }), 401, 'PULSER_E_WEBHOOK_STALE'],
    ['replayed delivery id', first, 409, 'PULSER_E_WEBHOOK_REPLAY'],
    ['replayed body without delivery id', noId, 409, 'PULSER_E_WEBHOOK_REPLAY'],
    ['malformed delivery id', { ...signed(good), headers: { ...signed(good).headers!, 'x-pulser-delivery': 'a b' } }, 400, 'PULSER_E_WEBHOOK_PAYLOAD'],
    ['oversized body', signed(dispatch('d.big', 'x'.repeat(70_000))), 413, 'PULSER_E_WEBHOOK_PAYLOAD'],
    ['invalid JSON', { body: '{"branch": "main",', headers: h({ 'x-pulser-signature': signBody(SECRET, '{"branch": "main",') }) }, 400, 'PULSER_E_WEBHOOK_PAYLOAD'],
    ['invalid UTF-8', { body: Buffer.from([0x7b, 0xff, 0x7d]), headers: h({ 'x-pulser-signature': signBody(SECRET, Buffer.from([0x7b, 0xff, 0x7d])) }) }, 400, 'PULSER_E_WEBHOOK_PAYLOAD'],
    ['JSON array', signed([good]), 400, 'PULSER_E_WEBHOOK_PAYLOAD'],
    ['missing kv_key', signed({ branch: 'main', kv_value: 'x' }), 400, 'PULSER_E_WEBHOOK_PAYLOAD'],
    ['kv_value a number', signed({ ...good, kv_value: 42 }), 400, 'PULSER_E_WEBHOOK_PAYLOAD'],
    ['unknown field', signed({ ...good, force: true }), 400, 'PULSER_E_WEBHOOK_PAYLOAD'],
    ['key ../x', signed(dispatch('../x', 'v')), 422, 'PULSER_E_KV_KEY_INVALID'],
    ['key a/b', signed(dispatch('a/b', 'v')), 422, 'PULSER_E_KV_KEY_INVALID'],
    ['key with NUL', signed(dispatch('d.a\u0000b', 'v')), 422, 'PULSER_E_KV_KEY_INVALID'],
    ['key very long', signed(dispatch('d.' + 'k'.repeat(300), 'v')), 422, 'PULSER_E_KV_KEY_INVALID'],
    ['key empty', signed(dispatch('', 'v')), 422, 'PULSER_E_KV_KEY_INVALID'],
    ['key with a Cyrillic look-alike', signed(dispatch('d.st\u0430ging', 'v')), 422, 'PULSER_E_KV_KEY_INVALID'],
    ['key with a zero-width space', signed(dispatch('d.a\u200bb', 'v')), 422, 'PULSER_E_KV_KEY_INVALID'],
    ['key starting with a dot', signed(dispatch('.git', 'v')), 422, 'PULSER_E_KV_KEY_INVALID'],
    ['key starting with a dash', signed(dispatch('-rf', 'v')), 422, 'PULSER_E_KV_KEY_INVALID'],
    ['huge value', signed(dispatch('d.huge', 'v'.repeat(5000))), 422, 'PULSER_E_KV_VALUE_INVALID'],
    ['value on two lines', signed(dispatch('d.x', 'a\nb')), 422, 'PULSER_E_KV_VALUE_INVALID'],
    ['value with NUL', signed(dispatch('d.x', 'a\u0000b')), 422, 'PULSER_E_KV_VALUE_INVALID'],
    ['branch ../../x', signed(dispatch('d.x', 'v', { branch: '../../x' })), 422, 'PULSER_E_DISPATCH_INVALID'],
    ['branch -delete', signed(dispatch('d.x', 'v', { branch: '--delete' })), 422, 'PULSER_E_DISPATCH_INVALID'],
    ['message with control characters', signed(dispatch('d.x', 'v', { message: 'a\u0007b' })), 422, 'PULSER_E_DISPATCH_INVALID'],
    ['content type text/plain', { body, headers: h({ 'content-type': 'text/plain', 'x-pulser-signature': sig }) }, 415, 'PULSER_E_WEBHOOK_PAYLOAD'],
    ['form-encoded', { body: 'payload=' + encodeURIComponent(body), headers: h({ 'content-type': 'application/x-www-form-urlencoded', 'x-pulser-signature': signBody(SECRET, 'payload=' + encodeURIComponent(body)) }) }, 415, 'PULSER_E_WEBHOOK_PAYLOAD'],
    ['no content type', { body, headers: { 'x-pulser-signature': sig, 'x-pulser-delivery': 'no-ct' } }, 415, 'PULSER_E_WEBHOOK_PAYLOAD'],
  ];
  t.ok(cases.length >= 30, `${cases.length} bad requests`);
  for (const [what, req, status, code] of cases) {
    const res = await post(req);
    const err = (res.json() as { error?: { code?: string } }).error;
    t.same({ status: res.statusCode, code: err?.code }, { status, code }, what);
  }
  t.equal(await remote.fingerprint(), before, 'refs and object set of the remote unchanged');
  t.equal((await git(['rev-parse', 'HEAD'], { cwd: p.root })).trim(), cloneBefore, 'the tracked clone unchanged');
  t.notOk(logs.some((l) => l.includes(SECRET)), 'the secret never reaches a log line');
  const metrics = await p.metrics.registry.metrics();
  const rejected = Number(/pulser_webhook_requests_total\{source="odoo",outcome="rejected"\} (\d+)/.exec(metrics)?.[1]);
  t.ok(rejected >= cases.length - 2, `rejections counted (${rejected})`);
  t.match(metrics, /pulser_webhook_requests_total\{source="odoo",outcome="duplicate"\} 2/);
  t.match(metrics, /pulser_dispatch_duration_seconds_count\{outcome="accepted"\} \d+/);
});

t.test('100 concurrent dispatches to distinct keys: 100 values committed, none lost', async (t) => {
  const before = await remote.head();
  const keys = Array.from({ length: 100 }, (_, i) => `d.k${String(i).padStart(3, '0')}`);
  const results = await Promise.all(keys.map((k) => post(signed(dispatch(k, `value-of-${k}`)))));
  t.same(results.map((r) => r.statusCode), keys.map(() => 200), 'every dispatch answered 200');
  const commits = results.map((r) => (r.json() as { commit: string }).commit);
  t.equal(new Set(commits).size, 100, '100 distinct commits');
  const head = await remote.head();
  const log = (await git(['rev-list', `${before}..${head}`], { cwd: remote.bare })).trim().split('\n');
  t.equal(log.length, 100, 'exactly 100 new commits on main');
  t.same([...log].sort(), [...commits].sort(), 'they are the commits the answers named');
  const tree = await git(['ls-tree', '-r', '--name-only', head, 'ops/kv/'], { cwd: remote.bare });
  const missing = keys.filter((k) => !tree.includes(`ops/kv/${k}.txt`));
  t.same(missing, [], 'every key is in the head tree');
  const values = await remote.showMany(keys.map((k) => `${head}:ops/kv/${k}.txt`));
  t.same(values, keys.map((k) => `value-of-${k}\n`), 'with its own value');
});

t.test('100 concurrent dispatches to one key: the last one wins, every one is in history', async (t) => {
  const before = await remote.head();
  const values = Array.from({ length: 100 }, (_, i) => `v${i}`);
  const results = await Promise.all(values.map((v) => post(signed(dispatch('same', v)))));
  t.same(results.map((r) => r.statusCode), values.map(() => 200));
  const byCommit = new Map(results.map((r, i) => [(r.json() as { commit: string }).commit, values[i]!]));
  const chain = (await git(['rev-list', '--reverse', `${before}..${await remote.head()}`], { cwd: remote.bare })).trim().split('\n');
  t.equal(chain.length, 100, '100 commits, one per dispatch');
  const shown = await remote.showMany(chain.map((c) => `${c}:ops/kv/same.txt`));
  t.same(shown, chain.map((c) => `${byCommit.get(c)}\n`), 'each commit holds the value of its dispatch');
  t.same(new Set(shown).size, 100, 'no value lost');
  t.equal(await remote.show('refs/heads/main', 'ops/kv/same.txt'), `${byCommit.get(chain[chain.length - 1]!)}\n`, 'the head holds the value of the last commit');
});

t.test('a dispatch racing a person\'s push is rebuilt on the new tip, never forced', async (t) => {
  await remote.pull();
  const theirs = await remote.commit({ 'ops/kv/person.txt': 'mine\n' }, 'a person edits');
  // The clone has not fetched yet: pulser's first push is refused and retried on top of theirs.
  const res = await post(signed(dispatch('d.race', 'after')));
  t.equal(res.statusCode, 200, res.body);
  const c = (res.json() as { commit: string }).commit;
  t.equal((await git(['rev-parse', `${c}^`], { cwd: remote.bare })).trim(), theirs, 'built on the person\'s commit');
  t.equal(await remote.show(c, 'ops/kv/person.txt'), 'mine\n', 'their change is kept');
});

t.test('without a secret the route is disabled', async (t) => {
  delete process.env.PULSER_DISPATCH_SECRET;
  t.teardown(() => (process.env.PULSER_DISPATCH_SECRET = SECRET));
  const res = await post(signed(dispatch('d.off', 'v')));
  t.same({ status: res.statusCode, code: (res.json() as { error: { code: string } }).error.code }, { status: 503, code: 'PULSER_E_WEBHOOK_DISABLED' });
});
