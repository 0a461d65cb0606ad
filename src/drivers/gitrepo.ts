// Addon repositories through the git CLI (argv only, every call with a timeout): a bare mirror per
// URL that observation fetches into (pulser's own cache, never the checkouts Odoo uses), reads of
// manifests and module trees at a commit without checking it out, and detached checkouts.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { PulserError } from '../errors.ts';

export interface GitOptions {
  cwd?: string;
  timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 60_000;

/** Runs git with an argv; a failure becomes PULSER_E_GIT with the command and stderr excerpt. */
export function git(args: string[], opts: GitOptions = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      'git',
      args,
      {
        cwd: opts.cwd,
        timeout: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS,
        maxBuffer: 64 << 20,
        env: { ...process.env, GIT_TERMINAL_PROMPT: '0', GIT_ASKPASS: 'true', LC_ALL: 'C' },
      },
      (err, stdout, stderr) => {
        if (!err) return resolve(stdout);
        const e = err as NodeJS.ErrnoException & { killed?: boolean; code?: string | number };
        const why = e.killed ? `timed out after ${(opts.timeoutMs ?? DEFAULT_TIMEOUT_MS) / 1000} s` : String(stderr).trim().split('\n').slice(-3).join(' | ') || e.message;
        reject(new PulserError('PULSER_E_GIT', `git ${args[0]} failed: ${why}`, { details: { argv: ['git', ...args.map(redactUrl)], exitCode: typeof e.code === 'number' ? e.code : null }, cause: err }));
      },
    );
  });
}

/** Credentials in a URL (`https://user:token@…`) never reach errors or evidence. */
export function redactUrl(s: string): string {
  return s.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/@\s]+@/i, '$1***@');
}

export function mirrorDir(root: string, url: string): string {
  return path.join(root, '.mirrors', `${createHash('sha256').update(url).digest('hex').slice(0, 16)}.git`);
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}

/** Brings the mirror of `url` up to date (branches and tags), creating it on first use. */
export async function fetchMirror(dir: string, url: string, timeoutMs?: number): Promise<void> {
  if (!(await exists(path.join(dir, 'HEAD')))) {
    await mkdir(dir, { recursive: true });
    await git(['init', '--quiet', '--bare', dir]);
  }
  await git(['-C', dir, 'fetch', '--quiet', '--prune', '--force', '--no-tags', url, '+refs/heads/*:refs/heads/*', '+refs/tags/*:refs/tags/*'], { timeoutMs });
}

/** The commit a branch, tag or commit id names in the mirror; PULSER_E_GIT_REF when none. */
export async function resolveRef(dir: string, ref: string, url: string): Promise<string> {
  for (const candidate of [`refs/heads/${ref}`, `refs/tags/${ref}`, ref]) {
    try {
      return (await git(['-C', dir, 'rev-parse', '--verify', '--quiet', `${candidate}^{commit}`])).trim();
    } catch {
      // try the next reading of the ref
    }
  }
  throw new PulserError('PULSER_E_GIT_REF', `ref ${ref} is no branch, tag or commit of ${redactUrl(url)}`);
}

export interface TreeEntry {
  name: string;
  type: 'tree' | 'blob';
  /** object id: for a folder, changes whenever anything inside it changes */
  oid: string;
}

export async function listTree(dir: string, commit: string): Promise<TreeEntry[]> {
  const out = await git(['-C', dir, 'ls-tree', '-z', commit]);
  return out
    .split('\0')
    .filter(Boolean)
    .map((line) => {
      const [meta, name] = line.split('\t') as [string, string];
      const [, type, oid] = meta.split(' ') as [string, 'tree' | 'blob', string];
      return { name, type, oid };
    });
}

/** Content of a file at a commit, or null when the commit has no such file. */
export async function readAt(dir: string, commit: string, file: string): Promise<string | null> {
  try {
    return await git(['-C', dir, 'cat-file', 'blob', `${commit}:${file}`]);
  } catch {
    return null;
  }
}

/** The commit checked out in a working folder (null when it is no checkout yet). */
export async function checkoutHead(dir: string): Promise<string | null> {
  if (!(await exists(path.join(dir, '.git')))) return null;
  try {
    return (await git(['-C', dir, 'rev-parse', 'HEAD'])).trim();
  } catch {
    return null;
  }
}

/** Puts `dir` at `commit` (detached), cloned from the mirror when new; local edits are discarded. */
export async function checkout(dir: string, mirror: string, commit: string, timeoutMs?: number): Promise<void> {
  if (!(await exists(path.join(dir, '.git')))) {
    await mkdir(path.dirname(dir), { recursive: true });
    await git(['clone', '--quiet', '--no-checkout', mirror, dir], { timeoutMs });
  } else {
    await git(['-C', dir, 'fetch', '--quiet', '--force', mirror, '+refs/heads/*:refs/remotes/origin/*', '+refs/tags/*:refs/tags/*'], { timeoutMs });
  }
  await git(['-C', dir, 'checkout', '--quiet', '--force', '--detach', commit], { timeoutMs });
  await git(['-C', dir, 'clean', '-ffdxq'], { timeoutMs });
}
