// Benchmarks of the containers path: rollouts (P1, P4), a no-op pass over many environments (P3)
// and the daemon's memory (P7). Each section prints its figures next to a baseline measured in
// the same run and the ratio between them. These are not tests: nothing here asserts.
//
//   bash bench/run.sh [--only P1,P3,P4,P7] [--envs 200] [--changes 100] [--rollouts 10]
import { parseArgs } from 'node:util';
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import type Docker from 'dockerode';
import { createPulser, type Pulser } from '../src/app.ts';
import { ensureDemoImages } from '../src/demo/images.ts';
import { LABEL } from '../src/drivers/docker.ts';
import type { EnvLoad } from '../src/spec/model.ts';
import type { PassRecord } from '../src/core/record.ts';
import { HandRollout } from './baseline.ts';
import {
  ApiCounter,
  statusOf,
  waitExit,
  EngineCpuMeter,
  BENCH_SECRETS,
  BenchRoot,
  PortRange,
  cpuMs,
  dockerClient,
  fmtMiB,
  fmtMs,
  load1,
  mapLimit,
  median,
  memoryOf,
  now,
  printSection,
  removeBenchContainers,
  setBenchSecrets,
  sleep,
  sum,
  summaryLine,
  type BenchEnv,
  type SectionResult,
} from './lib.ts';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const TAG_A = '17.0.1';
const TAG_B = '17.0.2';
/** the loop's default (`ReconcileLoop`, `--concurrency`) */
const LOOP_CONCURRENCY = 4;
/** a wider loop, shown next to P3 for comparison only */
const WIDE_CONCURRENCY = 16;

const { values: flags } = parseArgs({
  options: {
    only: { type: 'string', default: 'P1,P3,P4,P7' },
    envs: { type: 'string', default: '200' },
    changes: { type: 'string', default: '100' },
    rollouts: { type: 'string', default: '10' },
    'setup-concurrency': { type: 'string', default: '8' },
  },
});
const only = new Set((flags.only ?? '').split(',').map((s) => s.trim().toUpperCase()));
const N_ENVS = Number(flags.envs);
const N_CHANGES = Math.min(Number(flags.changes), Math.floor(N_ENVS / 2));
const N_ROLLOUTS = Number(flags.rollouts);
const SETUP_CONCURRENCY = Number(flags['setup-concurrency']);

function info(msg: string): void {
  console.log(`  · ${msg}`);
}

interface BenchPulser {
  p: Pulser;
  logs: string[];
  counter: ApiCounter;
}

/** A pulser on a root, logging warnings and errors into memory (shown when something fails). */
async function benchPulser(root: string, opts: { evidence: boolean; concurrency?: number }): Promise<BenchPulser> {
  const logs: string[] = [];
  const p = createPulser({
    root,
    processMetrics: false,
    evidenceDir: opts.evidence ? undefined : null,
    concurrency: opts.concurrency,
    logLevel: 'warn',
    logJson: true,
    logWrite: (l) => {
      logs.push(l);
      if (logs.length > 50) logs.shift();
    },
  });
  // Loading once creates the drivers; later loads keep them while hosts.yaml is unchanged.
  await p.load();
  const counter = new ApiCounter();
  counter.attach(p.drivers().docker('local').client);
  return { p, logs, counter };
}

function loadOf(snapEnvs: Map<string, EnvLoad>, name: string): EnvLoad {
  const l = snapEnvs.get(name);
  if (!l) throw new Error(`bench: environment ${name} did not load`);
  return l;
}

/** The first warnings and errors pulser logged (each a JSON line), shortened for a note. */
function failureLogs(logs: readonly string[], n: number): string[] {
  return logs.slice(0, n).map((l) => {
    try {
      const o = JSON.parse(l) as { msg?: string; errors?: string[]; code?: string };
      return `${o.msg ?? ''}${o.errors ? ` ${o.errors.join(',')}` : ''}${o.code ? ` ${o.code}` : ''}`.slice(0, 300);
    } catch {
      return l.slice(0, 300);
    }
  });
}

function failureText(rec: PassRecord): string {
  return `${rec.env}: ${rec.outcome} ${rec.errors.map((e) => `${e.code} ${e.message}`).join('; ')}`;
}

// ------------------------------------------------------------------------------- P1 ---

