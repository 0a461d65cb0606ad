// One writer per environment across processes, on the real engine: a process holding an
// environment's lease makes `pulser apply` wait (naming it) or fail with --no-wait, makes the
// daemon's pass back off, and a holder killed with SIGKILL has its lease taken over.
import t from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { World, suffix } from '../helpers/world.ts';

const bin = fileURLToPath(new URL('../../bin/pulser.js', import.meta.url));
const leaseModule = fileURLToPath(new URL('../../src/core/lease.ts', import.meta.url));
process.env.TEST_DB_PASSWORD ??= 'test-db-password-1';

const w = await World.create();
const name = `lease-${suffix()}`;
await w.env(name, { tag: '17.0.1' });
const p = w.start();
t.teardown(async () => {
  await p.close();
  await w.cleanup();
});
const stateDir = path.join(w.root, '.pulser');
const holderScript = path.join(w.root, 'hold-lease.mts');
// Holds the lease until SIGTERM (then releases it), or until SIGKILL (then it is left behind).
await writeFile(
  holderScript,
  [
    `import { Leases } from ${JSON.stringify(leaseModule)};`,
    `const lease = await new Leases(${JSON.stringify(stateDir)}, 'lease test holder').acquire(${JSON.stringify(name)}, { wait: true });`,
    "process.on('SIGTERM', async () => { await lease.release(); process.exit(0); });",
    "console.log('held');",
    'setInterval(() => undefined, 1000);',
  ].join('\n'),
);

function childEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of ['PULSER_DIR', 'PULSER_LISTEN', 'PULSER_LOG_LEVEL', 'PULSER_SECRETS_FILE']) delete env[k];
  return env;
}

async function holder(): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', holderScript], { env: childEnv(), stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => d.toString().includes('held') && resolve());
    child.once('exit', (code) => reject(new Error(`the holder exited with ${code}`)));
  });
  return child;
}

function pulser(args: string[], onErr?: (text: string) => void): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [bin, ...args, '--dir', w.root, '--mail-listen', 'off'], { env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
    onErr?.(stderr);
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), 180_000);
  return new Promise((resolve) => child.once('close', (code) => (clearTimeout(timer), resolve({ code, stdout, stderr }))));
}

const exited = (c: ChildProcess) => new Promise<void>((r) => (c.exitCode !== null || c.signalCode !== null ? r() : c.once('exit', () => r())));

t.test('apply --no-wait names the holder; the daemon backs off; nothing is changed meanwhile', async (t) => {
  const h = await holder();
  t.teardown(() => h.kill('SIGKILL'));
  const refused = await pulser(['apply', name, '--no-wait']);
  t.equal(refused.code, 1);
  const said = refused.stdout + refused.stderr;
  t.match(said, /PULSER_E_LEASE_HELD/);
  t.match(said, new RegExp(`${name} is being changed by pid ${h.pid} on \\S+ \\(lease test holder, since `), 'the holder is named');
  const rec = await p.engine.runPass((await p.load()).envs.get(name)!, { mode: 'apply', trigger: 'daemon' });
  t.equal(rec.outcome, 'failed');
  t.same(rec.errors.map((e) => [e.code, e.class]), [['PULSER_E_LEASE_HELD', 'transient']], 'a transient error: the loop retries with backoff');
  t.same(await w.containersOf(name), [], 'no container was created while another process held the lease');
  h.kill('SIGTERM');
  await exited(h);
});

t.test('apply waits for a live holder, saying who it waits for, then applies', async (t) => {
  const h = await holder();
  t.teardown(() => h.kill('SIGKILL'));
  let sawWait = false;
  const run = pulser(['apply', name], (err) => {
    if (!sawWait && err.includes(`waiting for pid ${h.pid}`)) {
      sawWait = true;
      h.kill('SIGTERM');
    }
  });
  const r = await run;
  t.ok(sawWait, 'the waiting command named the holder');
  t.equal(r.code, 0, r.stderr);
  t.equal((await w.containersOf(name)).length, 1, 'applied once the lease was free');
});

t.test("a holder killed with SIGKILL leaves its lease behind; the next writer takes it over and says so", async (t) => {
  await w.kv(`${name}.image_tag`, '17.0.2');
  const h = await holder();
  const dead = h.pid!;
  h.kill('SIGKILL');
  await exited(h);
  t.match(await readFile(path.join(stateDir, 'leases', `${name}.lock`), 'utf8'), new RegExp(`"pid":${dead}`), 'the dead holder left its lease');
  const rec = await p.engine.runPass((await p.load()).envs.get(name)!, { mode: 'apply', trigger: 'daemon' });
  t.equal(rec.outcome, 'applied');
  t.equal(rec.leaseTakenOver?.pid, dead, 'the take-over is in the record');
  const summary = await readFile(path.join(p.evidence!.dir, rec.passId, name, 'summary.md'), 'utf8');
  t.match(summary, new RegExp(`Took over the lease of pid ${dead} on \\S+ \\(lease test holder`));
  await t.rejects(readFile(path.join(stateDir, 'leases', `${name}.lock`), 'utf8'), { code: 'ENOENT' }, 'released after the pass');
});
