// End to end on the real engine: pulser follows a git branch; a push with a new image tag (and
// its webhook) rolls the environment out, and the GitHub deployment of that commit ends as
// success with a log link that serves the evidence summary.
import t from 'tap';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gitopsPulser } from '../helpers/gitops-pulser.ts';
import { signBody } from '../../src/gitops/signature.ts';
import { ensureDemoImages } from '../../src/demo/images.ts';
import { LABEL } from '../../src/drivers/docker.ts';
import { GitHubStandIn } from '../helpers/github-standin.ts';
import { webhookPayload } from '../helpers/github-contract.ts';
import { GitRemote, gitopsTree, envYaml } from '../helpers/gitrepo.ts';
import { dockerClient, freePort, httpGet, suffix } from '../helpers/world.ts';

const docker = dockerClient();
await ensureDemoImages(docker);
const HOOK_SECRET = `hook-${suffix()}`;
process.env.PULSER_GITHUB_WEBHOOK_SECRET = HOOK_SECRET;
process.env.TEST_DB_PASSWORD ??= 'test-db-password-1';
const gh = new GitHubStandIn();
await gh.start();
process.env.PULSER_GITHUB_APP_PRIVATE_KEY = gh.privateKey;
const name = `e2e-${suffix()}`;
const port = await freePort();
const remote = await GitRemote.create(gitopsTree({ kv: { [`${name}.image_tag`]: '17.0.1' }, envs: { [name]: envYaml(name, port) } }));
const state = await mkdtemp(path.join(tmpdir(), 'pulser-state-'));
const logs: string[] = [];
const p = gitopsPulser({ remote, gh, state, logs, publicUrl: 'http://pulser.test:9470' });

const app = p.server();
t.teardown(async () => {
  await app.close();
  await p.close();
  await gh.stop();
  for (const c of await docker.listContainers({ all: true, filters: { label: [`${LABEL.env}=${name}`] } })) await docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined);
  await remote.cleanup();
  await rm(state, { recursive: true, force: true });
});

async function until(what: string, check: () => boolean | Promise<boolean>, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}\n${logs.slice(-15).join('\n')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
const served = async () => (await httpGet(`http://127.0.0.1:${port}/version.txt`))?.body.trim();

t.test('startup applies the tracked commit and reports a deployment', async (t) => {
  await p.start(true);
  await p.loop.idle();
  await p.gitops!.deployments.idle();
  t.equal(await served(), '17.0.1');
  const first = await remote.head();
  const d = gh.deployments.find((x) => x.ref === first && x.environment === name);
  t.ok(d, 'a deployment for the startup commit');
  t.same(d?.statuses.map((s) => s.state), ['in_progress', 'success']);
});

t.test('a push with a new image tag converges, and the deployment ends as success with the evidence link', async (t) => {
  const commit = await remote.commit({ [`ops/kv/${name}.image_tag.txt`]: '17.0.2\n' }, 'staging: 17.0.2');
  const { payload, problems } = webhookPayload('push', { ref: 'refs/heads/main', before: '0'.repeat(40), after: commit });
  t.same(problems, [], 'the push payload matches GitHub\'s schema');
  const body = JSON.stringify(payload);
  const res = await app.inject({ method: 'POST', url: '/hooks/github', payload: body, headers: { 'content-type': 'application/json', 'x-github-event': 'push', 'x-github-delivery': `e2e-${suffix()}`, 'x-hub-signature-256': signBody(HOOK_SECRET, body) } });
  t.equal(res.statusCode, 202);
  await until('17.0.2 to be served', async () => (await served()) === '17.0.2');
  await p.loop.idle();
  await p.gitops!.deployments.idle();
  const s = p.engine.status.get(name)!;
  t.equal(s.lastPass.commit, commit, 'the pass recorded the pushed commit');
  t.equal(s.inSync, true);
  const d = gh.deployments.find((x) => x.ref === commit);
  t.ok(d, 'a deployment for the pushed commit');
  t.equal(d?.environment, name);
  t.same(d?.statuses.map((x) => x.state), ['in_progress', 'success']);
  const url = new URL(d!.statuses[1]!.log_url!);
  t.equal(url.origin, 'http://pulser.test:9470', 'the log link is on pulser\'s public URL');
  t.match(url.pathname, new RegExp(`^/api/evidence/[^/]+/${name}/summary\\.md$`));
  const summary = await app.inject({ method: 'GET', url: url.pathname });
  t.equal(summary.statusCode, 200, 'the link serves the evidence summary');
  t.match(summary.body, name);
  const result = JSON.parse((await app.inject({ method: 'GET', url: url.pathname.replace('summary.md', 'result.json') })).body) as { commit: string; outcome: string };
  t.same({ commit: result.commit, outcome: result.outcome }, { commit, outcome: 'applied' }, 'result.json records the commit applied');
  t.same(gh.violations, []);
  t.notOk(logs.some((l) => l.includes('PRIVATE KEY') || [...gh.tokens.keys()].some((k) => l.includes(k))), 'no key or token logged');
});