async function p1(ports: PortRange, roots: BenchRoot[]): Promise<SectionResult> {
  const root = await BenchRoot.create('p1');
  roots.push(root);
  const env: BenchEnv = { name: 'bench-p1', port: await ports.take() };
  await root.addEnv(env, TAG_A);
  const bp = await benchPulser(root.dir, { evidence: true });
  const first = await bp.p.engine.runPass(loadOf((await bp.p.load()).envs, env.name), { mode: 'apply', trigger: 'bench setup', fresh: true });
  if (first.outcome !== 'applied') throw new Error(`P1 setup: ${failureText(first)}`);

  const handClient = dockerClient();
  const handCounter = new ApiCounter();
  handCounter.attach(handClient);
  const hand = new HandRollout(handClient, 'bench-p1-hand', await ports.take(), 200);
  await hand.init(TAG_A);
  bp.counter.reset();
  handCounter.reset();

  const pulserMs: number[] = [];
  const loadMs: number[] = [];
  const applyMs: number[] = [];
  const pulserProbes: number[] = [];
  const handMs: number[] = [];
  const handProbes: number[] = [];
  const meter = EngineCpuMeter.forTestEngines();
  const pulserEngine: number[] = [];
  const handEngine: number[] = [];
  const failures: string[] = [];

  const viaPulser = async (tag: string) => {
    meter?.start();
    const t0 = now();
    await root.setTag(env.name, tag);
    const snap = await bp.p.load();
    const t1 = now();
    const rec = await bp.p.engine.runPass(loadOf(snap.envs, env.name), { mode: 'apply', trigger: 'bench', fresh: true });
    pulserMs.push(now() - t0);
    if (meter) pulserEngine.push(meter.stop());
    loadMs.push(t1 - t0);
    if (rec.outcome !== 'applied') failures.push(failureText(rec));
    const a = rec.apply[0];
    if (a?.endedAt) applyMs.push(Date.parse(a.endedAt) - Date.parse(a.startedAt));
    const probes = a?.detail?.probes;
    if (typeof probes === 'number') pulserProbes.push(probes);
  };
  const byHand = async (tag: string) => {
    meter?.start();
    const r = await hand.rollout(tag);
    if (meter) handEngine.push(meter.stop());
    handMs.push(r.totalMs);
    handProbes.push(r.probes);
  };

  console.log(`\n-- P1: ${N_ROLLOUTS} image-tag changes of one environment, pulser and hand-written interleaved (load ${load1()})`);
  for (let i = 0; i < N_ROLLOUTS; i++) {
    const tag = i % 2 === 0 ? TAG_B : TAG_A;
    // Alternate who goes first, so neither always follows the other's container removal.
    if (i % 2 === 0) {
      await viaPulser(tag);
      await byHand(tag);
    } else {
      await byHand(tag);
      await viaPulser(tag);
    }
    info(`${i + 1}/${N_ROLLOUTS} → ${tag}: pulser ${fmtMs(pulserMs.at(-1)!)}, hand ${fmtMs(handMs.at(-1)!)}`);
  }
  await bp.p.close();

  const total = sum(pulserMs);
  const base = sum(handMs);
  const ratio = total / base;
  const passOverhead = pulserMs.map((ms, i) => ms - (applyMs[i] ?? NaN) - (loadMs[i] ?? 0));
  return {
    id: 'P1',
    title: `rollout of ${N_ROLLOUTS} image-tag changes of one environment (health interval 200 ms)`,
    lines: [
      ['pulser total', `${fmtMs(total)} (median ${fmtMs(median(pulserMs))} per rollout, min ${fmtMs(Math.min(...pulserMs))}, max ${fmtMs(Math.max(...pulserMs))})`],
      ['  spec load', `median ${fmtMs(median(loadMs))}`],
      ['  rollout change', `median ${fmtMs(median(applyMs))} (apply of the one change: inspect image, list, rename, create, copy odoo.conf, stop, start, probes, remove)`],
      ['  rest of pass', `median ${fmtMs(median(passOverhead))} (observe, plan, evidence, observe again, verify)`],
      ['  probes', `median ${median(pulserProbes)} per rollout`],
      ['  docker API calls', `${(bp.counter.total / N_ROLLOUTS).toFixed(1)} per rollout: ${bp.counter.describe()}`],
      ['engine CPU', meter ? `median ${fmtMs(median(pulserEngine))} per rollout through pulser, ${fmtMs(median(handEngine))} by hand (dockerd, containerd, shims and the runc calls and container processes they reaped)` : 'n/a (PULSER_TEST_ROOT not set)'],
      ['median ratio', `${(median(pulserMs) / median(handMs)).toFixed(3)}× (per-rollout medians, less sensitive to one slow engine call)`],
      ['  outcome', failures.length ? `${failures.length} failed: ${failures.slice(0, 3).join(' | ')}` : `all ${N_ROLLOUTS} applied`],
    ],
    baseline: `${fmtMs(base)} hand-written dockerode (median ${fmtMs(median(handMs))} per rollout, ${median(handProbes)} probes, ${(handCounter.total / N_ROLLOUTS).toFixed(1)} API calls per rollout)`,
    ratio,
    targets: [{ label: 'ratio', value: ratio, limit: 1.3, show: (v) => `${v.toFixed(3)}×` }],
    notes: [`hand-written API calls: ${handCounter.describe()}`],
  };
}

