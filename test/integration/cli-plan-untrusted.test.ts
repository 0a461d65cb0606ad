// `pulser plan --untrusted` on a checkout whose spec aims at listeners of the test, in a shell with
// no secret set: the plan is made, nothing is contacted, and what was not observed is named.
import t from 'tap';
import net from 'node:net';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { gitopsTree } from '../helpers/gitrepo.ts';

const bin = fileURLToPath(new URL('../../bin/pulser.js', import.meta.url));
const CANARY = `canary-${process.pid}-untrusted`;

t.test('plan --untrusted contacts nothing without a trusted checkout, and needs no secret', async (t) => {
  let connections = 0;
  const server = net.createServer((s) => {
    connections++;
    s.destroy();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  const port = (server.address() as net.AddressInfo).port;
  const spec = [
    'name: fork',
    'tier: staging',
    'host: local',
    'odoo: { image: "odoo:17.0", port: 18555 }',
    `database: { name: fork, host: 127.0.0.1, port: ${port}, user: odoo, password: "\${secret:TEST_FORK_PASSWORD}" }`,
    'addons:',
    `  repos: [ { url: "https://127.0.0.1:${port}/evil.git", ref: main } ]`,
    '  install: [evil]',
    '',
  ].join('\n');
  const root = t.testdir({});
  for (const [rel, text] of Object.entries({ ...gitopsTree(), 'environments/fork.yaml': spec })) {
    await mkdir(path.dirname(path.join(root, rel)), { recursive: true });
    await writeFile(path.join(root, rel), text);
  }
  const env: NodeJS.ProcessEnv = { ...process.env, TEST_FORK_PASSWORD: CANARY };
  for (const k of Object.keys(env)) if (k.startsWith('PULSER_')) delete env[k];
  const run = (args: string[]) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
      execFile(process.execPath, [bin, ...args], { env, timeout: 120_000 }, (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr })),
    );
  const plan = await run(['plan', '--untrusted', '--json', '--dir', root]);
  t.equal(plan.code, 0, `exit 0: ${plan.stderr}`);
  const recs = JSON.parse(plan.stdout) as { env: string; errors: { code: string; message: string }[] }[];
  t.equal(recs.length, 1);
  t.ok(recs[0]!.errors.length > 0);
  t.ok(recs[0]!.errors.every((e) => e.code === 'PULSER_E_NOT_OBSERVED'), 'only what was not contacted is reported');
  t.match(recs[0]!.errors.map((e) => e.message).join('\n'), /would connect to host local: host local \(this machine\) is not declared on the tracked branch/);
  t.equal(connections, 0, 'the listener got no connection');
  t.notOk(plan.stdout.includes(CANARY) || plan.stderr.includes(CANARY), 'no secret value in the output');
  const applied = await run(['apply', '--untrusted', '--dir', root]);
  t.equal(applied.code, 2, 'an untrusted spec is never applied');
  t.match(applied.stderr, /PULSER_E_USAGE/);
});
