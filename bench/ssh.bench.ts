// S1: a no-op pass over 20 environments on 2 SSH hosts (network namespaces with their own sshd
// and dockerd, from test/harness/hosts.sh), with pulser's one persistent connection per host,
// next to the same pass where every call opens its own SSH connection (the baseline, measured in
// the same run). Not a test: nothing here asserts.
//
//   bash test/harness/with-engines.sh node --import tsx bench/ssh.bench.ts [--envs 20] [--runs 3]
import http from 'node:http';
import { parseArgs } from 'node:util';
import Docker from 'dockerode';
import { Engine } from '../src/core/engine.ts';
import { createLogger } from '../src/core/log.ts';
import { Metrics } from '../src/metrics.ts';
import { reconcilers } from '../reconcilers/index.ts';
import { createDrivers, DockerDriver, type Drivers, type RemoteHostSpec } from '../src/drivers/index.ts';
import { asSocketLike, SshConnection, type SshTarget } from '../src/drivers/ssh.ts';
import type { Host } from '../src/spec/types.gen.ts';
import { World, suffix } from '../test/helpers/world.ts';
import { RemoteHosts, KEY_SECRET } from '../test/helpers/remote-hosts.ts';
import { fmtMs, load1, mapLimit, median, now, printSection, summaryLine } from './lib.ts';

const { values } = parseArgs({ options: { envs: { type: 'string', default: '20' }, runs: { type: 'string', default: '3' } } });
const envCount = Number(values.envs);
const runs = Number(values.runs);

/** Drivers where every call makes (and closes) its own SSH connection. */
function connectionPerCallDrivers(hosts: Map<string, Host>): Drivers & { connects: () => number } {
  let connects = 0;
  const targetOf = (name: string): SshTarget => {
    const h = hosts.get(name) as RemoteHostSpec;
    return { host: name, address: h.address!, port: h.port ?? 22, user: h.user, hostKey: h.hostKey, privateKey: async () => process.env[KEY_SECRET]! };
  };
  const once = async <T>(name: string, fn: (c: SshConnection) => Promise<T>): Promise<T> => {
    const c = new SshConnection(targetOf(name));
    try {
      return await fn(c);
    } finally {
      connects += c.connects;
      await c.close();
    }
  };
  const dockers = new Map<string, DockerDriver>();
  const base = createDrivers(hosts);
  return {
    ...base,
    docker(name) {
      let d = dockers.get(name);
      if (!d) {
        const agent = new http.Agent({ keepAlive: false });
        const socket = (hosts.get(name) as RemoteHostSpec).docker!.socket!;
        (agent as unknown as { createConnection: unknown }).createConnection = (_o: unknown, cb: (e: Error | null, s?: unknown) => void) => {
          const c = new SshConnection(targetOf(name));
          c.streamLocal(socket).then(
            (ch) => {
              connects += c.connects;
              ch.on('close', () => void c.close());
              cb(null, asSocketLike(ch));
            },
            (e: Error) => cb(e),
          );
        };
        d = new DockerDriver(name, new Docker({ protocol: 'http', host: 'docker', port: 80, agent } as Docker.DockerOptions));
        dockers.set(name, d);
      }
      return d;
    },
    fsStats: (name, path) => once(name, (c) => c.statvfs(path)),
    readHostFile: (name, path) => once(name, (c) => c.readFile(path)),
    invalidate: (name) => dockers.get(name)?.invalidate(),
    async close() {
      dockers.clear();
      await base.close();
    },
    connects: () => connects,
  };
}

const hosts = await RemoteHosts.up('bench', 2, ['pulser-demo/odoo:17.0.1']);
const w = await World.create({ hostsYaml: hosts.hostsYaml() });
try {
  const names: string[] = [];
  for (let i = 0; i < envCount; i++) {
    const name = `s-${suffix()}`;
    names.push(name);
    await w.env(name, { host: i % 2 === 0 ? 'h1' : 'h2', port: 20000 + i, retries: 60 });
  }
  const p = w.start({ logLevel: 'error', dockerTimeoutMs: 120_000 });
  const t0 = now();
  const snap = await p.load();
  const loads = [...snap.envs.values()];
  // Converge first (a few at a time: every rollout copies an image layer on vfs).
  const converged = await mapLimit(loads, 4, (l) => p.engine.runPass(l, { mode: 'apply', trigger: 'bench', fresh: true }));
  const failed = converged.filter((r) => r.outcome !== 'applied');
  console.log(`converged ${converged.length - failed.length}/${converged.length} environments in ${fmtMs(now() - t0)}${failed.length ? `; failed: ${failed.map((r) => `${r.env} ${r.errors[0]?.code}`).join(', ')}` : ''}`);

  const persistent: number[] = [];
  const perCall: number[] = [];
  const baseline = connectionPerCallDrivers(snap.hosts);
  const baseEngine = new Engine({ reconcilers, drivers: () => baseline, evidence: null, metrics: new Metrics({ processMetrics: false }), log: createLogger({ level: 'error' }), secrets: () => snap.secretValues });
  let inSync = 0;
  let baseInSync = 0;
  for (let i = 0; i < runs; i++) {
    // One environment after the other, each observing its host afresh, as `pulser plan` does.
    let t = now();
    const recs = await mapLimit(loads, 1, (l) => p.engine.runPass(l, { mode: 'plan', trigger: 'bench', fresh: true }));
    persistent.push(now() - t);
    inSync = recs.filter((r) => r.outcome === 'in-sync').length;
    t = now();
    const base = await mapLimit(loads, 1, (l) => baseEngine.runPass(l, { mode: 'plan', trigger: 'bench', fresh: true }));
    perCall.push(now() - t);
    baseInSync = base.filter((r) => r.outcome === 'in-sync').length;
  }
  const a = median(persistent);
  const b = median(perCall);
  const r = {
    id: 'S1',
    title: `no-op pass over ${loads.length} environments on 2 SSH hosts (one after the other, fresh observation), median of ${runs}`,
    lines: [
      ['one connection per host', `${fmtMs(a)} (${inSync}/${loads.length} in sync; ${p.drivers().ssh('h1')!.connects + p.drivers().ssh('h2')!.connects} SSH connections in all)`],
      ['a connection per call', `${fmtMs(b)} (${baseInSync}/${loads.length} in sync; ${baseline.connects()} SSH connections)`],
      ['load average (1 min)', load1()],
    ] as [string, string][],
    baseline: `${fmtMs(b)} (the same passes, a new SSH connection for every call)`,
    ratio: a / b,
    targets: [{ label: 'persistent / per-call', value: a / b, limit: 1, show: (v: number) => `${v.toFixed(2)}×` }],
    notes: ['Docker listings and host facts are shared between environments of a host in both runs; only the transport differs'],
  };
  printSection(r);
  console.log(`\n${summaryLine([r])}`);
  await baseline.close();
} finally {
  await w.cleanup();
  await hosts.down();
}