// ---------------------------------------------------------------- many environments ---

interface Many {
  root: BenchRoot;
  envs: BenchEnv[];
}

async function setupMany(ports: PortRange, roots: BenchRoot[]): Promise<Many> {
  const root = await BenchRoot.create('many');
  roots.push(root);
  const envs: BenchEnv[] = [];
  for (let i = 0; i < N_ENVS; i++) {
    const env = { name: `bench-e${String(i).padStart(3, '0')}`, port: await ports.take() };
    await root.addEnv(env, TAG_A);
    envs.push(env);
  }
  console.log(`\n-- setup: ${N_ENVS} environments through pulser, ${SETUP_CONCURRENCY} at a time (not measured; load ${load1()})`);
  const bp = await benchPulser(root.dir, { evidence: false });
  const t0 = now();
  let snap = await bp.p.load();
  let recs = await mapLimit(envs, SETUP_CONCURRENCY, (e) => bp.p.engine.runPass(loadOf(snap.envs, e.name), { mode: 'apply', trigger: 'bench setup' }));
  for (let attempt = 1; attempt <= 2; attempt++) {
    const bad = recs.filter((r) => r.outcome !== 'applied' && r.outcome !== 'in-sync');
    if (bad.length === 0) break;
    info(`${bad.length} environment(s) not converged (first: ${failureText(bad[0]!)}); retrying them`);
    snap = await bp.p.load();
    recs = await mapLimit(bad, SETUP_CONCURRENCY, (r) => bp.p.engine.runPass(loadOf(snap.envs, r.env), { mode: 'apply', trigger: 'bench setup', fresh: true }));
  }
  const bad = recs.filter((r) => r.outcome !== 'applied' && r.outcome !== 'in-sync');
  if (bad.length) throw new Error(`setup: ${bad.length} environment(s) did not converge: ${bad.slice(0, 3).map(failureText).join(' | ')}`);
  info(`${N_ENVS} environments up in ${fmtMs(now() - t0)}`);
  await bp.p.close();
  return { root, envs };
}

// ------------------------------------------------------------------------------- P3 ---

function syncedCount(p: Pulser, names: readonly string[], outcome?: PassRecord['outcome']): number {
  let n = 0;
  for (const name of names) {
    const s = p.engine.status.get(name);
    if (s && s.inSync && (!outcome || s.lastPass.outcome === outcome)) n++;
  }
  return n;
}

