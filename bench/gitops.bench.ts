// GitOps intake benchmarks, each printed next to a baseline measured in the same run:
//   P2  kv dispatch → apply started (target ≤ 1 s); baseline: a bare `git commit` + fs event
//   P6  signed GitHub webhooks at 200 req/s from autocannon on loopback (p99 ≤ 50 ms, 0 lost);
//       baseline: an unsigned no-op fastify route at the same rate
//
//   node --import tsx bench/gitops.bench.ts [--only P2,P6] [--rounds 10] [--seconds 10]
import { createRequire } from 'node:module';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { watch } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import Fastify from 'fastify';
import { createPulser, type Pulser } from '../src/app.ts';
import { signBody } from '../src/gitops/signature.ts';
import { git } from '../src/drivers/git.ts';
import { ensureDemoImages } from '../src/demo/images.ts';
import { GitRemote, gitopsTree, envYaml } from '../test/helpers/gitrepo.ts';
import { dockerClient, fmtMs, load1, median, now, PortRange, printSection, removeBenchContainers, setBenchSecrets, summaryLine, type SectionResult } from './lib.ts';

interface CannonResult {
  latency: { p50: number; p99: number; max: number };
  requests: { total: number; average: number };
  non2xx: number;
  errors: number;
  timeouts: number;
  '2xx': number;
}
interface CannonRequest {
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: string;
  setupRequest?: (req: CannonRequest) => CannonRequest;
}
type Cannon = (opts: { url: string; connections: number; overallRate: number; duration: number; requests: CannonRequest[] }) => Promise<CannonResult>;
const autocannon = createRequire(import.meta.url)('autocannon') as Cannon;

const { values: flags } = parseArgs({
  options: { only: { type: 'string', default: 'P2,P6' }, rounds: { type: 'string', default: '10' }, seconds: { type: 'string', default: '10' } },
  strict: false,
});
const only = new Set(String(flags.only).split(',').map((s) => s.trim().toUpperCase()));
const ROUNDS = Number(flags.rounds);
const SECONDS = Number(flags.seconds);
const RATE = 200;

/** Baseline of P2: write a kv file, `git commit` it, and wait for the fs event of the write. */
async function bareCommitAndEvent(dir: string, i: number): Promise<number> {
  const file = path.join(dir, 'ops', 'kv', 'base.txt');
  const t0 = now();
  const seen = new Promise<void>((resolve) => {
    const w = watch(path.dirname(file), () => {
      w.close();
      resolve();
    });
  });
  await writeFile(file, `v${i}\n`);
  await git(['add', '--', file], { cwd: dir });
  await git(['commit', '--quiet', '-m', `base ${i}`], { cwd: dir });
  await seen;
  return now() - t0;
}

async function p2(ports: PortRange): Promise<SectionResult> {
  setBenchSecrets();
  process.env.TEST_DB_PASSWORD ??= 'bench-db-password-1';
  const docker = dockerClient();
  await ensureDemoImages(docker);
  const name = `bench-p2-${process.pid}`;
  const remote = await GitRemote.create(gitopsTree({ policy: 'kv:\n  direct: ["bench-*"]\n', kv: { [`${name}.image_tag`]: '17.0.1' }, envs: { [name]: envYaml(name, await ports.take()) } }));
  const state = await mkdtemp(path.join(tmpdir(), 'pulser-bench-p2-'));
  process.env.PULSER_DISPATCH_SECRET = 'bench-dispatch-secret';
  const p: Pulser = createPulser({ root: path.join(state, 'repo'), processMetrics: false, logWrite: () => undefined, logLevel: 'error', git: { url: remote.bare, branch: 'main', pollIntervalMs: 3_600_000 } });
  const app = p.server();
  const started: number[] = [];
  // Told by the engine when a pass starts applying: the end point of P2.
  const deployments = p.gitops!.deployments;
  const applyStarted = deployments.applyStarted.bind(deployments);
  deployments.applyStarted = (rec) => {
    started.push(now());
    applyStarted(rec);
  };
  const samples: number[] = [];
  const answered: number[] = [];
  const base: number[] = [];
  try {
    await p.start(false);
    await p.loop.idle();
    for (let i = 0; i < ROUNDS; i++) {
      const body = JSON.stringify({ branch: 'main', message: `bench ${i}`, kv_key: `${name}.image_tag`, kv_value: i % 2 === 0 ? '17.0.2' : '17.0.1' });
      const before = started.length;
      const t0 = now();
      const res = await app.inject({ method: 'POST', url: '/pulser/git-ops', payload: body, headers: { 'content-type': 'application/json', 'x-pulser-signature': signBody('bench-dispatch-secret', body), 'x-pulser-delivery': `p2-${i}` } });
      if (res.statusCode !== 200) throw new Error(`dispatch answered ${res.statusCode}: ${res.body}`);
      answered.push(now() - t0);
      while (started.length === before) await new Promise((r) => setTimeout(r, 2));
      samples.push(started[before]! - t0);
      await p.loop.idle();
    }
    await remote.pull();
    for (let i = 0; i < ROUNDS; i++) base.push(await bareCommitAndEvent(remote.author, i));
  } finally {
    await app.close();
    await p.close();
    await removeBenchContainers(docker);
    await remote.cleanup();
    await rm(state, { recursive: true, force: true });
  }
  const m = median(samples);
  const b = median(base);
  return {
    id: 'P2',
    title: `kv dispatch → apply started (${ROUNDS} rounds, real engine)`,
    lines: [
      ['median', fmtMs(m)],
      ['max', fmtMs(Math.max(...samples))],
      ['answered', `${fmtMs(median(answered))} median (commit pushed)`],
    ],
    baseline: `${fmtMs(b)} (bare git commit + fs event, median)`,
    ratio: m / b,
    targets: [{ label: 'median', value: m, limit: 1000, show: fmtMs }],
    notes: ['includes HMAC check, fast-import commit, push to a local bare repository, fast-forward, spec reload, observe and plan'],
  };
}

