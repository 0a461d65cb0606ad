// The GitHub App client against the contract-checked stand-in: app JWT → installation token
// (cached, renewed ahead of its expiry), pull requests, one plan comment updated in place,
// commit statuses and deployments — and a kv dispatch that needs a pull request opens one.
import t from 'tap';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { GitHubClient } from '../../src/drivers/github.ts';
import { createLogger } from '../../src/core/log.ts';
import { createPulser } from '../../src/app.ts';
import { signBody } from '../../src/gitops/signature.ts';
import { GitHubStandIn } from '../helpers/github-standin.ts';
import { GitRemote, gitopsTree } from '../helpers/gitrepo.ts';

const gh = new GitHubStandIn();
await gh.start();
const logs: string[] = [];
const masked: string[] = [];
const log = createLogger({ secrets: () => masked, level: 'debug', json: true, write: (l) => logs.push(l) });
const client = () => new GitHubClient({ appId: gh.appId, privateKey: gh.privateKey, installationId: gh.installationId, repository: `${gh.owner}/${gh.repo}`, baseUrl: gh.url }, log, (s) => masked.push(s));
t.teardown(() => gh.stop());

const sha = 'a'.repeat(40);

t.test('the installation token is fetched once and reused while it is fresh', async (t) => {
  const c = client();
  const before = gh.tokenRequests;
  for (let i = 0; i < 5; i++) await c.setStatus(sha, 'pending', 'pulser/plan', `try ${i}`);
  t.equal(gh.tokenRequests - before, 1, 'one token for five calls');
  t.equal(gh.statuses.filter((s) => s.sha === sha).length, 5);
  t.ok(masked.includes(gh.privateKey), 'the private key is in the mask set');
  t.ok([...gh.tokens.keys()].every((tok) => masked.includes(tok)), 'every issued token is in the mask set');
});

t.test('a token close to its expiry is renewed before use', async (t) => {
  gh.tokenTtlMs = 2 * 60_000; // less than the renewal margin
  t.teardown(() => (gh.tokenTtlMs = 3600_000));
  const c = client();
  const before = gh.calls.length;
  for (let i = 0; i < 3; i++) await c.setStatus(sha, 'success', 'pulser/plan', 'ok');
  const used = gh.calls.slice(before).filter((x) => x.operationId === 'repos/create-commit-status').map((x) => x.token);
  t.equal(used.length, 3);
  t.equal(new Set(used).size, 3, 'each call went out with a new token: the old one was about to expire');
  t.ok(used.every((tok) => tok && masked.includes(tok)), 'and each is masked');
});

t.test('pull requests are reused, the marked comment is updated in place', async (t) => {
  const c = client();
  const a = await c.ensurePullRequest({ head: 'feature/x', base: 'main', title: 'x', body: 'b' });
  const b = await c.ensurePullRequest({ head: 'feature/x', base: 'main', title: 'x again', body: 'b' });
  t.equal(a.number, b.number, 'an open pull request for the branch is reused');
  t.equal(gh.pulls.length, 1);
  await c.upsertComment(a.number, '<!-- m -->', 'first <!-- m -->');
  await gh.comments.push({ id: 1, body: 'someone else', issue: a.number });
  const second = await c.upsertComment(a.number, '<!-- m -->', 'second <!-- m -->');
  t.equal(second.created, false);
  t.same(gh.commentsOn(a.number).map((x) => x.body).sort(), ['second <!-- m -->', 'someone else']);
});

t.test('deployments and their statuses', async (t) => {
  const c = client();
  const id = await c.createDeployment({ ref: sha, environment: 'staging', description: 'pass', production: false });
  await c.setDeploymentStatus(id, 'in_progress', 'applying', 'http://pulser.example/api/evidence/p/staging/summary.md');
  await c.setDeploymentStatus(id, 'success', 'applied', 'http://pulser.example/api/evidence/p/staging/summary.md');
  t.same(gh.deployments.find((d) => d.id === id)?.statuses.map((s) => s.state), ['in_progress', 'success']);
});