async function p3(many: Many): Promise<{ result: SectionResult; pulser: BenchPulser }> {
  const names = many.envs.map((e) => e.name);
  console.log(`\n-- P3: no-op pass over ${N_ENVS} converged environments (load ${load1()})`);

  // Baseline: one raw listing of every container on the host.
  const rawClient = dockerClient();
  const listMs: number[] = [];
  let listed = 0;
  for (let i = 0; i < 5; i++) {
    const t0 = now();
    listed = (await rawClient.listContainers({ all: true })).length;
    listMs.push(now() - t0);
  }
  const rawList = median(listMs);
  info(`raw listContainers({ all: true }): ${listed} containers, median ${fmtMs(rawList)} of 5`);

  const bp = await benchPulser(many.root.dir, { evidence: true });
  const { p, counter } = bp;

  // A1: the daemon's start-up pass: spec load of every file, prune scan, one pass per environment.
  counter.reset();
  let cpu0 = process.cpuUsage();
  let t0 = now();
  await p.loop.start(false);
  await p.loop.idle();
  const startWall = now() - t0;
  const startCpu = cpuMs(cpu0);
  const startLists = counter.lists;
  const startSynced = syncedCount(p, names, 'in-sync');
  info(`loop start-up: ${fmtMs(startWall)}, ${startSynced}/${N_ENVS} in sync, ${startLists} listings`);

  // A2: every environment triggered through the loop (what an interval tick does), no spec load.
  counter.reset();
  cpu0 = process.cpuUsage();
  t0 = now();
  for (const name of names) p.loop.trigger(name, 'bench');
  await p.loop.idle();
  const loopWall = now() - t0;
  const loopCpu = cpuMs(cpu0);
  const loopLists = counter.lists;
  const loopCalls = counter.describe();
  const loopSynced = syncedCount(p, names, 'in-sync');
  info(`loop pass: ${fmtMs(loopWall)}, ${loopSynced}/${N_ENVS} in sync, ${loopLists} listings`);

  // B: the same passes without the loop, runPass under the loop's concurrency, evidence off.
  const quiet = await benchPulser(many.root.dir, { evidence: false });
  const snap = await quiet.p.load();
  quiet.counter.reset();
  cpu0 = process.cpuUsage();
  t0 = now();
  const recs = await mapLimit(names, LOOP_CONCURRENCY, (n) => quiet.p.engine.runPass(loadOf(snap.envs, n), { mode: 'apply', trigger: 'bench' }));
  const quietWall = now() - t0;
  const quietCpu = cpuMs(cpu0);
  const quietLists = quiet.counter.lists;
  const quietSynced = recs.filter((r) => r.outcome === 'in-sync').length;
  await quiet.p.close();

  // C: the loop pass again with a wider loop, to show how much of the wall is waiting on the disk.
  const wide = await benchPulser(many.root.dir, { evidence: true, concurrency: WIDE_CONCURRENCY });
  await wide.p.loop.start(false);
  await wide.p.loop.idle();
  cpu0 = process.cpuUsage();
  t0 = now();
  for (const name of names) wide.p.loop.trigger(name, 'bench');
  await wide.p.loop.idle();
  const wideWall = now() - t0;
  const wideCpu = cpuMs(cpu0);
  const wideSynced = syncedCount(wide.p, names, 'in-sync');
  await wide.p.close();

  const result: SectionResult = {
    id: 'P3',
    title: `no-op pass over ${N_ENVS} converged environments on one Docker host (through ReconcileLoop, concurrency ${LOOP_CONCURRENCY})`,
    lines: [
      ['wall', `${fmtMs(loopWall)} (every environment triggered through the loop; evidence packs written)`],
      ['CPU per environment', `${fmtMs(loopCpu / N_ENVS)} (process.cpuUsage delta ${fmtMs(loopCpu)} / ${N_ENVS})`],
      ['in sync', `${loopSynced}/${N_ENVS}`],
      ['listContainers calls', `${loopLists} for the pass (${N_ENVS} environments, 1 host)`],
      ['docker API calls', loopCalls || 'none'],
      ['start-up pass', `${fmtMs(startWall)} wall, ${fmtMs(startCpu / N_ENVS)} CPU/env, ${startLists} listings, ${startSynced}/${N_ENVS} in sync (loop.start: spec load of ${N_ENVS} files + prune scan + passes)`],
      [`concurrency ${WIDE_CONCURRENCY}`, `${fmtMs(wideWall)} wall, ${fmtMs(wideCpu / N_ENVS)} CPU/env, ${wideSynced}/${N_ENVS} in sync (the same loop pass with --concurrency ${WIDE_CONCURRENCY}; not the target figure)`],
      ['without evidence', `${fmtMs(quietWall)} wall, ${fmtMs(quietCpu / N_ENVS)} CPU/env, ${quietLists} listings, ${quietSynced}/${N_ENVS} in sync (runPass × ${N_ENVS}, ${LOOP_CONCURRENCY} at a time, no loop)`],
    ],
    baseline: `${fmtMs(rawList)} for one raw listContainers({ all: true }) of ${listed} containers`,
    ratio: loopWall / rawList,
    targets: [
      { label: 'wall', value: loopWall, limit: 1000, show: fmtMs },
      { label: 'CPU/env', value: loopCpu / N_ENVS, limit: 5, show: fmtMs },
    ],
    notes: [
      'ratio = wall of the whole pass / one raw listing (the floor if the host is listed once)',
      `evidence packs (6 files, atomic rename, plus retention) account for ${fmtMs((loopCpu - quietCpu) / N_ENVS)} CPU/env and ${fmtMs(loopWall - quietWall)} of the wall`,
    ],
  };
  return { result, pulser: bp };
}