async function p6(ports: PortRange): Promise<SectionResult> {
  const remote = await GitRemote.create(gitopsTree());
  const state = await mkdtemp(path.join(tmpdir(), 'pulser-bench-p6-'));
  process.env.PULSER_GITHUB_WEBHOOK_SECRET = 'bench-hook-secret';
  const p = createPulser({ root: path.join(state, 'repo'), processMetrics: false, logWrite: () => undefined, logLevel: 'error', git: { url: remote.bare, branch: 'main', pollIntervalMs: 3_600_000 } });
  const app = p.server();
  const plain = Fastify({ logger: false });
  plain.post('/noop', async () => ({ ok: true }));
  const [port, plainPort] = [await ports.take(), await ports.take()];
  // A push to another branch: authenticated, parsed and answered, with nothing to fetch.
  const payload = JSON.stringify({ ref: 'refs/heads/elsewhere', after: '0'.repeat(40) });
  const sig = signBody('bench-hook-secret', payload);
  let n = 0;
  try {
    await p.start(false);
    await app.listen({ host: '127.0.0.1', port });
    await plain.listen({ host: '127.0.0.1', port: plainPort });
    const run = (url: string, req: CannonRequest) => autocannon({ url, connections: 20, overallRate: RATE, duration: SECONDS, requests: [req] });
    const baseline = await run(`http://127.0.0.1:${plainPort}`, { method: 'POST', path: '/noop', headers: { 'content-type': 'application/json' }, body: payload });
    const hooks = await run(`http://127.0.0.1:${port}`, {
      method: 'POST',
      path: '/hooks/github',
      body: payload,
      setupRequest: (req) => ({ ...req, headers: { 'content-type': 'application/json', 'x-github-event': 'push', 'x-github-delivery': `p6-${++n}`, 'x-hub-signature-256': sig } }),
    });
    const metrics = await p.metrics.registry.metrics();
    const accepted = Number(/pulser_webhook_requests_total\{source="github",outcome="accepted"\} (\d+)/.exec(metrics)?.[1] ?? 0);
    const lost = hooks.non2xx + hooks.errors + hooks.timeouts + Math.max(0, hooks['2xx'] - accepted);
    return {
      id: 'P6',
      title: `signed GitHub webhooks at ${RATE} req/s for ${SECONDS} s (autocannon, loopback)`,
      lines: [
        ['sent', String(hooks.requests.total)],
        ['accepted', String(accepted)],
        ['p50', `${hooks.latency.p50} ms`],
        ['p99', `${hooks.latency.p99} ms`],
        ['max', `${hooks.latency.max} ms`],
      ],
      baseline: `p99 ${baseline.latency.p99} ms, p50 ${baseline.latency.p50} ms (unsigned no-op fastify route, same rate)`,
      ratio: hooks.latency.p99 / Math.max(1, baseline.latency.p99),
      targets: [
        { label: 'p99', value: hooks.latency.p99, limit: 50, show: (v) => `${v} ms` },
        { label: 'lost', value: lost, limit: 0, show: String },
      ],
      notes: ['latencies are autocannon\'s, corrected for coordinated omission; ratio is p99 over the baseline p99 (at least 1 ms)'],
    };
  } finally {
    await plain.close();
    await app.close();
    await p.close();
    await remote.cleanup();
    await rm(state, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  if (!['P2', 'P6'].some((id) => only.has(id))) return;
  const t0 = now();
  console.log(`pulser gitops benchmarks — node ${process.version}, load ${load1()}`);
  const ports = new PortRange(23_000);
  const results: SectionResult[] = [];
  try {
    if (only.has('P2')) {
      results.push(await p2(ports));
      printSection(results.at(-1)!);
    }
    if (only.has('P6')) {
      results.push(await p6(ports));
      printSection(results.at(-1)!);
    }
  } catch (err) {
    console.error(`\nbench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exitCode = 1;
  }
  console.log(`\nsummary: ${summaryLine(results) || 'nothing measured'} — ${fmtMs(now() - t0)} in all`);
}

await main();
