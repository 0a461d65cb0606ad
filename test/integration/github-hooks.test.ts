// POST /hooks/github with payloads validated against GitHub's webhook schemas: signature and
// delivery checks, ping, push of the tracked branch as a fetch hint, and pull requests that get
// the plan of their head as one comment (updated on the next push) plus a pulser/plan status.
import t, { type Test } from 'tap';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gitopsPulser } from '../helpers/gitops-pulser.ts';
import { signBody } from '../../src/gitops/signature.ts';
import { PLAN_MARKER } from '../../src/gitops/github.ts';
import { git } from '../../src/drivers/git.ts';
import { GitHubStandIn } from '../helpers/github-standin.ts';
import { webhookPayload } from '../helpers/github-contract.ts';
import { GitRemote, gitopsTree, envYaml } from '../helpers/gitrepo.ts';
import { freePort, suffix } from '../helpers/world.ts';

const HOOK_SECRET = `hook-secret-${suffix()}`;
process.env.PULSER_GITHUB_WEBHOOK_SECRET = HOOK_SECRET;
process.env.TEST_DB_PASSWORD ??= 'test-db-password-1';
const gh = new GitHubStandIn();
await gh.start();
process.env.PULSER_GITHUB_APP_PRIVATE_KEY = gh.privateKey;
const name = `gh-${suffix()}`;
const env = envYaml(name, await freePort()).replace('auto: true', 'auto: false');
const remote = await GitRemote.create(gitopsTree({ kv: { [`${name}.image_tag`]: '17.0.1' }, envs: { [name]: env } }));
const state = await mkdtemp(path.join(tmpdir(), 'pulser-state-'));
const logs: string[] = [];
const p = gitopsPulser({ remote, gh, state, logs });

await p.start(false);
await p.loop.idle();
const app = p.server();
t.teardown(async () => {
  await app.close();
  await p.close();
  await gh.stop();
  await remote.cleanup();
  await rm(state, { recursive: true, force: true });
});

let n = 0;
function hook(event: string, payload: unknown, o: { delivery?: string; secret?: string; body?: string } = {}) {
  const body = o.body ?? JSON.stringify(payload);
  return app.inject({
    method: 'POST',
    url: '/hooks/github',
    payload: body,
    headers: { 'content-type': 'application/json', 'x-github-event': event, 'x-github-delivery': o.delivery ?? `d-${++n}-${suffix()}`, 'x-hub-signature-256': signBody(o.secret ?? HOOK_SECRET, body) },
  });
}

function valid(t: Test, name: string, over: Record<string, unknown>): Record<string, unknown> {
  const { payload, problems } = webhookPayload(name, over);
  t.same(problems, [], `the ${name} payload matches GitHub's webhook schema`);
  return payload;
}