// ------------------------------------------------------------------------------- P4 ---

async function waitConverged(p: Pulser, names: readonly string[], image: string, timeoutMs: number): Promise<number> {
  const deadline = now() + timeoutMs;
  const done = () => names.filter((n) => {
    const s = p.engine.status.get(n);
    const running = (s?.facts.containers as { running?: { image?: string } | null } | undefined)?.running;
    return s?.inSync === true && running?.image === image;
  }).length;
  while (done() < names.length && now() < deadline) await sleep(100);
  return done();
}

async function p4(docker: Docker, many: Many, bp: BenchPulser): Promise<SectionResult> {
  const changed = many.envs.slice(0, N_CHANGES);
  const names = changed.map((e) => e.name);
  // The baseline rolls the next N_CHANGES environments' containers by hand: containers of the
  // same shape (image, port binding, init) on the same host, nothing created just for it.
  const others = many.envs.slice(N_CHANGES, 2 * N_CHANGES);
  console.log(`\n-- P4: ${N_CHANGES} environments change image tag, ${LOOP_CONCURRENCY} rollouts at a time (load ${load1()})`);

  const listed = await docker.listContainers({ all: true, filters: { label: [LABEL.env] } });
  const idOf = new Map(listed.map((c) => [c.Labels[LABEL.env] ?? '', c.Id]));
  const handCounter = new ApiCounter();
  const hands = others.map((e) => {
    const client = dockerClient();
    handCounter.attach(client);
    const h = new HandRollout(client, e.name, e.port, 200);
    const id = idOf.get(e.name);
    if (!id) throw new Error(`P4: no container for ${e.name}`);
    h.adopt(id);
    return h;
  });
  // The baseline runs in two halves around pulser's run, so a change in the machine's load
  // during the section weighs on both sides alike.
  const half = Math.ceil(hands.length / 2);
  const meter = EngineCpuMeter.forTestEngines();
  const byHand = async (group: HandRollout[]) => {
    meter?.start(1000);
    const t = now();
    const runs = await mapLimit(group, LOOP_CONCURRENCY, (h) => h.rollout(TAG_B));
    const ms = now() - t;
    return { ms, runs, engineMs: meter ? meter.stop() : NaN };
  };
  const before = await byHand(hands.slice(0, half));
  info(`hand-written, first half: ${half} rollouts in ${fmtMs(before.ms)} (load ${load1()})`);

  const { p, counter } = bp;
  bp.logs.length = 0;
  for (const e of changed) await many.root.setTag(e.name, TAG_B);
  counter.reset();
  meter?.start(1000);
  const cpu0 = process.cpuUsage();
  const t0 = now();
  await p.loop.reload('bench');
  await p.loop.idle();
  // Failed passes are retried by the loop's timers: wait for those too.
  const converged = await waitConverged(p, names, `pulser-demo/odoo:${TAG_B}`, 300_000);
  const wall = now() - t0;
  const cpu = cpuMs(cpu0);
  const engineMs = meter ? meter.stop() : NaN;
  info(`pulser: ${converged}/${N_CHANGES} converged in ${fmtMs(wall)} (load ${load1()})`);
  const failed = names.filter((n) => p.engine.status.get(n)?.lastPass.outcome !== 'applied');
  const passMs = names.map((n) => p.engine.status.get(n)?.lastPass.durationMs ?? NaN).filter(Number.isFinite);

  const after = await byHand(hands.slice(half));
  info(`hand-written, second half: ${hands.length - half} rollouts in ${fmtMs(after.ms)} (load ${load1()})`);
  const base = before.ms + after.ms;
  const handRuns = [...before.runs, ...after.runs];

  const ratio = wall / base;
  return {
    id: 'P4',
    title: `${N_CHANGES} environments each change image tag, until all converged (ReconcileLoop.reload, concurrency ${LOOP_CONCURRENCY})`,
    lines: [
      ['wall', `${fmtMs(wall)} (${converged}/${N_CHANGES} converged)`],
      ['pass duration', `median ${fmtMs(median(passMs))} per environment`],
      ['CPU', `${fmtMs(cpu)} (${fmtMs(cpu / N_CHANGES)} per rollout)`],
      ['listContainers calls', `${counter.lists}`],
      ['docker API calls', counter.describe()],
      ['not applied at the end', failed.length ? `${failed.length} (${failed.slice(0, 5).join(', ')})` : 'none'],
      ['hand-written API calls', handCounter.describe()],
      ['engine CPU', `${fmtMs(engineMs / N_CHANGES)} per rollout through pulser, ${fmtMs((before.engineMs + after.engineMs) / hands.length)} by hand (dockerd, containerd, shims and the runc calls and container processes they reaped)`],
    ],
    baseline: `${fmtMs(base)} hand-written dockerode, ${N_CHANGES} rollouts of the same shape ${LOOP_CONCURRENCY} at a time, in two halves before and after pulser's run (${fmtMs(before.ms)} + ${fmtMs(after.ms)}; median ${fmtMs(median(handRuns.map((r) => r.totalMs)))} per rollout, ${median(handRuns.map((r) => r.probes))} probes)`,
    ratio,
    targets: [{ label: 'wall', value: wall, limit: 27_000, show: fmtMs }],
    notes: [
      ...failureLogs(bp.logs, 3).map((l) => `pulser warning: ${l}`),
      `engine CPU alone, spread over all ${cpus().length} cores, needs ${fmtMs((before.engineMs + after.engineMs) / hands.length * N_CHANGES / cpus().length)} for ${N_CHANGES} hand-written rollouts and ${fmtMs(engineMs / cpus().length)} for pulser's`,
      `the baseline rolls environments ${others[0]?.name}…${others.at(-1)?.name}, whose containers pulser made in the same shape; they are removed at the end`,
    ],
  };
}

