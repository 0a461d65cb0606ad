// The real command line, run as a child process: exit codes (0 ok, 1 failure, 2 usage, 3 drift),
// located validation errors, JSON output, and the daemon's HTTP server and graceful SIGTERM.
import t, { type Test } from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { World, suffix, httpGet, freePort } from '../helpers/world.ts';

// About a dozen child processes, each loading the TypeScript sources: on a busy machine the
// file can need more than the default budget.
t.setTimeout(600_000);

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const bin = path.join(repo, 'bin', 'pulser.js');

const w = await World.create();
const bad = await World.create();
t.teardown(async () => {
  await w.cleanup();
  await bad.cleanup();
});
const name = `cli-${suffix()}`;
const port = await w.env(name, { tag: '17.0.1' });
await bad.writeFile(
  'environments/bad.yaml',
  ['name: bad', 'tier: staging', 'host: local', 'odoo:', '  image: pulser-demo/odoo:17.0.1', '  port: notaport', '  workerz: 2', 'database:', '  name: db_bad', '  host: h', '  user: odoo', '  password: x', ''].join('\n'),
);

/** The environment of the children: the test's own, without PULSER_* settings that would change defaults. */
function childEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, TEST_DB_PASSWORD: process.env.TEST_DB_PASSWORD ?? 'test-db-password-1' };
  for (const k of ['PULSER_DIR', 'PULSER_LISTEN', 'PULSER_CONCURRENCY', 'PULSER_LOG_LEVEL', 'PULSER_SECRETS_FILE']) delete env[k];
  return env;
}

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function start(args: string[]): { child: ChildProcess; done: Promise<Run> } {
  const child = spawn(process.execPath, [bin, ...args], { cwd: repo, env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const done = new Promise<Run>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return { child, done };
}

/** Runs `pulser args…` to its end (killed after timeoutMs). */
async function pulser(args: string[], timeoutMs = 180_000): Promise<Run> {
  const { child, done } = start(args);
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  try {
    return await done;
  } finally {
    clearTimeout(timer);
  }
}

function show(r: Run): string {
  return `exit ${r.code} ${r.signal ?? ''}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
}

async function until(what: string, check: () => Promise<boolean>, ms = 120_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms / 1000}s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const served = async () => (await httpGet(`http://127.0.0.1:${port}/version.txt`))?.body.trim();

/** Asserts the exit code; the whole output goes into the diagnostics of a failure. */
function exits(t: Test, r: Run, code: number): void {
  t.equal(r.code, code, `exit ${code}`, { output: show(r) });
}

t.test('validate: exit 0 on a valid root, 1 with file:line:col lines on an invalid one', async (t) => {
  const [ok, invalid] = await Promise.all([pulser(['validate', '--dir', w.root]), pulser(['validate', '--dir', bad.root])]);
  exits(t, ok, 0);
  t.match(ok.stdout, new RegExp(`^ok\\s+environments/${name}\\.yaml \\(staging on local\\)$`, 'm'));

  exits(t, invalid, 1);
  t.match(invalid.stdout, /^invalid\s+environments\/bad\.yaml$/m);
  const located = invalid.stdout.split('\n').filter((l) => /^\s+environments\/bad\.yaml:\d+:\d+ \S.*\[PULSER_E_[A-Z_]+\]$/.test(l));
  t.equal(located.length, 2, 'two located errors', { stdout: invalid.stdout });
  t.match(invalid.stdout, /^\s+environments\/bad\.yaml:6:9 odoo\.port: must be integer\s+\[PULSER_E_SPEC_INVALID\]$/m);
  t.match(invalid.stdout, /^\s+environments\/bad\.yaml:7:3 odoo\.workerz: unknown key.*\[PULSER_E_SPEC_UNKNOWN_KEY\]$/m);
  t.notMatch(invalid.stderr, /PULSER_E_INTERNAL/);
});

t.test('usage errors exit 2 with PULSER_E_USAGE; an unknown environment exits 1', async (t) => {
  const [cmd, flag, unknown, keep] = await Promise.all([
    pulser(['frobnicate', '--dir', w.root]),
    pulser(['plan', '--no-such-flag', '--dir', w.root]),
    pulser(['plan', 'nosuchenv', '--dir', w.root]),
    pulser(['apply', '--evidence-keep', '0', '--dir', w.root]),
  ]);
  exits(t, keep, 2);
  t.match(keep.stderr, /^pulser: PULSER_E_USAGE: --evidence-keep must be an integer from 1 to 1000000, got "0"/m);
  exits(t, cmd, 2);
  t.match(cmd.stderr, /^pulser: PULSER_E_USAGE: unknown command "frobnicate"/m);
  exits(t, flag, 2);
  t.match(flag.stderr, /^pulser: PULSER_E_USAGE: .*--no-such-flag/m);
  for (const r of [cmd, flag]) t.equal(r.stdout, '', 'nothing on stdout');
  exits(t, unknown, 1);
  t.match(unknown.stderr, new RegExp(`^pulser: PULSER_E_ENV_UNKNOWN: no environment "nosuchenv" in environments/ \\(known: ${name}\\)`, 'm'));
});

t.test('plan with drift: --detailed-exitcode exits 3, --json lists the changes', async (t) => {
  const [detailed, json] = await Promise.all([pulser(['plan', '--detailed-exitcode', '--dir', w.root]), pulser(['plan', name, '--json', '--dir', w.root])]);
  exits(t, detailed, 3);
  t.match(detailed.stdout, new RegExp(`^\\s+\\+ ${name}/containers/odoo\\s+\\(create, safe\\)$`, 'm'));
  t.match(detailed.stdout, /^Plan: 1 to create, 0 to update, 0 to delete/m);
  exits(t, json, 0);
  const plans = JSON.parse(json.stdout) as { env: string; outcome: string; specHash: string; changes: { reconciler: string; action: string; summary: string }[] }[];
  t.equal(plans.length, 1);
  t.equal(plans[0]!.env, name);
  t.equal(plans[0]!.outcome, 'planned');
  t.match(plans[0]!.specHash, /^sha256:/);
  t.equal(plans[0]!.changes.length, 1);
  t.match(plans[0]!.changes[0], { reconciler: 'containers', action: 'create', summary: /^create pulser-cli-[0-9a-f]+-odoo from pulser-demo\/odoo:17\.0\.1/ });
  t.equal(await served(), undefined, 'planning started nothing');
});

t.test('after apply, plan --detailed-exitcode exits 0 and status --json lists the environment', async (t) => {
  const a = await pulser(['apply', name, '--dir', w.root]);
  exits(t, a, 0);
  t.equal(await served(), '17.0.1');

  const [p, s] = await Promise.all([pulser(['plan', '--detailed-exitcode', '--dir', w.root]), pulser(['status', '--json', '--dir', w.root])]);
  exits(t, p, 0);
  t.match(p.stdout, /no changes/);
  exits(t, s, 0);
  const status = JSON.parse(s.stdout) as { environments: { env: string; inSync: boolean; specValid: boolean; tier: string; lastPass: { mode: string; outcome: string } }[] };
  t.equal(status.environments.length, 1);
  t.match(status.environments[0], { env: name, inSync: true, specValid: true, tier: 'staging' });
  t.match(status.environments[0]!.lastPass, { mode: 'apply', outcome: 'applied' }, 'the last pass comes from the evidence of the apply');
});

/** Starts `pulser reconcile --watch` on a free port and waits until /healthz answers 200. */
async function daemon(t: Test): Promise<{ child: ChildProcess; done: Promise<Run>; base: string; exited: () => Run | null }> {
  const listen = await freePort();
  const base = `http://127.0.0.1:${listen}`;
  const { child, done } = start(['reconcile', '--watch', '--listen', `127.0.0.1:${listen}`, '--dir', w.root]);
  let exited: Run | null = null;
  void done.then((r) => (exited = r));
  t.teardown(() => {
    if (!exited) child.kill('SIGKILL');
  });
  await until('/healthz to answer 200', async () => {
    if (exited) throw new Error(`the daemon exited early:\n${show(exited)}`);
    return (await httpGet(`${base}/healthz`))?.status === 200;
  });
  return { child, done, base, exited: () => exited };
}

/** Sends SIGTERM and waits up to ms for the exit; null when it did not exit in time. */
async function terminate(child: ChildProcess, done: Promise<Run>, ms: number): Promise<{ run: Run | null; tookMs: number }> {
  const sent = Date.now();
  child.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const run = await Promise.race([done, new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), ms)))]);
  clearTimeout(timer);
  return { run, tookMs: Date.now() - sent };
}

