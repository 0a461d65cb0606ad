// Real git repositories on disk for tests: a bare "remote" seeded with a GitOps tree, a second
// clone playing the people who push to it, and a fingerprint of everything the remote holds.
import { mkdtemp, mkdir, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { git } from '../../src/drivers/git.ts';
import { defaultDockerSocket } from '../../src/drivers/index.ts';

export class GitRemote {
  private constructor(
    readonly base: string,
    /** the bare repository pulser tracks */
    readonly bare: string,
    /** a clone where tests author commits as people would */
    readonly author: string,
    readonly branch: string,
  ) {}

  /** A bare repository whose `branch` holds `files` (path → content) in one commit. */
  static async create(files: Record<string, string>, branch = 'main'): Promise<GitRemote> {
    const base = await mkdtemp(path.join(tmpdir(), 'pulser-git-'));
    const bare = path.join(base, 'remote.git');
    const author = path.join(base, 'author');
    await git(['init', '--quiet', '--bare', `--initial-branch=${branch}`, bare], { cwd: base });
    await git(['init', '--quiet', `--initial-branch=${branch}`, author], { cwd: base });
    await git(['remote', 'add', 'origin', bare], { cwd: author });
    const r = new GitRemote(base, bare, author, branch);
    await r.commit(files, 'seed');
    return r;
  }

  /** Writes files in the author clone, commits and pushes them; returns the commit. */
  async commit(files: Record<string, string>, message: string, branch = this.branch): Promise<string> {
    const current = (await git(['symbolic-ref', '--short', 'HEAD'], { cwd: this.author })).trim();
    if (current !== branch) await git(['checkout', '--quiet', '-B', branch], { cwd: this.author });
    for (const [rel, text] of Object.entries(files)) {
      await mkdir(path.dirname(path.join(this.author, rel)), { recursive: true });
      await writeFile(path.join(this.author, rel), text);
    }
    await git(['add', '-A'], { cwd: this.author });
    await git(['commit', '--quiet', '--allow-empty', '-m', message], { cwd: this.author });
    await git(['push', '--quiet', 'origin', `HEAD:refs/heads/${branch}`], { cwd: this.author });
    return this.head(branch);
  }

  /** Brings the author clone up to date with the remote branch (after pulser pushed to it). */
  async pull(branch = this.branch): Promise<void> {
    await git(['fetch', '--quiet', 'origin'], { cwd: this.author });
    await git(['checkout', '--quiet', '-B', branch, `origin/${branch}`], { cwd: this.author });
  }

  async head(branch = this.branch): Promise<string> {
    return (await git(['rev-parse', `refs/heads/${branch}`], { cwd: this.bare })).trim();
  }

  async show(rev: string, file: string): Promise<string> {
    return git(['show', `${rev}:${file}`], { cwd: this.bare });
  }

  /** Contents of many `rev:path` objects in one git call. */
  async showMany(specs: string[]): Promise<string[]> {
    const out = Buffer.from(await git(['cat-file', '--batch'], { cwd: this.bare, input: specs.join('\n') + '\n' }), 'utf8');
    const texts: string[] = [];
    let at = 0;
    for (const spec of specs) {
      const nl = out.indexOf(0x0a, at);
      const headerLine = out.subarray(at, nl).toString();
      const size = Number(headerLine.split(' ')[2]);
      if (!Number.isInteger(size)) throw new Error(`${spec}: ${headerLine}`);
      texts.push(out.subarray(nl + 1, nl + 1 + size).toString('utf8'));
      at = nl + 1 + size + 1;
    }
    return texts;
  }

  /** Every ref with its target and every object id of the remote: equal fingerprints, same repository. */
  async fingerprint(): Promise<string> {
    const refs = await git(['for-each-ref', '--format=%(refname) %(objectname)'], { cwd: this.bare });
    const objects = await git(['cat-file', '--batch-all-objects', '--batch-check=%(objectname) %(objecttype) %(objectsize)'], { cwd: this.bare });
    const head = await git(['symbolic-ref', 'HEAD'], { cwd: this.bare });
    return `${head}\n${refs}\n${objects}`;
  }

  async log(branch = this.branch): Promise<string[]> {
    return (await git(['log', '--format=%H %s', branch], { cwd: this.bare })).trim().split('\n');
  }

  async cleanup(): Promise<void> {
    await rm(this.base, { recursive: true, force: true });
  }
}

/** A GitOps tree: hosts.yaml on the test Docker engine, an optional policy, kv files, environments. */
export function gitopsTree(o: { policy?: string; kv?: Record<string, string>; envs?: Record<string, string> } = {}): Record<string, string> {
  const files: Record<string, string> = {
    'environments/hosts.yaml': `hosts:\n  local:\n    kind: local\n    docker: { socket: ${defaultDockerSocket()} }\n`,
    'ops/kv/.keep': '',
  };
  if (o.policy !== undefined) files['ops/policy.yaml'] = o.policy;
  for (const [k, v] of Object.entries(o.kv ?? {})) files[`ops/kv/${k}.txt`] = v + '\n';
  for (const [n, y] of Object.entries(o.envs ?? {})) files[`environments/${n}.yaml`] = y;
  return files;
}

/** An environment file like test/helpers/world.ts writes, for the demo image with its tag in kv. */
export function envYaml(name: string, port: number): string {
  return [
    `name: ${name}`,
    'tier: staging',
    'host: local',
    'sync: { auto: true, interval: 1h }',
    'odoo:',
    `  image: pulser-demo/odoo:\${kv:${name}.image_tag}`,
    `  port: ${port}`,
    '  health: { path: /web/health, interval: 200ms, timeout: 1s, retries: 25 }',
    'database:',
    `  name: db_${name.replace(/-/g, '_')}`,
    '  host: host.docker.internal',
    '  user: odoo',
    '  password: ${secret:TEST_DB_PASSWORD}',
    '',
  ].join('\n');
}