t.test('a GitHub error is coded', async (t) => {
  const c = new GitHubClient({ appId: gh.appId, privateKey: gh.privateKey, installationId: 999, repository: `${gh.owner}/${gh.repo}`, baseUrl: gh.url }, log);
  await t.rejects(c.setStatus(sha, 'success', 'pulser/plan', 'x'), { code: 'PULSER_E_GITHUB_API' });
  const dead = new GitHubClient({ appId: gh.appId, privateKey: gh.privateKey, installationId: gh.installationId, repository: 'acme/gitops', baseUrl: 'http://127.0.0.1:9', timeoutMs: 500 }, log);
  await t.rejects(dead.setStatus(sha, 'success', 'pulser/plan', 'x'), /PULSER_E|GitHub/);
});

t.test('a dispatch the policy sends to review opens a pull request', async (t) => {
  process.env.PULSER_DISPATCH_SECRET = 'dispatch-secret-gh';
  process.env.PULSER_GITHUB_APP_PRIVATE_KEY = gh.privateKey;
  const remote = await GitRemote.create(gitopsTree({ policy: 'kv:\n  default: pull_request\n' }));
  const state = await mkdtemp(path.join(tmpdir(), 'pulser-state-'));
  const p = createPulser({
    root: path.join(state, 'repo'),
    processMetrics: false,
    logWrite: (l) => logs.push(l),
    git: { url: remote.bare, branch: 'main', pollIntervalMs: 3_600_000, github: { appId: gh.appId, installationId: gh.installationId, repository: `${gh.owner}/${gh.repo}`, baseUrl: gh.url } },
  });
  await p.start(false);
  const app = p.server();
  t.teardown(async () => {
    await app.close();
    await p.close();
    await remote.cleanup();
    await rm(state, { recursive: true, force: true });
  });
  const body = JSON.stringify({ branch: 'main', message: 'Odoo asks for 18.0.4', kv_key: 'production.image_tag', kv_value: '18.0.4' });
  const res = await app.inject({ method: 'POST', url: '/pulser/git-ops', payload: body, headers: { 'content-type': 'application/json', 'x-pulser-signature': signBody('dispatch-secret-gh', body), 'x-pulser-delivery': 'gh-1' } });
  t.equal(res.statusCode, 200, res.body);
  const out = res.json() as { branch: string; direct: boolean; pullRequest: { number: number; url: string } };
  t.same({ branch: out.branch, direct: out.direct }, { branch: 'pulser/kv/production.image_tag', direct: false });
  const pr = gh.pulls.find((x) => x.head === out.branch);
  t.ok(pr, 'a pull request was opened for the branch');
  t.same({ number: out.pullRequest.number, base: pr?.base, title: pr?.title }, { number: pr?.number, base: 'main', title: 'Odoo asks for 18.0.4' });
  t.equal(await remote.show(`refs/heads/${out.branch}`, 'ops/kv/production.image_tag.txt'), '18.0.4\n');
});

t.test('the stand-in fails on what GitHub would not accept', async (t) => {
  const c = client();
  await c.setStatus(sha, 'success', 'pulser/plan', 'warm');
  const token = [...gh.tokens.keys()].pop()!;
  const n = gh.violations.length;
  await fetch(`${gh.url}/repos/acme/gitops/no-such-route`, { method: 'POST', headers: { authorization: `token ${token}` } });
  await fetch(`${gh.url}/repos/acme/gitops/statuses/${sha}`, { method: 'POST', headers: { authorization: `token ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ state: 'bogus' }) });
  await fetch(`${gh.url}/repos/acme/gitops/statuses/${sha}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ state: 'success' }) });
  const found = gh.violations.splice(n);
  t.match(found[0], /unknown route POST/);
  t.match(found[1], /request of repos\/create-commit-status/);
  t.match(found.at(-1), /not authenticated/);
});

t.test('no contract violation and no secret in any log line', async (t) => {
  t.same(gh.violations, [], 'every request and response matched GitHub\'s description');
  t.ok(gh.calls.length > 10);
  t.notOk(logs.some((l) => l.includes('PRIVATE KEY') || [...gh.tokens.keys()].some((tok) => l.includes(tok))), 'no key or token logged');
});