async function until(what: string, check: () => boolean | Promise<boolean>, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}\n${logs.slice(-10).join('\n')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

t.test('ping, bad signatures and replayed deliveries', async (t) => {
  const ping = valid(t, 'ping', { zen: 'Keep it logically awesome.', hook_id: 1 });
  t.equal((await hook('ping', ping)).statusCode, 200);
  const bad = await hook('ping', ping, { secret: 'wrong' });
  t.same({ s: bad.statusCode, c: bad.json().error.code }, { s: 401, c: 'PULSER_E_WEBHOOK_SIGNATURE' });
  const noSig = await app.inject({ method: 'POST', url: '/hooks/github', payload: JSON.stringify(ping), headers: { 'content-type': 'application/json', 'x-github-event': 'ping', 'x-github-delivery': 'x1' } });
  t.same({ s: noSig.statusCode, c: noSig.json().error.code }, { s: 401, c: 'PULSER_E_WEBHOOK_SIGNATURE' });
  t.equal((await hook('ping', ping, { delivery: 'same-delivery' })).statusCode, 200);
  const replay = await hook('ping', ping, { delivery: 'same-delivery' });
  t.same({ s: replay.statusCode, c: replay.json().error.code }, { s: 409, c: 'PULSER_E_WEBHOOK_REPLAY' });
  const noEvent = await app.inject({ method: 'POST', url: '/hooks/github', payload: '{}', headers: { 'content-type': 'application/json', 'x-hub-signature-256': signBody(HOOK_SECRET, '{}') } });
  t.equal(noEvent.json().error.code, 'PULSER_E_WEBHOOK_PAYLOAD');
});

t.test('a push of the tracked branch makes pulser fetch now', async (t) => {
  const next = await remote.commit({ 'README.md': 'hello\n' }, 'docs');
  const push = valid(t, 'push', { ref: 'refs/heads/main', before: '0'.repeat(40), after: next });
  const other = valid(t, 'push', { ref: 'refs/heads/elsewhere', before: '0'.repeat(40), after: next });
  t.equal((await hook('push', other)).statusCode, 202);
  await new Promise((r) => setTimeout(r, 200));
  t.not((await git(['rev-parse', 'HEAD'], { cwd: p.root })).trim(), next, 'a push elsewhere does not fetch');
  t.equal((await hook('push', push)).statusCode, 202);
  await until('the clone to reach the pushed commit', async () => (await git(['rev-parse', 'HEAD'], { cwd: p.root })).trim() === next);
});

t.test('a pull request gets its plan as one comment, updated on the next push, and a status', async (t) => {
  const base = await remote.head();
  const head1 = await remote.commit({ [`ops/kv/${name}.image_tag.txt`]: '17.0.2\n' }, 'tag 17.0.2', 'feature/tag');
  const pr = (head: string, action: string) =>
    valid(t, `pull-request-${action}`, {
      action,
      number: 7,
      pull_request: { number: 7, head: { ref: 'feature/tag', sha: head }, base: { ref: 'main', sha: base } },
    });
  t.equal((await hook('pull_request', pr(head1, 'opened'))).statusCode, 202);
  await until('the plan status of the first head', () => gh.statuses.some((s) => s.sha === head1 && s.context === 'pulser/plan'));
  const first = gh.commentsOn(7);
  t.equal(first.length, 1, 'one comment');
  t.ok(first[0]!.body.startsWith(PLAN_MARKER), 'with the marker');
  t.match(first[0]!.body, new RegExp(`${name}/containers/odoo`), 'the plan names the container');
  t.match(first[0]!.body, head1.slice(0, 12));
  t.notMatch(first[0]!.body, /test-db-password/, 'no secret value in the comment');
  t.same(gh.statuses.filter((s) => s.sha === head1).map((s) => s.state), ['success']);

  const head2 = await remote.commit({ [`ops/kv/${name}.image_tag.txt`]: '17.0.3\n' }, 'tag 17.0.3', 'feature/tag');
  t.equal((await hook('pull_request', pr(head2, 'synchronize'))).statusCode, 202);
  await until('the plan status of the second head', () => gh.statuses.some((s) => s.sha === head2));
  const second = gh.commentsOn(7);
  t.equal(second.length, 1, 'still one comment: updated, not duplicated');
  t.equal(second[0]!.id, first[0]!.id);
  t.match(second[0]!.body, head2.slice(0, 12));
  t.match(second[0]!.body, /17\.0\.3/);

  const broken = await remote.commit({ [`environments/${name}.yaml`]: env.replace('tier: staging', 'tier: nonsense') }, 'break it', 'feature/tag');
  await hook('pull_request', pr(broken, 'synchronize'));
  await until('the plan status of the broken head', () => gh.statuses.some((s) => s.sha === broken));
  t.same(gh.statuses.filter((s) => s.sha === broken).map((s) => s.state), ['failure'], 'an invalid spec fails the status');
  t.match(gh.commentsOn(7)[0]!.body, /PULSER_E_SPEC_INVALID/);
  t.equal(p.engine.status.get(name)?.lastPass.trigger, 'startup', 'planning a pull request leaves the live status alone');
});

t.test("pulser's own state lives beside the tracked clone, never inside it", async (t) => {
  t.equal(p.stateDir, path.join(state, '.pulser'));
  t.equal(path.relative(p.root, p.stateDir).split(path.sep)[0], '..', 'outside the clone');
  const load = (await p.load()).envs.get(name)!;
  if (!load.ok) throw new Error('invalid');
  t.equal(p.engine.context(load.desired).stateDir, p.stateDir, 'the journals of a pass (a staging swap) go there too');
});

t.test('the GitHub side saw only valid requests', async (t) => {
  t.same(gh.violations, []);
  t.notOk(logs.some((l) => l.includes(HOOK_SECRET)), 'the webhook secret is never logged');
});