// ------------------------------------------------------------------------------- P7 ---

interface DaemonRun {
  toSyncMs: number;
  synced: number;
  atSync: { rssKiB: number; hwmKiB: number };
  settled: { rssKiB: number; hwmKiB: number };
}

/** Starts `pulser reconcile --watch`, waits until /api/status shows every environment in sync, reads its memory. */
async function daemonMemory(many: Many, ports: PortRange, children: ChildProcess[], nodeArgs: readonly string[]): Promise<DaemonRun> {
  const port = await ports.take();
  const logFile = path.join(many.root.dir, `daemon-${port}.log`);
  const log = createWriteStream(logFile);
  const env: NodeJS.ProcessEnv = { ...process.env, ...BENCH_SECRETS };
  const t0 = now();
  const daemon = spawn(process.execPath, [...nodeArgs, 'bin/pulser.js', 'reconcile', '--watch', '--dir', many.root.dir, '--listen', `127.0.0.1:${port}`, '--log-level', 'warn'], {
    cwd: REPO,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(daemon);
  daemon.stdout?.pipe(log);
  daemon.stderr?.pipe(log);
  const url = `http://127.0.0.1:${port}/api/status`;
  let synced = 0;
  const deadline = now() + 180_000;
  while (now() < deadline && daemon.exitCode === null) {
    const envs = await statusOf(url);
    synced = envs ? envs.filter((e) => e.inSync).length : 0;
    if (envs && envs.length === N_ENVS && synced === N_ENVS) break;
    await sleep(250);
  }
  const toSyncMs = now() - t0;
  if (daemon.exitCode !== null || daemon.pid === undefined) {
    const tail = (await readFile(logFile, 'utf8').catch(() => '')).split('\n').slice(-10).join('\n');
    throw new Error(`P7: the daemon exited (${daemon.exitCode}):\n${tail}`);
  }
  const atSync = memoryOf(daemon.pid);
  await sleep(3000);
  const settled = memoryOf(daemon.pid);
  daemon.kill('SIGTERM');
  await waitExit(daemon, 30_000);
  log.end();
  return { toSyncMs, synced, atSync, settled };
}

/** The node flags pulser ships with (bin/pulser.js shebang, npm start, Dockerfile). */
const SHIPPED_NODE_ARGS = ['--max-semi-space-size=2'];

async function p7(many: Many, ports: PortRange, children: ChildProcess[]): Promise<SectionResult> {
  console.log(`\n-- P7: daemon memory with ${N_ENVS} environments in sync (load ${load1()})`);
  const run = await daemonMemory(many, ports, children, SHIPPED_NODE_ARGS);
  info(`daemon: ${run.synced}/${N_ENVS} in sync after ${fmtMs(run.toSyncMs)}, VmRSS ${fmtMiB(run.atSync.rssKiB)}`);
  const plain = await daemonMemory(many, ports, children, []);
  info(`daemon without ${SHIPPED_NODE_ARGS.join(' ')}: VmRSS ${fmtMiB(plain.atSync.rssKiB)}`);

  const idle = spawn(process.execPath, ['-e', 'setTimeout(()=>{},1e9)'], { cwd: REPO, stdio: 'ignore' });
  children.push(idle);
  await sleep(2000);
  const base = idle.pid === undefined ? { rssKiB: NaN, hwmKiB: NaN } : memoryOf(idle.pid);
  idle.kill('SIGTERM');
  await waitExit(idle, 5000);

  return {
    id: 'P7',
    title: `RSS of \`pulser reconcile --watch\` with ${N_ENVS} environments in sync`,
    lines: [
      ['VmRSS at in-sync', fmtMiB(run.atSync.rssKiB)],
      ['VmRSS 3 s later', fmtMiB(run.settled.rssKiB)],
      ['VmHWM (peak)', fmtMiB(run.settled.hwmKiB)],
      ['start to all in sync', `${fmtMs(run.toSyncMs)} (${run.synced}/${N_ENVS} in sync per /api/status)`],
      [`without ${SHIPPED_NODE_ARGS.join(' ')}`, `${fmtMiB(plain.atSync.rssKiB)} at in-sync, ${fmtMiB(plain.settled.hwmKiB)} peak, in sync after ${fmtMs(plain.toSyncMs)} (for comparison)`],
    ],
    baseline: `${fmtMiB(base.rssKiB)} VmRSS of \`node -e "setTimeout(()=>{},1e9)"\``,
    ratio: run.atSync.rssKiB / base.rssKiB,
    targets: [{ label: 'RSS', value: run.atSync.rssKiB / 1024, limit: 120, show: (v) => `${v.toFixed(1)} MiB` }],
    notes: [],
  };
}

// ------------------------------------------------------------------------------ main ---

async function main(): Promise<void> {
  setBenchSecrets();
  const docker = dockerClient();
  const roots: BenchRoot[] = [];
  const children: ChildProcess[] = [];
  const results: SectionResult[] = [];
  const started = now();
  let interrupted = false;

  const cleanup = async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    const removed = await removeBenchContainers(docker).catch((err: unknown) => {
      console.error(`cleanup: ${String(err)}`);
      return 0;
    });
    for (const r of roots) await r.remove();
    console.log(`\ncleanup: removed ${removed} bench container(s) and ${roots.length} temporary root(s)`);
  };
  process.once('SIGINT', () => {
    interrupted = true;
    void cleanup().finally(() => process.exit(130));
  });

  console.log(`pulser containers benchmarks — node ${process.version}, ${process.env.DOCKER_HOST ?? 'default docker socket'}, load ${load1()}`);
  await ensureDemoImages(docker, { tags: [`pulser-demo/odoo:${TAG_A}`, `pulser-demo/odoo:${TAG_B}`] });
  const leftovers = await removeBenchContainers(docker);
  if (leftovers) info(`removed ${leftovers} container(s) left by an earlier run`);
  const ports = new PortRange(21_000);

  try {
    if (only.has('P1')) {
      results.push(await p1(ports, roots));
      printSection(results.at(-1)!);
    }
    if (only.has('P3') || only.has('P4') || only.has('P7')) {
      const many = await setupMany(ports, roots);
      let bp: BenchPulser | null = null;
      if (only.has('P3')) {
        const r = await p3(many);
        bp = r.pulser;
        results.push(r.result);
        printSection(r.result);
      }
      // P7 before P4: the daemon needs every environment in sync, and P4's baseline leaves half
      // of them with hand-made containers. The P3 pulser stays idle meanwhile (no watch, 1 h interval).
      if (only.has('P7')) {
        results.push(await p7(many, ports, children));
        printSection(results.at(-1)!);
      }
      if (only.has('P4')) {
        if (!bp) {
          bp = await benchPulser(many.root.dir, { evidence: true });
          await bp.p.loop.start(false);
          await bp.p.loop.idle();
        }
        results.push(await p4(docker, many, bp));
        printSection(results.at(-1)!);
      }
      await bp?.p.close();
    }
  } catch (err) {
    console.error(`\nbench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exitCode = 1;
  } finally {
    if (!interrupted) await cleanup();
  }
  console.log(`\nsummary: ${summaryLine(results) || 'nothing measured'} — ${fmtMs(now() - started)} in all`);
}

await main();
