// Odoo environments for tests: the stand-in Odoo image (built once, shared by every test file),
// environment files whose database lives in the test PostgreSQL, and local addon repositories.
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { ensureStandInImage, STANDIN_IMAGE } from '../../src/odoo/standin/image.ts';
import { dockerClient, freePort, type World } from './world.ts';

const run = promisify(execFile);

export const PG_PORT = Number(process.env.PGPORT ?? 55432);

export async function standInImage(): Promise<string> {
  return (await ensureStandInImage(dockerClient())).tag;
}

export async function sql<R = Record<string, unknown>>(database: string, text: string, params: unknown[] = []): Promise<R[]> {
  const c = new pg.Client({ host: '127.0.0.1', port: PG_PORT, user: 'postgres', database });
  await c.connect();
  try {
    return (await c.query(text, params)).rows as R[];
  } finally {
    await c.end();
  }
}

export async function dropDatabase(name: string): Promise<void> {
  await sql('postgres', `DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
}

export interface OdooEnvOptions {
  tier?: string;
  extra?: string[];
  config?: Record<string, string | number>;
}

/** Writes environments/<name>.yaml for the stand-in Odoo; returns its port and database name. */
export async function odooEnv(w: World, name: string, o: OdooEnvOptions = {}): Promise<{ port: number; db: string }> {
  const port = await freePort();
  const db = `db_${name.replace(/-/g, '_')}`;
  const config = Object.entries(o.config ?? {}).map(([k, v]) => `    ${k}: ${JSON.stringify(v)}`);
  const yaml = [
    `name: ${name}`,
    `tier: ${o.tier ?? 'staging'}`,
    'host: local',
    'sync: { auto: true, interval: 1h }',
    'odoo:',
    `  image: ${STANDIN_IMAGE}`,
    `  port: ${port}`,
    '  workers: 0',
    ...(config.length ? ['  config:', ...config] : []),
    '  health: { path: /web/health, interval: 200ms, timeout: 1s, retries: 50 }',
    'database:',
    `  name: ${db}`,
    '  host: host.docker.internal',
    `  port: ${PG_PORT}`,
    '  user: postgres',
    ...(o.extra ?? []),
  ].join('\n');
  await w.writeFile(`environments/${name}.yaml`, yaml + '\n');
  return { port, db };
}

/** A bare repository plus a working clone to edit, commit and push from. */
export class AddonRepoFixture {
  private constructor(
    readonly dir: string,
    readonly bare: string,
    readonly work: string,
  ) {}

  static async create(name: string): Promise<AddonRepoFixture> {
    const dir = await mkdtemp(path.join(tmpdir(), 'pulser-addons-'));
    const bare = path.join(dir, `${name}.git`);
    const work = path.join(dir, 'work');
    await run('git', ['init', '--quiet', '--bare', '--initial-branch=17.0', bare]);
    await run('git', ['init', '--quiet', '--initial-branch=17.0', work]);
    return new AddonRepoFixture(dir, bare, work);
  }

  get url(): string {
    return `file://${this.bare}`;
  }

  async write(rel: string, text: string): Promise<void> {
    const full = path.join(this.work, rel);
    await mkdir(path.dirname(full), { recursive: true });
    await writeFile(full, text);
  }

  async module(name: string, manifest: { version?: string; depends?: string[]; data?: string[] }, files: Record<string, string> = {}): Promise<void> {
    const m = [`{`, `    'name': '${name}',`];
    if (manifest.version) m.push(`    'version': '${manifest.version}',`);
    m.push(`    'depends': [${(manifest.depends ?? ['base']).map((d) => `'${d}'`).join(', ')}],`);
    m.push(`    'data': [${(manifest.data ?? []).map((d) => `'${d}'`).join(', ')}],`, `    'installable': True,`, '}');
    await this.write(`${name}/__manifest__.py`, m.join('\n') + '\n');
    await this.write(`${name}/__init__.py`, '');
    for (const [rel, text] of Object.entries(files)) await this.write(`${name}/${rel}`, text);
  }

  /** Commits everything and pushes the branch; returns the commit id. */
  async commit(message: string): Promise<string> {
    const g = (args: string[]) => run('git', ['-C', this.work, '-c', 'user.name=t', '-c', 'user.email=t@example.com', ...args]);
    await g(['add', '-A']);
    await g(['commit', '--quiet', '-m', message]);
    await g(['push', '--quiet', this.bare, 'HEAD:refs/heads/17.0']);
    return (await g(['rev-parse', 'HEAD'])).stdout.trim();
  }

  async cleanup(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}
