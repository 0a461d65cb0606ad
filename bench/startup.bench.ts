// Start-up of the command line as shipped (`node --max-semi-space-size=2 bin/pulser.js`, which runs
// the compiled dist/), each printed next to a baseline measured in the same run, runs interleaved:
//   C1  `pulser version`; baseline: `node -e 0` (target ≤ 3×)
//   C2  `pulser status --server URL` against a running daemon with 3 environments in sync;
//       baseline: `node -e` fetching the same /api/status and printing it (target ≤ 3×)
//
//   bash bench/run.sh --only C1,C2                     # C2 needs the test engines
//   node --import tsx bench/startup.bench.ts --only C1 # no engine needed
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ensureDemoImages } from '../src/demo/images.ts';
import {
  BENCH_SECRETS,
  BenchRoot,
  dockerClient,
  fmtMiB,
  fmtMs,
  load1,
  median,
  memoryOf,
  now,
  PortRange,
  printSection,
  removeBenchContainers,
  setBenchSecrets,
  sleep,
  statusOf,
  waitExit,
  summaryLine,
  type SectionResult,
} from './lib.ts';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BIN = path.join(REPO, 'bin', 'pulser.js');
/** The node flags pulser ships with (bin/pulser.js shebang, npm start, Dockerfile). */
const SHIPPED_NODE_ARGS = ['--max-semi-space-size=2'];
const RUNS = 30;
const WARMUP = 3;
const N_ENVS = 3;
const TARGET_RATIO = 3;

const { values: flags } = parseArgs({ strict: false, options: { only: { type: 'string', default: 'C1,C2' } } });
const only = new Set(String(flags.only).split(',').map((s) => s.trim().toUpperCase()));

