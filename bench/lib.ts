// Small helpers shared by the benchmarks: a throwaway GitOps root with many environments, a
// counter of Docker API calls, a concurrency limiter, timing and the printed result blocks.
import { mkdtemp, mkdir, writeFile, rm } from 'node:fs/promises';
import { readFileSync, readdirSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import net from 'node:net';
import type { ChildProcess } from 'node:child_process';
import type { EnvStatus } from '../src/core/status.ts';
import Docker from 'dockerode';
import { LABEL } from '../src/drivers/docker.ts';
import { defaultDockerSocket } from '../src/drivers/index.ts';

/** Every container the benchmarks create carries `io.pulser.env=bench-…`. */
export const ENV_PREFIX = 'bench-';

export function dockerClient(): Docker {
  return new Docker({ socketPath: defaultDockerSocket(), timeout: 120_000 });
}

// ------------------------------------------------------------------------------ ports ---

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/**
 * Hands out host ports from a fixed range below the kernel's ephemeral range, so they do not
 * collide with the random ports other test runs pick on the same machine.
 */
export class PortRange {
  private next: number;
  constructor(start: number) {
    this.next = start;
  }
  async take(): Promise<number> {
    for (;;) {
      const p = this.next++;
      if (p > 32_000) throw new Error('bench: ran out of host ports');
      if (await portFree(p)) return p;
    }
  }
}

// ------------------------------------------------------------------------ gitops root ---

export interface BenchEnv {
  name: string;
  port: number;
}

/** A GitOps root on disk: hosts.yaml for the test engine, one environment file per env. */
export class BenchRoot {
  private constructor(readonly dir: string) {}

  static async create(label: string): Promise<BenchRoot> {
    const dir = await mkdtemp(path.join(tmpdir(), `pulser-bench-${label}-`));
    await mkdir(path.join(dir, 'environments'), { recursive: true });
    await mkdir(path.join(dir, 'ops', 'kv'), { recursive: true });
    await writeFile(path.join(dir, 'environments', 'hosts.yaml'), `hosts:\n  local:\n    kind: local\n    docker: { socket: ${defaultDockerSocket()} }\n`);
    return new BenchRoot(dir);
  }

  async setTag(env: string, tag: string): Promise<void> {
    await writeFile(path.join(this.dir, 'ops', 'kv', `${env}.image_tag.txt`), tag + '\n');
  }

  /** The same environment shape the integration tests use, health probed every 200 ms. */
  async addEnv(env: BenchEnv, tag: string): Promise<void> {
    await this.setTag(env.name, tag);
    const yaml = [
      '# yaml-language-server: $schema=../schema/environment.schema.json',
      `name: ${env.name}`,
      'tier: staging',
      'host: local',
      'sync: { auto: true, interval: 1h, prune: false }',
      'odoo:',
      `  image: pulser-demo/odoo:\${kv:${env.name}.image_tag}`,
      `  port: ${env.port}`,
      '  health: { path: /web/health, interval: 200ms, timeout: 1s, retries: 50 }',
      'database:',
      `  name: db_${env.name.replace(/-/g, '_')}`,
      '  host: host.docker.internal',
      '  user: odoo',
      '  password: ${secret:BENCH_DB_PASSWORD}',
      '',
    ].join('\n');
    await writeFile(path.join(this.dir, 'environments', `${env.name}.yaml`), yaml);
  }

  async remove(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** The secrets the bench environments reference (`${secret:BENCH_DB_PASSWORD}`). */
export const BENCH_SECRETS: Record<string, string> = { BENCH_DB_PASSWORD: 'bench-db-password-1' };

export function setBenchSecrets(): void {
  for (const [k, v] of Object.entries(BENCH_SECRETS)) process.env[k] ??= v;
}

// ------------------------------------------------------------------- api call counter ---

/** Counts (and times) every Docker API request a dockerode client makes, by method and path shape. */
export class ApiCounter {
  private readonly counts = new Map<string, { n: number; ms: number }>();

  /** Wraps the client's modem: every container object made from the client shares it. */
  attach(client: Docker): void {
    const modem = client.modem;
    const dial = modem.dial.bind(modem);
    modem.dial = (options, callback) => {
      const key = this.keyOf(options.method ?? 'GET', options.path);
      const t0 = performance.now();
      return dial(options, (err, data) => {
        this.note(key, performance.now() - t0);
        callback?.(err, data);
      });
    };
  }

  private keyOf(method: string, rawPath: string): string {
    const shape = rawPath
      .replace(/\?.*$/, '')
      .replace(/^\/containers\/(?!json|create)[^/]+/, '/containers/:id')
      .replace(/^\/images\/(?!json|create).+?\/json$/, '/images/:ref/json');
    return `${method} ${shape}`;
  }

  private note(key: string, ms: number): void {
    const c = this.counts.get(key) ?? { n: 0, ms: 0 };
    c.n++;
    c.ms += ms;
    this.counts.set(key, c);
  }

  reset(): void {
    this.counts.clear();
  }

  get lists(): number {
    return this.counts.get('GET /containers/json')?.n ?? 0;
  }

  get total(): number {
    let n = 0;
    for (const v of this.counts.values()) n += v.n;
    return n;
  }

  /** `GET /containers/json ×3 (avg 12 ms), …`, most frequent first */
  describe(): string {
    return [...this.counts.entries()]
      .sort((a, b) => b[1].n - a[1].n)
      .map(([k, v]) => `${k} ×${v.n} (avg ${fmtMs(v.ms / v.n)})`)
      .join(', ');
  }
}

// ------------------------------------------------------------------------ concurrency ---

/** Runs fn over items with at most `limit` running at once; results in input order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

// ------------------------------------------------------------------------------ timing ---

export function now(): number {
  return performance.now();
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function sum(xs: readonly number[]): number {
  return xs.reduce((a, b) => a + b, 0);
}

/** CPU time (user + system) of this process in milliseconds since `since`. */
export function cpuMs(since: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(since);
  return (d.user + d.system) / 1000;
}

export function fmtMs(ms: number): string {
  if (!Number.isFinite(ms)) return 'n/a';
  return ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(ms < 10 ? 2 : 0)} ms`;
}

export function fmtMiB(kib: number): string {
  return `${(kib / 1024).toFixed(1)} MiB`;
}

export function load1(): string {
  return loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');
}

/** VmRSS and VmHWM (peak) of a process, in KiB. */
export function memoryOf(pid: number): { rssKiB: number; hwmKiB: number } {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN);
  return { rssKiB: field('VmRSS'), hwmKiB: field('VmHWM') };
}

// ------------------------------------------------------------------------------ report ---

export interface Target {
  /** what is compared with the limit, as printed */
  label: string;
  value: number;
  limit: number;
  show: (v: number) => string;
}

export interface SectionResult {
  id: string;
  title: string;
  lines: [string, string][];
  baseline: string;
  ratio: number | null;
  targets: Target[];
  notes: string[];
}

export function passed(t: Target): boolean {
  return Number.isFinite(t.value) && t.value <= t.limit;
}

export function printSection(r: SectionResult): void {
  const width = Math.max(...r.lines.map(([k]) => k.length), 'baseline'.length, 'ratio'.length, ...r.targets.map((t) => `target ${t.label}`.length));
  const row = (k: string, v: string) => console.log(`  ${k.padEnd(width)}  ${v}`);
  console.log('');
  console.log(`== ${r.id}: ${r.title}`);
  for (const [k, v] of r.lines) row(k, v);
  row('baseline', r.baseline);
  row('ratio', r.ratio === null ? 'n/a' : `${r.ratio.toFixed(r.ratio < 10 ? 3 : 1)}×`);
  for (const t of r.targets) row(`target ${t.label}`, `${t.show(t.value)} ≤ ${t.show(t.limit)}  ${passed(t) ? 'PASS' : 'MISS'}`);
  for (const n of r.notes) console.log(`  note: ${n}`);
}

export function summaryLine(results: SectionResult[]): string {
  return results
    .map((r) => `${r.id} ${r.targets.every(passed) ? 'PASS' : 'MISS'}${r.ratio === null ? '' : ` (${r.ratio.toFixed(2)}×)`}`)
    .join(', ');
}

// ----------------------------------------------------------------------------- cleanup ---

/** Removes every container labelled `io.pulser.env=bench-…` on the engine. */
export async function removeBenchContainers(docker: Docker): Promise<number> {
  const all = await docker.listContainers({ all: true, filters: { label: [LABEL.env] } });
  const mine = all.filter((c) => (c.Labels?.[LABEL.env] ?? '').startsWith(ENV_PREFIX));
  await mapLimit(mine, 8, (c) => docker.getContainer(c.Id).remove({ force: true, v: true }).catch(() => undefined));
  return mine.length;
}

// ------------------------------------------------------------------------- engine CPU ---

/**
 * CPU time of the Docker engine under test: dockerd, containerd and the per-container shims
 * (whose counters include the runc calls they waited for), found by their command line naming
 * the engine's root folder. Shims come and go with containers, so their counters are sampled
 * while a measurement runs; a process's last sample counts when it has gone.
 */
export class EngineCpuMeter {
  /** clock ticks are 1/100 s on Linux (getconf CLK_TCK) */
  private readonly msPerTick = 10;
  private readonly matches = new Map<number, boolean>();
  private readonly first = new Map<number, number>();
  private readonly last = new Map<number, number>();
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly marker: string) {}

  static forTestEngines(): EngineCpuMeter | null {
    const root = process.env.PULSER_TEST_ROOT;
    return root ? new EngineCpuMeter(`${root}/docker/`) : null;
  }

  private ours(pid: number): boolean {
    let m = this.matches.get(pid);
    if (m === undefined) {
      try {
        m = readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(this.marker);
      } catch {
        m = false;
      }
      this.matches.set(pid, m);
    }
    return m;
  }

  private sample(initial: boolean): void {
    for (const name of readdirSync('/proc')) {
      const pid = Number(name);
      if (!Number.isInteger(pid) || !this.ours(pid)) continue;
      let ticks: number;
      try {
        // Fields after the command name: utime, stime, cutime, cstime are the 12th–15th.
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        ticks = Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
      } catch {
        continue;
      }
      if (!this.first.has(pid)) this.first.set(pid, initial ? ticks : 0);
      this.last.set(pid, ticks);
    }
  }

  start(intervalMs = 250): void {
    this.first.clear();
    this.last.clear();
    this.sample(true);
    this.timer = setInterval(() => this.sample(false), intervalMs);
  }

  /** Engine CPU in ms since start(). */
  stop(): number {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.sample(false);
    let ticks = 0;
    for (const [pid, last] of this.last) ticks += last - (this.first.get(pid) ?? 0);
    return ticks * this.msPerTick;
  }
}

/** Waits for a child to exit, killing it after `timeoutMs`. */
export function waitExit(child: ChildProcess, timeoutMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      resolve();
    }, timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** The environments of a daemon's /api/status, or null while it does not answer. */
export async function statusOf(url: string): Promise<EnvStatus[] | null> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
    if (!res.ok) return null;
    return ((await res.json()) as { environments: EnvStatus[] }).environments;
  } catch {
    return null;
  }
}
