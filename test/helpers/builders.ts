// Builders for the pure tests of the containers reconciler: a DesiredEnv loaded through the real
// loader from YAML written into the test's directory, and the observed world as containers
// carrying exactly the labels createOptions() gives them, so no test repeats the label logic.
import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Test } from 'tap';
import { stringify } from 'yaml';
import { loadSpecs } from '../../src/spec/load.ts';
import { SecretSource } from '../../src/spec/secrets.ts';
import type { DesiredEnv } from '../../src/spec/model.ts';
import { LABEL, type ContainerSummary } from '../../src/drivers/docker.ts';
import type { ProbeResult } from '../../src/drivers/http.ts';
import { createOptions, designOdooContainer, ODOO_HTTP_PORT, type OdooContainerDesign } from '../../reconcilers/containers/design.ts';
import type { ContainersObserved } from '../../reconcilers/containers/plan.ts';

export const HOSTS_YAML = 'hosts:\n  local:\n    kind: local\n';
export const DEFAULT_DB_PASSWORD = 'db-secret-1';

type Scalar = string | number | boolean;

export interface DesiredEnvOptions {
  name?: string;
  tier?: 'production' | 'staging' | 'development' | 'preview';
  /** tag of `pulser-demo/odoo`; ignored when `image` is given */
  tag?: string;
  image?: string;
  port?: number;
  bind?: string;
  workers?: number;
  command?: string[];
  /** `odoo.env` as written in YAML: values may hold `${secret:NAME}` */
  env?: Record<string, string>;
  config?: Record<string, Scalar>;
  health?: { path?: string; interval?: string; timeout?: string; retries?: number };
  sync?: { auto?: boolean; interval?: string; prune?: boolean };
  /** `database` as written in YAML, merged over `{ name: odoo_<name>, host, user, password: ${secret:DB_PASSWORD} }` */
  database?: { name?: string; host?: string; address?: string; port?: number; user?: string; password?: string | null };
  /** values of `${secret:…}` references, merged over `{ DB_PASSWORD: DEFAULT_DB_PASSWORD }` */
  secrets?: Record<string, string>;
  /** files of `ops/kv/`, by key */
  kv?: Record<string, string>;
  /** `addons` and `mail` sections as written in YAML */
  addons?: Record<string, unknown>;
  mail?: Record<string, unknown>;
}

// One t.testdir() per test (a second call would wipe the first); each environment gets its own root.
const roots = new WeakMap<Test, { dir: string; count: number }>();

async function freshRoot(t: Test): Promise<string> {
  let r = roots.get(t);
  if (!r) {
    r = { dir: t.testdir(), count: 0 };
    roots.set(t, r);
  }
  const root = path.join(r.dir, `root-${++r.count}`);
  await mkdir(path.join(root, 'environments'), { recursive: true });
  await mkdir(path.join(root, 'ops', 'kv'), { recursive: true });
  return root;
}

function withoutUndefined<T extends Record<string, unknown>>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** The environment file `desiredEnv` writes for these options. */
function environmentYaml(o: DesiredEnvOptions = {}): string {
  const name = o.name ?? 'staging';
  const { password, ...db } = o.database ?? {};
  const spec = withoutUndefined({
    name,
    tier: o.tier ?? 'staging',
    host: 'local',
    sync: o.sync,
    odoo: withoutUndefined({
      image: o.image ?? `pulser-demo/odoo:${o.tag ?? '17.0.1'}`,
      workers: o.workers,
      command: o.command,
      config: o.config,
      env: o.env,
      port: o.port ?? 18070,
      bind: o.bind,
      health: o.health,
    }),
    database: withoutUndefined({
      name: `odoo_${name.replace(/-/g, '_')}`,
      host: 'host.docker.internal',
      user: 'odoo',
      ...db,
      password: password === null ? undefined : (password ?? '${secret:DB_PASSWORD}'),
    }),
    addons: o.addons,
    mail: o.mail,
  });
  return stringify(spec);
}

/** A DesiredEnv loaded through loadSpecs from a spec written for these options; throws when it is invalid. */
const GOLDEN_DIGEST_KEY = Buffer.alloc(32, 0x5e);

