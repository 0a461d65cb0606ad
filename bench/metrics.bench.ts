// M1: GET /metrics with 200 monitored environments. The monitor really runs: it probes 200
// local health servers (one in four failing), so every monitoring series exists as in
// production. Baseline in the same run: the same registry with only the reconcile series of
// those 200 environments (what /metrics held before monitoring) — the ratio is the cost of
// monitoring on a scrape.
//
//   node --import tsx bench/metrics.bench.ts [--envs 200] [--scrapes 50]
import http from 'node:http';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createPulser, type Pulser } from '../src/app.ts';
import { Metrics } from '../src/metrics.ts';
import { buildServer } from '../src/server.ts';
import { StatusBoard } from '../src/core/status.ts';
import { cpuMs, median, printSection, summaryLine, fmtMs, load1, now, type SectionResult } from './lib.ts';

const { values } = parseArgs({ options: { envs: { type: 'string', default: '200' }, scrapes: { type: 'string', default: '100' } } });
const N = Number(values.envs);
const SCRAPES = Number(values.scrapes);

function fillReconcileSeries(m: Metrics, envs: string[]): void {
  for (const env of envs) {
    m.reconcileDuration.observe({ env, outcome: 'in-sync' }, 0.05);
    m.reconcileTotal.inc({ env, outcome: 'in-sync' });
    m.drift.set({ env, reconciler: 'containers' }, 0);
    m.inSync.set({ env }, 1);
    m.specValid.set({ env }, 1);
    m.lastPass.set({ env }, Date.now() / 1000);
  }
}

type App = ReturnType<typeof buildServer>;

/** Scrapes both apps in turn, so that both medians see the same load on a shared machine. */
async function scrapeInTurn(a: App, b: App): Promise<{ ms: number; bytes: number; series: number }[]> {
  const urls: string[] = [];
  for (const app of [a, b]) urls.push(`${await app.listen({ host: '127.0.0.1', port: 0 })}/metrics`);
  const get = async (url: string) => (await fetch(url, { signal: AbortSignal.timeout(10_000) })).text();
  for (let i = 0; i < 5; i++) for (const url of urls) await get(url);
  const times: number[][] = [[], []];
  const bodies = ['', ''];
  for (let i = 0; i < SCRAPES; i++) {
    for (const [j, url] of urls.entries()) {
      const t0 = now();
      bodies[j] = await get(url);
      times[j]!.push(now() - t0);
    }
  }
  await Promise.all([a.close(), b.close()]);
  return bodies.map((body, j) => ({ ms: median(times[j]!), bytes: Buffer.byteLength(body), series: body.split('\n').filter((l) => l && !l.startsWith('#')).length }));
}

const root = await mkdtemp(path.join(tmpdir(), 'pulser-bench-metrics-'));
const servers: http.Server[] = [];
let pulser: Pulser | null = null;
try {
  await mkdir(path.join(root, 'environments'), { recursive: true });
  await mkdir(path.join(root, 'ops', 'kv'), { recursive: true });
  await writeFile(path.join(root, 'environments', 'hosts.yaml'), 'hosts:\n  local:\n    kind: local\n');
  const envs: string[] = [];
  for (let i = 0; i < N; i++) {
    const failing = i % 4 === 0;
    const srv = http.createServer((_req, res) => res.writeHead(failing ? 503 : 200).end());
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    servers.push(srv);
    const port = (srv.address() as { port: number }).port;
    const env = `bench-m${i}`;
    envs.push(env);
    await writeFile(
      path.join(root, 'environments', `${env}.yaml`),
      `name: ${env}\ntier: staging\nhost: local\nodoo: { image: "odoo:17.0", port: ${port}, health: { timeout: 2s } }\ndatabase: { name: db_${i}, host: h, user: u }\nalerts: { probe_interval: 500ms }\n`,
    );
  }

  const baseMetrics = new Metrics();
  fillReconcileSeries(baseMetrics, envs);

  pulser = createPulser({ root, evidenceDir: null, stateDir: path.join(root, '.pulser'), logWrite: () => {}, monitor: { logPollMs: 3_600_000, kpiPollMs: 3_600_000 } });
  await pulser.load();
  fillReconcileSeries(pulser.metrics, envs);
  await pulser.monitor.start();
  // Several probes per environment, so histograms, ratios and alert series all exist.
  await new Promise((r) => setTimeout(r, 3000));
  await pulser.monitor.stop();
  const [baseline, full] = await scrapeInTurn(buildServer({ metrics: baseMetrics, status: new StatusBoard(), evidence: null }), pulser.server());
  const handler: number[] = [];
  const monitoring: number[] = [];
  // CPU time is what the machine's other work inflates least: the build alone, on this thread.
  const cpuStart = process.cpuUsage();
  for (let i = 0; i < SCRAPES; i++) await pulser.metrics.exposition();
  const cpuPerBuild = cpuMs(cpuStart) / SCRAPES;
  for (let i = 0; i < SCRAPES; i++) {
    const t0 = now();
    await pulser.metrics.exposition();
    handler.push(now() - t0);
    const t1 = now();
    pulser.metrics.monitoringText();
    monitoring.push(now() - t1);
  }

  const result: SectionResult = {
    id: 'M1',
    title: `GET /metrics with ${N} monitored environments (median of ${SCRAPES} scrapes)`,
    lines: [
      ['scrape', fmtMs(full.ms)],
      ['size', `${(full.bytes / 1024).toFixed(0)} KiB, ${full.series} series`],
      ['server side', `${fmtMs(median(handler))} to build the text (${fmtMs(cpuPerBuild)} CPU), of which ${fmtMs(median(monitoring))} for the ${N} environments' monitoring series`],
      ['baseline size', `${(baseline.bytes / 1024).toFixed(0)} KiB, ${baseline.series} series`],
      ['load (1 min)', load1()],
    ],
    baseline: `${fmtMs(baseline.ms)} (same registry, reconcile series only)`,
    ratio: full.ms / baseline.ms,
    targets: [{ label: 'scrape', value: full.ms, limit: 25, show: fmtMs }],
    notes: ['over HTTP on loopback (fetch), as a scraper sees it; both registries scraped in turn so that both medians share the load of the machine'],
  };
  printSection(result);
  console.log(`\nsummary: ${summaryLine([result])}`);
} finally {
  await pulser?.close();
  for (const s of servers) s.close();
  await rm(root, { recursive: true, force: true });
}