interface Exit {
  ms: number;
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Wall time from spawn to exit of one process, with its output. */
function timed(args: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<Exit> {
  return new Promise((resolve, reject) => {
    const t0 = now();
    const child = spawn(process.execPath, args, { cwd: REPO, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.once('error', reject);
    child.once('close', (code) => resolve({ ms: now() - t0, code, stdout, stderr }));
  });
}

// Peak RSS of a short-lived process, reported by the process itself as it exits (measured in runs
// of their own: the preload is not part of the timed runs).
const PEAK_RSS_PRELOAD = `data:text/javascript,process.on('exit',()=>process.stderr.write('\\npeak-rss-kib '+process.resourceUsage().maxRSS+'\\n'))`;

async function peakRssKiB(args: readonly string[]): Promise<number> {
  const r = await timed(['--import', PEAK_RSS_PRELOAD, ...args]);
  return Number(/^peak-rss-kib (\d+)$/m.exec(r.stderr)?.[1] ?? NaN);
}

interface Pair {
  subject: number[];
  baseline: number[];
}

/** Runs the subject and the baseline in turn (warm-up first), so both see the same load. */
async function interleaved(subject: readonly string[], baseline: readonly string[], check: (e: Exit) => void, env?: NodeJS.ProcessEnv): Promise<Pair> {
  const out: Pair = { subject: [], baseline: [] };
  for (let i = 0; i < WARMUP + RUNS; i++) {
    const s = await timed(subject, env);
    check(s);
    const b = await timed(baseline, env);
    if (b.code !== 0) throw new Error(`baseline exited ${b.code}: ${b.stderr}`);
    if (i >= WARMUP) {
      out.subject.push(s.ms);
      out.baseline.push(b.ms);
    }
  }
  return out;
}

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!;
const spread = (xs: number[]) => `median ${fmtMs(median(xs))}, p90 ${fmtMs(pct(xs, 0.9))}, min ${fmtMs(Math.min(...xs))}`;

async function c1(): Promise<SectionResult> {
  console.log(`\n-- C1: pulser version, ${RUNS} runs against node -e 0 (load ${load1()})`);
  const pulser = [...SHIPPED_NODE_ARGS, BIN, 'version'];
  const node = ['-e', '0'];
  const r = await interleaved(pulser, node, (e) => {
    if (e.code !== 0 || !/^\d+\.\d+\.\d+/.test(e.stdout)) throw new Error(`pulser version: exit ${e.code}\n${e.stderr}`);
  });
  const [rssPulser, rssNode] = [await peakRssKiB(pulser), await peakRssKiB(node)];
  const ratio = median(r.subject) / median(r.baseline);
  return {
    id: 'C1',
    title: '`pulser version` start-up (spawn to exit)',
    lines: [
      ['pulser version', spread(r.subject)],
      ['node -e 0', spread(r.baseline)],
      ['peak RSS', `${fmtMiB(rssPulser)} pulser version, ${fmtMiB(rssNode)} node -e 0`],
    ],
    baseline: `${fmtMs(median(r.baseline))} median of \`node -e 0\`, run in turn with pulser`,
    ratio,
    targets: [{ label: 'ratio', value: ratio, limit: TARGET_RATIO, show: (v) => `${v.toFixed(2)}×` }],
    notes: [`pulser runs as shipped: node ${SHIPPED_NODE_ARGS.join(' ')} bin/pulser.js`],
  };
}

async function c2(ports: PortRange, children: ChildProcess[], roots: BenchRoot[]): Promise<SectionResult> {
  console.log(`\n-- C2: pulser status --server, ${RUNS} runs against a plain fetch of /api/status (load ${load1()})`);
  const docker = dockerClient();
  await ensureDemoImages(docker, { tags: ['pulser-demo/odoo:17.0.1'] });
  const root = await BenchRoot.create('startup');
  roots.push(root);
  for (let i = 0; i < N_ENVS; i++) await root.addEnv({ name: `bench-startup-${i}`, port: await ports.take() }, '17.0.1');
  const listen = await ports.take();
  const base = `http://127.0.0.1:${listen}`;
  const env: NodeJS.ProcessEnv = { ...process.env, ...BENCH_SECRETS };
  const daemon = spawn(process.execPath, [...SHIPPED_NODE_ARGS, BIN, 'reconcile', '--watch', '--dir', root.dir, '--listen', `127.0.0.1:${listen}`, '--mail-listen', 'off', '--log-level', 'warn'], {
    cwd: REPO,
    env,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  children.push(daemon);
  let daemonErr = '';
  daemon.stderr!.setEncoding('utf8').on('data', (d: string) => (daemonErr = (daemonErr + d).slice(-4000)));
  const deadline = now() + 120_000;
  for (;;) {
    if (daemon.exitCode !== null) throw new Error(`C2: the daemon exited (${daemon.exitCode}):\n${daemonErr}`);
    const envs = await statusOf(`${base}/api/status`);
    if (envs && envs.length === N_ENVS && envs.every((e) => e.inSync)) break;
    if (now() > deadline) throw new Error(`C2: ${N_ENVS} environments not in sync after 120 s:\n${daemonErr}`);
    await sleep(200);
  }
  const daemonRss = memoryOf(daemon.pid!);
  const idle = spawn(process.execPath, ['-e', 'setTimeout(()=>{},1e9)'], { stdio: 'ignore' });
  children.push(idle);
  await sleep(1000);
  const idleRss = memoryOf(idle.pid!);
  idle.kill('SIGTERM');

  try {
    const pulser = [...SHIPPED_NODE_ARGS, BIN, 'status', '--server', base];
    const plain = ['-e', `fetch(${JSON.stringify(`${base}/api/status`)}).then((r) => r.text()).then((t) => process.stdout.write(t))`];
    const r = await interleaved(
      pulser,
      plain,
      (e) => {
        if (e.code !== 0 || (e.stdout.match(/ in sync /g) ?? []).length !== N_ENVS) throw new Error(`pulser status --server: exit ${e.code}\n${e.stdout}\n${e.stderr}`);
      },
      env,
    );
    const ratio = median(r.subject) / median(r.baseline);
    return {
      id: 'C2',
      title: `\`pulser status --server URL\` against a daemon with ${N_ENVS} environments in sync (spawn to exit)`,
      lines: [
        ['pulser status --server', spread(r.subject)],
        ['plain fetch', spread(r.baseline)],
        ['peak RSS', `${fmtMiB(await peakRssKiB(pulser))} pulser status --server, ${fmtMiB(await peakRssKiB(plain))} plain fetch`],
        ['daemon VmRSS', `${fmtMiB(daemonRss.rssKiB)} in sync (${fmtMiB(idleRss.rssKiB)} an idle \`node -e "setTimeout(…)"\`)`],
      ],
      baseline: `${fmtMs(median(r.baseline))} median of \`node -e "fetch(URL/api/status)…"\`, run in turn with pulser`,
      ratio,
      targets: [{ label: 'ratio', value: ratio, limit: TARGET_RATIO, show: (v) => `${v.toFixed(2)}×` }],
      notes: ['both print what they fetched; pulser renders the status table'],
    };
  } finally {
    daemon.kill('SIGTERM');
    await waitExit(daemon, 30_000);
    await waitExit(idle, 5000);
  }
}

async function main(): Promise<void> {
  if (!['C1', 'C2'].some((id) => only.has(id))) return;
  const t0 = now();
  console.log(`pulser start-up benchmarks — node ${process.version}, load ${load1()}`);
  setBenchSecrets();
  const results: SectionResult[] = [];
  const children: ChildProcess[] = [];
  const roots: BenchRoot[] = [];
  try {
    if (only.has('C1')) {
      results.push(await c1());
      printSection(results.at(-1)!);
    }
    if (only.has('C2')) {
      results.push(await c2(new PortRange(24_000), children, roots));
      printSection(results.at(-1)!);
    }
  } catch (err) {
    console.error(`\nbench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exitCode = 1;
  } finally {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    if (roots.length) await removeBenchContainers(dockerClient()).catch(() => 0);
    for (const r of roots) await r.remove();
  }
  console.log(`\nsummary: ${summaryLine(results) || 'nothing measured'} — ${fmtMs(now() - t0)} in all`);
}

await main();