export async function desiredEnv(t: Test, o: DesiredEnvOptions = {}): Promise<DesiredEnv> {
  const name = o.name ?? 'staging';
  const root = await freshRoot(t);
  await writeFile(path.join(root, 'environments', 'hosts.yaml'), HOSTS_YAML);
  await writeFile(path.join(root, 'environments', `${name}.yaml`), environmentYaml(o));
  for (const [k, v] of Object.entries(o.kv ?? {})) await writeFile(path.join(root, 'ops', 'kv', `${k}.txt`), v + '\n');
  // A fixed installation key: golden designs show the same digests in every run.
  const secrets = new SecretSource({ env: { DB_PASSWORD: DEFAULT_DB_PASSWORD, ...o.secrets }, digestKey: GOLDEN_DIGEST_KEY });
  const snap = await loadSpecs(root, { secrets });
  const load = snap.envs.get(name);
  if (!load) throw new Error(`environment ${name} was not loaded`);
  if (!load.ok) throw new Error(`environment ${name} is invalid:\n${load.errors.map(String).join('\n')}`);
  return load.desired;
}

export interface ContainerOptions {
  /** the desired state or design the container was created from: gives name, image, labels, ports */
  from?: DesiredEnv | OdooContainerDesign;
  id?: string;
  name?: string;
  state?: string;
  status?: string;
  image?: string;
  imageId?: string;
  /** overrides the spec-hash label only */
  specHash?: string;
  /** seconds since epoch */
  created?: number;
  /** replaces every label (`{}` for a container pulser never created) */
  labels?: Record<string, string>;
  /** defaults to the design's port published when running, nothing otherwise (as `docker ps` shows) */
  ports?: ContainerSummary['ports'];
}

function designOf(from: DesiredEnv | OdooContainerDesign): OdooContainerDesign {
  return 'shown' in from ? from : designOdooContainer(from);
}

/** A full container id, stable for a given seed. */
export function containerId(seed: string | number): string {
  return createHash('sha256').update(`container-${seed}`).digest('hex');
}

const DEFAULT_STATUS: Record<string, string> = {
  running: 'Up 5 minutes',
  restarting: 'Restarting (1) 3 seconds ago',
  exited: 'Exited (137) 2 minutes ago',
  created: 'Created',
  paused: 'Up 5 minutes (Paused)',
  dead: 'Dead',
};

/** A container as DockerDriver.containers() reports it. */
export function container(o: ContainerOptions, seed: string | number = 1): ContainerSummary {
  const d = o.from ? designOf(o.from) : null;
  const state = o.state ?? 'running';
  const image = o.image ?? d?.image;
  const name = o.name ?? d?.name;
  if (image === undefined || name === undefined) throw new Error('container(): give `from`, or both `name` and `image`');
  const labels = o.labels ?? (d ? { ...(createOptions(d).Labels ?? {}) } : {});
  if (o.specHash !== undefined) labels[LABEL.specHash] = o.specHash;
  const running = state === 'running' || state === 'paused';
  const published = d && running ? [{ ip: d.bind, privatePort: ODOO_HTTP_PORT, publicPort: d.port, type: 'tcp' }] : [];
  return {
    id: o.id ?? containerId(seed),
    name,
    image,
    imageId: o.imageId ?? `sha256:${createHash('sha256').update(image).digest('hex')}`,
    state,
    status: o.status ?? DEFAULT_STATUS[state] ?? state,
    labels,
    created: o.created ?? 1_700_000_000,
    ports: o.ports ?? published,
  };
}

export class ObservedWorld {
  private readonly containers: ContainerSummary[] = [];
  private nameHolder: ContainerSummary | null = null;
  private probe: ProbeResult | null = null;

  constructor(private readonly host: string) {}

  /** Adds a container of this environment; later calls default to later creation times. */
  withContainer(o: ContainerOptions): this {
    const n = this.containers.length + 1;
    this.containers.push(container({ created: 1_700_000_000 + n * 60, ...o }, n));
    return this;
  }

  /** A container outside this environment's inventory that holds the wanted name. */
  withNameHolder(o: ContainerOptions): this {
    this.nameHolder = container(o, 'name-holder');
    return this;
  }

  /** The probe observe takes when a rollout was left unfinished. */
  withProbe(p: Partial<ProbeResult> & { ok: boolean }): this {
    this.probe = {
      url: 'http://127.0.0.1:18070/web/health',
      status: p.ok ? 200 : 503,
      body: p.ok ? '{"status": "pass"}' : 'Service Unavailable',
      error: null,
      durationMs: 12,
      ...p,
    };
    return this;
  }

  /** Containers newest first, as observe returns them. */
  build(): ContainersObserved {
    const containers = [...this.containers].sort((a, b) => b.created - a.created);
    return { host: this.host, containers, nameHolder: this.nameHolder, probe: this.probe };
  }
}

export function observedWorld(host = 'local'): ObservedWorld {
  return new ObservedWorld(host);
}
