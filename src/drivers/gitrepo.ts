// Addon repositories through the git driver: a bare mirror per URL that observation fetches into
// (pulser's own cache, never the checkouts Odoo uses), reads of manifests and module trees at a
// commit without checking it out, and detached checkouts. A URL, ref or commit is always an
// operand (after `--end-of-options` or `--`, or checked to be a commit id), never an option.
import { createHash } from 'node:crypto';
import { mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { PulserError } from '../errors.ts';
import { checkRepoUrl, transportsFor, type RepoUrlPolicy } from '../spec/rules/repo-url.ts';
import { COMMIT_ID, git as runGit, stripCredentials, type GitTransport } from './git.ts';

const DEFAULT_TIMEOUT_MS = 60_000;
/** Reads of pulser's own mirror and checkouts: no transport at all. */
const OFFLINE: readonly GitTransport[] = [];

function git(args: string[], opts: { timeoutMs?: number; transports?: readonly GitTransport[] } = {}): Promise<string> {
  return runGit(args, { timeoutMs: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS, transports: opts.transports ?? OFFLINE });
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

/** A commit id as the plan carries it; anything else never reaches git checkout (which has no `--end-of-options`). */
function commitId(commit: string): string {
  if (!COMMIT_ID.test(commit)) throw new PulserError('PULSER_E_ARGUMENT_UNSAFE', `commit ${JSON.stringify(commit.slice(0, 80))} is not a full commit id`);
  return commit;
}

/** `git fetch` of every branch and tag of `url` into the mirror `dir`; the URL is an operand. */
export function mirrorFetchArgv(dir: string, url: string): string[] {
  return ['-C', dir, 'fetch', '--quiet', '--prune', '--force', '--no-tags', '--end-of-options', url, '+refs/heads/*:refs/heads/*', '+refs/tags/*:refs/tags/*'];
}

/**
 * Brings the mirror of `url` up to date (branches and tags), creating it on first use. The URL
 * is checked first (PULSER_E_REPO_URL: git never runs) and git may use only its transport.
 */
export async function fetchMirror(dir: string, url: string, policy: RepoUrlPolicy, timeoutMs?: number): Promise<void> {
  const transports = transportsFor(checkRepoUrl(url, policy));
  if (!(await exists(path.join(dir, 'HEAD')))) {
    await mkdir(dir, { recursive: true });
    await git(['init', '--quiet', '--bare', '--', dir]);
  }
  await git(mirrorFetchArgv(dir, url), { timeoutMs, transports });
}

/** The commit a branch, tag or commit id names in the mirror; PULSER_E_GIT_REF when none. */
export async function resolveRef(dir: string, ref: string, url: string): Promise<string> {
  for (const candidate of [`refs/heads/${ref}`, `refs/tags/${ref}`, ref]) {
    try {
      return (await git(['-C', dir, 'rev-parse', '--verify', '--quiet', '--end-of-options', `${candidate}^{commit}`])).trim();
    } catch {
      // try the next reading of the ref
    }
  }
  throw new PulserError('PULSER_E_GIT_REF', `ref ${ref} is no branch, tag or commit of ${stripCredentials(url)}`);
}

export interface TreeEntry {
  name: string;
  type: 'tree' | 'blob';
  /** object id: for a folder, changes whenever anything inside it changes */
  oid: string;
}

export async function listTree(dir: string, commit: string): Promise<TreeEntry[]> {
  const out = await git(['-C', dir, 'ls-tree', '-z', '--end-of-options', commit]);
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
    return await git(['-C', dir, 'cat-file', 'blob', '--end-of-options', `${commit}:${file}`]);
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
  const at = commitId(commit);
  const local = { timeoutMs, transports: ['file'] as const };
  if (!(await exists(path.join(dir, '.git')))) {
    await mkdir(path.dirname(dir), { recursive: true });
    await git(['clone', '--quiet', '--no-checkout', '--', mirror, dir], local);
  } else {
    await git(['-C', dir, 'fetch', '--quiet', '--force', '--end-of-options', mirror, '+refs/heads/*:refs/remotes/origin/*', '+refs/tags/*:refs/tags/*'], local);
  }
  await git(['-C', dir, 'checkout', '--quiet', '--force', '--detach', at], { timeoutMs });
  await git(['-C', dir, 'clean', '-ffdxq'], { timeoutMs });
}
