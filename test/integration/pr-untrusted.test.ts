// A pull request is untrusted: its plan never resolves a secret to a value and never contacts a
// host, API, database server or repository that the tracked branch does not already declare.
// Hostile pull requests aim every kind of endpoint at listeners of this test, with canaries of
// every kind of secret: the listeners must see no connection at all.
import t, { type Test } from 'tap';
import net from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gitopsPulser } from '../helpers/gitops-pulser.ts';
import { signBody } from '../../src/gitops/signature.ts';
import { GitHubStandIn } from '../helpers/github-standin.ts';
import { GitRemote, gitopsTree, envYaml } from '../helpers/gitrepo.ts';
import { freePort, suffix } from '../helpers/world.ts';

const HOOK_SECRET = `hook-canary-${suffix()}`;
const DISPATCH_SECRET = `dispatch-canary-${suffix()}`;
const CANARIES: Record<string, string> = {
  TEST_DB_PASSWORD: process.env.TEST_DB_PASSWORD ?? 'test-db-password-1',
  TEST_PR_DB_CANARY: `db-canary-${suffix()}`,
  TEST_PR_DO_TOKEN: `do-canary-${suffix()}`,
  TEST_PR_REPO_TOKEN: `repo-canary-${suffix()}`,
};
for (const [k, v] of Object.entries(CANARIES)) process.env[k] = v;
process.env.PULSER_GITHUB_WEBHOOK_SECRET = HOOK_SECRET;
process.env.PULSER_DISPATCH_SECRET = DISPATCH_SECRET;

/** A TCP listener that records every connection and every byte it is sent. */
class Listener {
  connections = 0;
  received = '';
  private server = net.createServer((s) => {
    this.connections++;
    s.on('data', (b: Buffer) => (this.received += b.toString('latin1')));
    s.on('error', () => undefined);
    // Answer like a web server would, so an HTTP client sends its headers (and its token).
    setTimeout(() => s.end('HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}'), 50);
  });
  port = 0;
  async start(): Promise<this> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.port = (this.server.address() as net.AddressInfo).port;
    return this;
  }
  stop(): Promise<void> {
    return new Promise((r) => this.server.close(() => r()));
  }
}

const gh = new GitHubStandIn();
await gh.start();
process.env.PULSER_GITHUB_APP_PRIVATE_KEY = gh.privateKey;
const listeners = { db: await new Listener().start(), api: await new Listener().start(), ssh: await new Listener().start(), repo: await new Listener().start() };

const name = `pru-${suffix()}`;
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
  await Promise.all(Object.values(listeners).map((l) => l.stop()));
  await remote.cleanup();
  await rm(state, { recursive: true, force: true });
});

