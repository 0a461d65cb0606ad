// pulser killed with SIGKILL in the middle of a rollout, then started again: the restart reports
// the pass that was cut short, names it in its own record, and converges without leaving a
// duplicate, a parked `.prev-` container or an unlabelled leftover behind.
//
// The real CLI runs as a child process; the kill points are found from its progress lines on
// stderr (`progress <env>: …`), and the kill is sent from the very handler that sees the line.
import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type Docker from 'dockerode';
import { World, suffix, httpGet } from '../helpers/world.ts';

const BIN = fileURLToPath(new URL('../../bin/pulser.js', import.meta.url));
const CWD = fileURLToPath(new URL('../..', import.meta.url));
const KILL_WAIT_MS = 60_000;
const RUN_WAIT_MS = 120_000;
// Probes stop at the first success, so generous retries cost nothing for healthy images and keep
// a slow start on a busy machine from failing the rollout; the broken image pays for every retry.
const HEALTHY_RETRIES = 60;

process.env.TEST_DB_PASSWORD ??= 'test-db-password-1';

interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** the stderr line the process was killed on, or null */
  killedOn: string | null;
  timedOut: boolean;
  ms: number;
}

// The scenarios use separate roots and environments, so two of them run side by side.
t.jobs = 2;

const running = new Set<() => void>();
t.teardown(() => {
  for (const stop of running) stop();
});

/**
 * Runs `node bin/pulser.js ARGS`. With `killOn`, the process gets SIGKILL as soon as a stderr line
 * matches. Every run is bounded: past `timeoutMs` it is killed and reported as timed out.
 */
function cli(args: string[], opts: { killOn?: RegExp; timeoutMs?: number } = {}): Promise<CliRun> {
  const started = Date.now();
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd: CWD,
    env: { ...process.env, DOCKER_HOST: process.env.DOCKER_HOST, TEST_DB_PASSWORD: process.env.TEST_DB_PASSWORD },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const stop = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  running.add(stop);
  let stdout = '';
  let stderr = '';
  let partial = '';
  let killedOn: string | null = null;
  let timedOut = false;
  child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
  child.stderr.setEncoding('utf8').on('data', (s: string) => {
    stderr += s;
    if (!opts.killOn || killedOn !== null) return;
    partial += s;
    const lines = partial.split('\n');
    partial = lines.pop() ?? '';
    const hit = lines.find((l) => opts.killOn!.test(l));
    if (hit !== undefined) {
      killedOn = hit;
      child.kill('SIGKILL');
    }
  });
  const timer = setTimeout(() => {
    timedOut = true;
    stop();
  }, opts.timeoutMs ?? (opts.killOn ? KILL_WAIT_MS : RUN_WAIT_MS));
  return new Promise((resolve, reject) => {
    child.once('error', (err) => {
      clearTimeout(timer);
      running.delete(stop);
      reject(err);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      running.delete(stop);
      resolve({ code, signal, stdout, stderr, killedOn, timedOut, ms: Date.now() - started });
    });
  });
}

function lineRe(env: string, text: string): RegExp {
  return new RegExp(`^progress ${env}: ${text}`);
}

/** Lists every container whose name mentions the environment's container name, labelled or not. */
async function byName(w: World, env: string): Promise<Docker.ContainerInfo[]> {
  const all = await w.docker.listContainers({ all: true });
  return all.filter((c) => c.Names.some((n) => n.startsWith(`/pulser-${env}-odoo`)));
}