const inflight = path.join(w.root, 'evidence', '.inflight');
const inflightEnvs = () => readdir(inflight).catch(() => [] as string[]);

t.test('reconcile --watch serves /healthz and /metrics, and exits 0 within 10s of SIGTERM', async (t) => {
  const d = await daemon(t);
  const health = await httpGet(`${d.base}/healthz`);
  t.match(JSON.parse(health!.body), { status: 'ok', version: '0.1.0' });
  // the startup pass of the (in sync) environment shows in the metrics once it ends
  let metrics = '';
  await until('the startup pass in /metrics', async () => {
    const res = await httpGet(`${d.base}/metrics`);
    metrics = res?.status === 200 ? res.body : '';
    return metrics.includes(`pulser_reconcile_total{env="${name}",outcome="in-sync"} 1`);
  });
  t.match(metrics, /^pulser_info\{version="0\.1\.0"\} 1$/m);
  t.match(metrics, new RegExp(`^pulser_spec_valid\\{env="${name}"\\} 1$`, 'm'));
  t.match(metrics, new RegExp(`^pulser_in_sync\\{env="${name}"\\} 1$`, 'm'));
  t.match(metrics, /^pulser_process_cpu_user_seconds_total /m, 'process metrics are on in the daemon');
  const api = await httpGet(`${d.base}/api/status`);
  t.match(JSON.parse(api!.body), { environments: [{ env: name, inSync: true }] });

  const { run, tookMs } = await terminate(d.child, d.done, 10_000);
  t.ok(run, `exited within 10s of SIGTERM (${tookMs}ms)`);
  if (!run) return;
  exits(t, run, 0);
  t.equal(run.signal, null);
  t.match(run.stderr, /SIGTERM: finishing passes under way, then stopping/);
  t.same(await inflightEnvs(), [], 'no .inflight intent left behind');
  t.equal((await httpGet(`${d.base}/healthz`))?.status, undefined, 'the server is closed');
});

t.test('SIGTERM during a rollout: the pass is finished, then the daemon exits 0', async (t) => {
  // a new tag gives the startup pass a rollout to do
  await w.kv(`${name}.image_tag`, '17.0.2');
  const d = await daemon(t);
  let midPass = false;
  await until('the rollout to start', async () => {
    midPass = (await inflightEnvs()).includes(name);
    return midPass || (await served()) === '17.0.2';
  });
  t.comment(midPass ? 'SIGTERM while the intent record exists' : 'the pass ended before it could be seen');
  // stopping waits for the pass under way (up to the loop's 60s)
  const { run, tookMs } = await terminate(d.child, d.done, 90_000);
  t.ok(run, `exited ${tookMs}ms after SIGTERM`);
  if (!run) return;
  exits(t, run, 0);
  t.same(await inflightEnvs(), [], 'no .inflight intent left behind');
  t.equal(await served(), '17.0.2', 'the pass under way was finished, not cut short');
  t.match(run.stderr, new RegExp(`pass \\S+ ${name}: applied`), 'the pass ended as applied');
  t.notMatch(run.stderr, /PULSER_E_PASS_INTERRUPTED/);
});
