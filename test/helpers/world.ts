// A throwaway GitOps root on disk plus a pulser built on it, against the test Docker engine.
// Every environment name carries a random suffix, so test files can run in parallel.
import { mkdtemp, mkdir, writeFile, rm, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import Docker from 'dockerode';
import { createPulser, type Pulser, type PulserOptions } from '../../src/app.ts';
import { ensureDemoImages } from '../../src/demo/images.ts';
import { LABEL } from '../../src/drivers/docker.ts';
import { defaultDockerSocket } from '../../src/drivers/index.ts';
import { PulserError } from '../../src/errors.ts';
import type { DesiredEnv } from '../../src/spec/model.ts';

export function dockerClient(): Docker {
  return new Docker({ socketPath: defaultDockerSocket(), timeout: 60_000 });
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

export function suffix(): string {
  return randomBytes(3).toString('hex');
}

export interface EnvOptions {
  tier?: string;
  tag?: string;
  /** image reference; defaults to the stand-in image with the tag from kv */
  image?: string;
  port?: number;
  auto?: boolean;
  prune?: boolean;
  retries?: number;
  env?: Record<string, string>;
  extra?: string;
  /** host name in hosts.yaml (default `local`) */
  host?: string;
}

export class World {
  readonly logs: string[] = [];
  pulser: Pulser | null = null;
  private envNames = new Set<string>();

  constructor(
    readonly root: string,
    readonly docker: Docker,
  ) {}

  /** `hostsYaml` replaces the local-only hosts.yaml (and skips building images on the local engine). */
  static async create(opts: { hostsYaml?: string } = {}): Promise<World> {
    const root = await mkdtemp(path.join(tmpdir(), 'pulser-world-'));
    await mkdir(path.join(root, 'environments'), { recursive: true });
    await mkdir(path.join(root, 'ops', 'kv'), { recursive: true });
    const local = `hosts:\n  local:\n    kind: local\n    docker: { socket: ${defaultDockerSocket()} }\n`;
    await writeFile(path.join(root, 'environments', 'hosts.yaml'), opts.hostsYaml ?? local);
    const w = new World(root, dockerClient());
    if (!opts.hostsYaml) await ensureDemoImages(w.docker);
    return w;
  }

  async kv(key: string, value: string): Promise<void> {
    await writeFile(path.join(this.root, 'ops', 'kv', `${key}.txt`), value + '\n');
  }

  /** Writes environments/<name>.yaml; the image tag comes from ops/kv/<name>.image_tag. */
  async env(name: string, o: EnvOptions = {}): Promise<number> {
    const port = o.port ?? (await freePort());
    this.envNames.add(name);
    await this.kv(`${name}.image_tag`, o.tag ?? '17.0.1');
    const envLines = Object.entries(o.env ?? {}).map(([k, v]) => `    ${k}: ${JSON.stringify(v)}`);
    const yaml = [
      `name: ${name}`,
      `tier: ${o.tier ?? 'staging'}`,
      `host: ${o.host ?? 'local'}`,
      `sync: { auto: ${o.auto ?? true}, interval: 1h, prune: ${o.prune ?? false} }`,
      'odoo:',
      `  image: ${o.image ?? `pulser-demo/odoo:\${kv:${name}.image_tag}`}`,
      `  port: ${port}`,
      ...(envLines.length ? ['  env:', ...envLines] : []),
      `  health: { path: /web/health, interval: 200ms, timeout: 1s, retries: ${o.retries ?? 25} }`,
      'database:',
      `  name: db_${name.replace(/-/g, '_')}`,
      '  host: host.docker.internal',
      '  user: odoo',
      '  password: ${secret:TEST_DB_PASSWORD}',
      o.extra ?? '',
    ].join('\n');
    await writeFile(path.join(this.root, 'environments', `${name}.yaml`), yaml + '\n');
    return port;
  }

  async writeFile(rel: string, text: string): Promise<void> {
    await writeFile(path.join(this.root, rel), text);
  }

  async removeEnvFile(name: string): Promise<void> {
    await unlink(path.join(this.root, 'environments', `${name}.yaml`));
  }

  start(opts: Partial<PulserOptions> = {}): Pulser {
    process.env.TEST_DB_PASSWORD ??= 'test-db-password-1';
    this.pulser = createPulser({
      root: this.root,
      processMetrics: false,
      logJson: true,
      logLevel: 'debug',
      logWrite: (l) => this.logs.push(l),
      ...opts,
    });
    return this.pulser;
  }

  /** Runs one apply pass of every environment (or one) and returns the records. */
  async pass(env?: string, mode: 'plan' | 'apply' = 'apply') {
    const p = this.pulser ?? this.start();
    const snap = await p.load();
    const loads = [...snap.envs.values()].filter((l) => !env || l.name === env);
    return Promise.all(loads.map((l) => p.engine.runPass(l, { mode, trigger: 'test', fresh: true })));
  }

  /** The loaded (valid) desired state of one environment. */
  async desired(env: string): Promise<DesiredEnv> {
    const snap = await (this.pulser ?? this.start()).load();
    const l = snap.envs.get(env);
    if (!l?.ok) throw new Error(`${env} does not load: ${JSON.stringify(l)}`);
    return l.desired;
  }

  async containersOf(env: string) {
    return this.docker.listContainers({ all: true, filters: { label: [`${LABEL.env}=${env}`] } });
  }

  async cleanup(): Promise<void> {
    await this.pulser?.close();
    for (const env of this.envNames) {
      for (const c of await this.containersOf(env)) await this.docker.getContainer(c.Id).remove({ force: true }).catch(() => {});
    }
    await rm(this.root, { recursive: true, force: true });
  }
}

/** The code of the error `p` rejects with (`no error` when it resolves, `uncoded: …` for an uncoded one). */
export async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    return err instanceof PulserError ? err.code : `uncoded: ${String(err)}`;
  }
  return 'no error';
}

export async function httpGet(url: string): Promise<{ status: number; body: string } | null> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
    return { status: res.status, body: await res.text() };
  } catch {
    return null;
  }
}