function nameOf(c: Docker.ContainerInfo): string {
  return c.Names[0]!.replace(/^\//, '');
}

async function readJson(file: string): Promise<Record<string, unknown>> {
  return JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
}

async function exists(file: string): Promise<boolean> {
  return readFile(file).then(
    () => true,
    () => false,
  );
}

async function inflightEntries(w: World): Promise<string[]> {
  return readdir(path.join(w.root, 'evidence', '.inflight')).catch(() => []);
}

interface Killed {
  passId: string;
  run: CliRun;
}

/** Spawns `apply ENV`, kills it on the line, and returns the pass id its intent record names. */
async function applyAndKill(t: Test, w: World, env: string, killOn: RegExp): Promise<Killed> {
  const run = await cli(['apply', env, '--dir', w.root], { killOn });
  t.notOk(run.timedOut, 'the kill point was reached in time');
  t.equal(run.signal, 'SIGKILL', 'killed with SIGKILL');
  t.match(run.killedOn ?? '', killOn, `killed after ${run.ms} ms on: ${run.killedOn ?? '(none)'}`);
  if (run.signal !== 'SIGKILL') t.comment(run.stderr);
  const intentFile = path.join(w.root, 'evidence', '.inflight', env, 'intent.json');
  const intent = await readJson(intentFile);
  const passId = String(intent.passId);
  t.match(passId, /^\d{8}-\d{6}-[0-9a-z]{4}$/, 'the intent record names the pass');
  t.equal(intent.env, env);
  t.notOk(await exists(path.join(w.root, 'evidence', passId, env, 'result.json')), 'no pack was written for the killed pass yet');
  const journal = (await readFile(path.join(w.root, 'evidence', '.inflight', env, 'apply.jsonl'), 'utf8')).trim().split('\n');
  t.equal(journal.length, 1, 'the journal holds the start of the rollout and no end');
  return { passId, run };
}

/** Everything a converged environment must look like after the restart. */
async function assertConverged(t: Test, w: World, env: string, port: number, version: string, image: string): Promise<void> {
  const labelled = await w.containersOf(env);
  t.equal(labelled.length, 1, `exactly one container labelled for ${env}: ${labelled.map(nameOf).join(', ')}`);
  const c = labelled[0]!;
  t.equal(nameOf(c), `pulser-${env}-odoo`);
  t.equal(c.State, 'running');
  t.equal(c.Image, image);
  t.equal((await httpGet(`http://127.0.0.1:${port}/version.txt`))?.body.trim(), version, `serves ${version}`);
  const named = await byName(w, env);
  t.same(
    named.map(nameOf),
    [`pulser-${env}-odoo`],
    'no parked `.prev-` container and no unlabelled leftover with the name',
  );
  t.same(await inflightEntries(w), [], '.inflight/ is empty');
}

/** The killed pass is reported as interrupted, and the restart's pass says it resumes it. */
async function assertReported(t: Test, w: World, env: string, killedPassId: string): Promise<Record<string, unknown>> {
  const killed = await readJson(path.join(w.root, 'evidence', killedPassId, env, 'result.json'));
  t.equal(killed.outcome, 'interrupted', 'the killed pass is reported as interrupted');
  const errors = killed.errors as Array<{ code: string; message: string }>;
  const err = errors.find((e) => e.code === 'PULSER_E_PASS_INTERRUPTED');
  t.ok(err, 'with PULSER_E_PASS_INTERRUPTED');
  t.match(err?.message ?? '', /0 of 1 planned changes had completed, 1 was in progress/);
  t.match(killed.changes, { planned: 1, applied: 0, inProgress: 1 });

  const newer = (await readdir(path.join(w.root, 'evidence'))).filter((d) => /^\d{8}-/.test(d) && d !== killedPassId).sort();
  const candidates: Array<Record<string, unknown>> = [];
  for (const id of newer) {
    const file = path.join(w.root, 'evidence', id, env, 'result.json');
    if (await exists(file)) candidates.push(await readJson(file));
  }
  const next = candidates.find((r) => (r.resumes as { passId?: string } | null)?.passId === killedPassId);
  t.ok(next, 'a later pass names the killed one in `resumes`');
  t.equal(candidates.filter((r) => r.resumes !== null).length, 1, 'exactly one pass resumes it');
  const resumes = next?.resumes as { passId: string; applied: number; planned: number } | undefined;
  t.match(resumes, { passId: killedPassId, applied: 0, planned: 1 });
  t.ok(String(next?.startedAt) >= String(killed.startedAt), 'the resuming pass started after the killed one');
  return next ?? {};
}

/** Sets `odoo.command` in the environment's spec file written by `World.env`. */
async function setCommand(w: World, env: string, argv: string[]): Promise<void> {
  const file = path.join('environments', `${env}.yaml`);
  const yaml = await readFile(path.join(w.root, file), 'utf8');
  await w.writeFile(file, yaml.replace(/\nodoo:\n(  command: .*\n)?/, `\nodoo:\n  command: ${JSON.stringify(argv)}\n`));
}

async function world(t: Test): Promise<World> {
  const w = await World.create();
  t.teardown(() => w.cleanup());
  return w;
}

t.test('killed right after `stopping previous container`: the restart rolls out again', async (t) => {
  const w = await world(t);
  const env = `cr-a-${suffix()}`;
  const port = await w.env(env, { tag: '17.0.1', retries: HEALTHY_RETRIES });
  // The server takes a second to shut down after SIGTERM, so the kill surely lands while the
  // previous container is stopping and before the new one is started.
  await setCommand(w, env, ['sh', '-c', "trap 'sleep 1; kill $!; exit 0' TERM; /entrypoint.sh odoo & wait"]);
  const [first] = await w.pass(env);
  t.equal(first!.outcome, 'applied', `converged on 17.0.1 ${JSON.stringify(first!.errors)}`);
  const oldId = (await w.containersOf(env))[0]!.Id;

  await w.kv(`${env}.image_tag`, '17.0.2');
  const killed = await applyAndKill(t, w, env, lineRe(env, 'stopping previous container [0-9a-f]{12}$'));
  t.notMatch(killed.run.stderr, /progress \S+: starting /, 'killed before the new container was started');

  const mid = await w.containersOf(env);
  t.equal(mid.length, 2, 'previous and new container both exist');
  const parked = mid.find((c) => c.Id === oldId);
  t.equal(parked && nameOf(parked), `pulser-${env}-odoo.prev-${oldId.slice(0, 12)}`, 'the previous container is parked');
  const created = mid.find((c) => c.Id !== oldId);
  t.equal(created && nameOf(created), `pulser-${env}-odoo`, 'the new container holds the name');
  t.equal(created?.State, 'created', 'the new container was created but not started');
  t.equal(created?.Image, 'pulser-demo/odoo:17.0.2');

  const again = await cli(['apply', env, '--dir', w.root]);
  t.equal(again.code, 0, `the restart exits 0 (${again.ms} ms)${again.code === 0 ? '' : `\n${again.stderr}`}`);
  t.match(again.stderr, /PULSER_E_PASS_INTERRUPTED/, 'the restart says a pass was cut short');
  await assertConverged(t, w, env, port, '17.0.2', 'pulser-demo/odoo:17.0.2');
  t.not((await w.containersOf(env))[0]!.Id, created?.Id, 'the untrusted candidate was recreated, not reused');
  const next = await assertReported(t, w, env, killed.passId);
  t.equal(next.outcome, 'applied');
});

t.test('killed while waiting for health: `reconcile --once` finishes the rollout', async (t) => {
  const w = await world(t);
  const env = `cr-b-${suffix()}`;
  const port = await w.env(env, { tag: '17.0.1', retries: HEALTHY_RETRIES });
  const [first] = await w.pass(env);
  t.equal(first!.outcome, 'applied', `converged on 17.0.1 ${JSON.stringify(first!.errors)}`);
  const oldId = (await w.containersOf(env))[0]!.Id;

  // The new container needs a moment before it answers, so the first probe surely fails and
  // the rollout is caught between "running" and "healthy".
  await w.kv(`${env}.image_tag`, '17.0.2');
  await setCommand(w, env, ['sh', '-c', 'sleep 1; exec /entrypoint.sh odoo']);

  const killed = await applyAndKill(t, w, env, lineRe(env, `waiting for ${env} to be healthy: probe 1/`));

  const mid = await w.containersOf(env);
  t.equal(mid.length, 2, 'previous and new container both exist');
  const parked = mid.find((c) => c.Id === oldId);
  t.equal(parked && nameOf(parked), `pulser-${env}-odoo.prev-${oldId.slice(0, 12)}`, 'the previous container is parked');
  t.equal(parked?.State, 'exited', 'and stopped');
  const fresh = mid.find((c) => c.Id !== oldId);
  t.equal(fresh && nameOf(fresh), `pulser-${env}-odoo`);
  t.equal(fresh?.State, 'running', 'the new container runs');
  t.equal(fresh?.Image, 'pulser-demo/odoo:17.0.2');

  const again = await cli(['reconcile', '--once', '--dir', w.root]);
  t.equal(again.code, 0, `the restart exits 0 (${again.ms} ms)${again.code === 0 ? '' : `\n${again.stderr}`}`);
  await assertConverged(t, w, env, port, '17.0.2', 'pulser-demo/odoo:17.0.2');
  t.equal((await w.containersOf(env))[0]!.Id, fresh?.Id, 'the healthy new container was kept, not recreated');
  const next = await assertReported(t, w, env, killed.passId);
  t.equal(next.outcome, 'applied');
  t.not(next.trigger, 'cli apply', `the resuming pass came from the loop (${String(next.trigger)})`);
});

t.test('killed right after `starting` with no previous container: the restart converges', async (t) => {
  const w = await world(t);
  const env = `cr-c-${suffix()}`;
  const port = await w.env(env, { tag: '17.0.2', retries: HEALTHY_RETRIES });

  const killed = await applyAndKill(t, w, env, lineRe(env, `starting pulser-${env}-odoo \\(`));
  const mid = await w.containersOf(env);
  t.equal(mid.length, 1, 'one new container');
  t.equal(mid[0] && nameOf(mid[0]), `pulser-${env}-odoo`);
  // The start request may or may not have reached the engine before the kill.
  t.match(mid[0]?.State, /^(created|running)$/, `the new container is ${mid[0]?.State}`);
  t.same((await byName(w, env)).filter((c) => nameOf(c).includes('.prev-')), [], 'nothing was parked');

  const again = await cli(['apply', env, '--dir', w.root]);
  t.equal(again.code, 0, `the restart exits 0 (${again.ms} ms)${again.code === 0 ? '' : `\n${again.stderr}`}`);
  await assertConverged(t, w, env, port, '17.0.2', 'pulser-demo/odoo:17.0.2');
  const next = await assertReported(t, w, env, killed.passId);
  t.match(next.outcome, /^(applied|in-sync)$/);
});

t.test('killed during a rollout to a broken image: the restart rolls back to the previous one', async (t) => {
  const w = await world(t);
  const env = `cr-d-${suffix()}`;
  const port = await w.env(env, { tag: '17.0.1', retries: 30 });
  const [first] = await w.pass(env);
  t.equal(first!.outcome, 'applied', `converged on 17.0.1 ${JSON.stringify(first!.errors)}`);
  const oldId = (await w.containersOf(env))[0]!.Id;

  await w.kv(`${env}.image_tag`, 'broken');
  const killed = await applyAndKill(t, w, env, lineRe(env, `waiting for ${env} to be healthy: probe 1/`));
  const mid = await w.containersOf(env);
  t.equal(mid.length, 2);
  const parked = mid.find((c) => c.Id === oldId);
  t.equal(parked && nameOf(parked), `pulser-${env}-odoo.prev-${oldId.slice(0, 12)}`, 'the previous container is parked');
  t.equal(parked?.State, 'exited');
  t.equal(mid.find((c) => c.Id !== oldId)?.Image, 'pulser-demo/odoo:broken', 'the broken candidate runs');

  const again = await cli(['apply', env, '--dir', w.root]);
  t.equal(again.code, 1, `the restart exits 1: the desired image is unhealthy (${again.ms} ms)`);
  t.match(again.stderr, /PULSER_E_HEALTH_CHECK_FAILED/);
  await assertConverged(t, w, env, port, '17.0.1', 'pulser-demo/odoo:17.0.1');
  t.equal((await w.containersOf(env))[0]!.Id, oldId, 'the previous container is back under its own name');
  t.equal((await httpGet(`http://127.0.0.1:${port}/web/health`))?.status, 200);
  const next = await assertReported(t, w, env, killed.passId);
  t.equal(next.outcome, 'failed');
  const errors = next.errors as Array<{ code: string; message: string }>;
  const err = errors.find((e) => e.code === 'PULSER_E_HEALTH_CHECK_FAILED');
  t.ok(err, `coded error: ${JSON.stringify(errors.map((e) => e.code))}`);
  t.match(err?.message ?? '', /HTTP 404/);
  t.match(err?.message ?? '', new RegExp(`rolled back to ${oldId.slice(0, 12)} \\(pulser-demo/odoo:17\\.0\\.1\\)`));
});