let n = 0;
let prNumber = 100;
/** Opens a pull request whose head changes `files`; resolves with its plan comment and status. */
async function planPullRequest(files: Record<string, string>): Promise<{ body: string; state: string; head: string }> {
  const number = ++prNumber;
  await remote.pull('main'); // every pull request branches off the tracked branch
  const base = await remote.head();
  const branch = `pr/${number}`;
  const head = await remote.commit(files, `pull request ${number}`, branch);
  const body = JSON.stringify({ action: 'opened', number, pull_request: { number, head: { ref: branch, sha: head }, base: { ref: 'main', sha: base } } });
  const res = await app.inject({
    method: 'POST',
    url: '/hooks/github',
    payload: body,
    headers: { 'content-type': 'application/json', 'x-github-event': 'pull_request', 'x-github-delivery': `d-${++n}-${suffix()}`, 'x-hub-signature-256': signBody(HOOK_SECRET, body) },
  });
  t.equal(res.statusCode, 202);
  const end = Date.now() + 60_000;
  while (!gh.statuses.some((s) => s.sha === head && s.context === 'pulser/plan')) {
    if (Date.now() > end) throw new Error(`no plan status for ${head}\n${logs.slice(-10).join('\n')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { body: gh.commentsOn(number)[0]?.body ?? '', state: gh.statuses.find((s) => s.sha === head)!.state, head };
}

function nothingReceived(t: Test): void {
  for (const [what, l] of Object.entries(listeners)) t.equal(l.connections, 0, `the ${what} listener got no connection`);
  const all = Object.values(listeners).map((l) => l.received).join('\n');
  for (const secret of [...Object.values(CANARIES), HOOK_SECRET, DISPATCH_SECRET, gh.privateKey.split('\n')[1]!]) t.notOk(all.includes(secret), 'no canary reached a listener');
}

t.test('a pull request aiming the database and a repository at its own listeners: nothing is contacted', async (t) => {
  const hostile = env
    .replace('  host: host.docker.internal\n', `  host: host.docker.internal\n  address: 127.0.0.1\n  port: ${listeners.db.port}\n`)
    .replace('${secret:TEST_DB_PASSWORD}', '${secret:TEST_PR_DB_CANARY}')
    .concat(`addons:\n  repos:\n    - { url: "https://x:\${secret:TEST_PR_REPO_TOKEN}@127.0.0.1:${listeners.repo.port}/evil.git", ref: main }\n  install: [evil]\n`);
  const { body, state } = await planPullRequest({ [`environments/${name}.yaml`]: hostile });
  nothingReceived(t);
  t.match(body, /Not observed/, 'the comment says what was not observed');
  t.match(body, new RegExp(`would connect to database db_\\w+ as odoo at 127\\.0\\.0\\.1:${listeners.db.port}`), 'names the database it would reach');
  t.match(body, /would connect to repository https:\/\/127\.0\.0\.1:\d+\/evil\.git/, 'names the repository, without its credentials');
  for (const v of Object.values(CANARIES)) t.notOk(body.includes(v), 'no secret value in the comment');
  t.equal(state, 'success', 'declining to contact is no failure of the pull request');
});

t.test('a pull request redeclaring the tracked host as a droplet behind its own API, and adding an SSH host: nothing is contacted', async (t) => {
  const hosts = [
    'hosts:',
    '  local:',
    '    kind: digitalocean',
    `    api: http://127.0.0.1:${listeners.api.port}`,
    '    token: ${secret:TEST_PR_DO_TOKEN}',
    '    droplet: { name: evil, region: fra1, size: s-1vcpu-1gb, image: debian-12-x64 }',
    '    user: root',
    '    key: ${secret:TEST_PR_DO_TOKEN}',
    '    hostKey: SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
    '  sshy:',
    '    kind: ssh',
    `    address: 127.0.0.1`,
    `    port: ${listeners.ssh.port}`,
    '    user: root',
    '    key: ${secret:TEST_PR_DB_CANARY}',
    '    hostKey: SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
    '',
  ].join('\n');
  const onSsh = envYaml(`${name}-ssh`, await freePort()).replace('host: local', 'host: sshy');
  const { body } = await planPullRequest({ 'environments/hosts.yaml': hosts, [`environments/${name}-ssh.yaml`]: onSsh, [`ops/kv/${name}-ssh.image_tag.txt`]: '17.0.1\n' });
  nothingReceived(t);
  t.match(body, /would connect to host local: host local \(droplet evil through http:\/\/127\.0\.0\.1:\d+\) is declared differently on the tracked branch/);
  t.match(body, /would connect to host sshy: host sshy \(root@127\.0\.0\.1:\d+\) is not declared on the tracked branch/);
});

t.test("a pull request naming one of pulser's own credentials gets a coded error", async (t) => {
  const withReserved = env.replace('  health:', '  env: { LEAK: "${secret:PULSER_DISPATCH_SECRET}" }\n  health:');
  const { body, state } = await planPullRequest({ [`environments/${name}.yaml`]: withReserved });
  t.match(body, /PULSER_E_SECRET_RESERVED/);
  t.notOk(body.includes(DISPATCH_SECRET));
  t.equal(state, 'failure');
  nothingReceived(t);
});

t.test('a benign pull request is planned against the tracked world, and the tracked branch is unaffected', async (t) => {
  const { body, state } = await planPullRequest({ [`ops/kv/${name}.image_tag.txt`]: '17.0.2\n' });
  t.notMatch(body, /Not observed/, 'everything it names is declared on the tracked branch');
  t.match(body, new RegExp(`${name}/containers/odoo`));
  t.equal(state, 'success');
  t.equal(p.engine.status.get(name)?.lastPass.trigger, 'startup', 'the live status is untouched');
  const rec = await p.engine.runPass((await p.load()).envs.get(name)!, { mode: 'plan', trigger: 'check' });
  t.same(rec.errors.filter((e) => e.code === 'PULSER_E_NOT_OBSERVED'), [], "the daemon's own plans are not limited");
  t.equal(rec.plan.changes.length > 0, true);
  nothingReceived(t);
  t.notOk(logs.some((l) => Object.values(CANARIES).slice(1).some((c) => l.includes(c))), 'no canary in any log line');
});
