// pulser's own working clone of the GitOps repository: follows one branch fast-forward only, and
// writes kv commits with plumbing (a private index, never the working tree) pushed without force.
// Every git operation on one repository goes through one queue, so none overwrites another.
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { COMMIT_ID, git, stripCredentials, PULSER_IDENTITY } from '../drivers/git.ts';
import { PulserError } from '../errors.ts';
import { KV_DIR, KV_FILE_SUFFIX } from '../spec/kv.ts';

export interface SyncResult {
  commit: string;
  previous: string | null;
  changed: boolean;
}

export interface KvEdit {
  key: string;
  value: string;
  message: string;
}

/** Branch names a dispatch may ask for: what `git check-ref-format --branch` accepts, made stricter. */
const BRANCH = /^[A-Za-z0-9._\-/]{1,200}$/;

/** Why `name` cannot be a branch pulser writes to, or null. */
export function branchProblem(name: unknown): string | null {
  if (typeof name !== 'string' || name === '') return 'is empty';
  if (!BRANCH.test(name)) return 'may only contain A-Z a-z 0-9 . _ - / and be at most 200 characters';
  if (name.startsWith('-') || name.startsWith('/') || name.endsWith('/') || name.endsWith('.')) return 'must not start with "-" or "/" nor end with "/" or "."';
  if (name.includes('..') || name.includes('//') || name.includes('/.') || name.endsWith('.lock') || name === 'HEAD') return 'is not a valid branch name';
  return null;
}

/** A full commit id, as git and GitHub give it. */
export const SHA = COMMIT_ID;
const IMPORT_REF = 'refs/pulser/import';
export const PUSH_TIMEOUT_MS = 5_000;

export class GitOpsRepo {
  private tail: Promise<unknown> = Promise.resolve();
  private head: string | null = null;
  /** remote tips as last fetched or pushed, so a dispatch needs no git call to find its parent */
  private readonly tips = new Map<string, string>();
  private readonly listeners = new Set<(r: SyncResult) => void>();

  constructor(
    readonly url: string,
    readonly branch: string,
    /** the working clone, owned by pulser */
    readonly dir: string,
    private readonly timeoutMs = 30_000,
  ) {
    const why = branchProblem(branch);
    if (why) throw new PulserError('PULSER_E_USAGE', `tracked branch "${branch}" ${why}`);
  }

  /** The commit the working tree is at (after the last successful sync). */
  get commit(): string | null {
    return this.head;
  }

  /** Called whenever the working tree moved to a new commit (a sync, or a commit pulser pushed). */
  onAdvance(fn: (r: SyncResult) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Remote URL without credentials, for messages and evidence. */
  get safeUrl(): string {
    return stripCredentials(this.url);
  }

  private run(args: string[], extra: { input?: string; cwd?: string; timeoutMs?: number } = {}): Promise<string> {
    return git(args, { cwd: extra.cwd ?? this.dir, timeoutMs: extra.timeoutMs ?? this.timeoutMs, input: extra.input });
  }

  /** Runs `fn` alone on this repository: git operations are serialized, in arrival order. */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.tail.then(fn, fn);
    this.tail = next.catch(() => undefined);
    return next;
  }

  /** Clones when the folder is empty or missing; an existing clone keeps its history and gets the URL. */
  private async ensureClone(): Promise<void> {
    const hasGit = await stat(path.join(this.dir, '.git')).then(
      () => true,
      () => false,
    );
    if (hasGit) {
      await this.run(['remote', 'set-url', 'origin', '--', this.url]);
      return;
    }
    await mkdir(this.dir, { recursive: true });
    if ((await readdir(this.dir)).length > 0) {
      throw new PulserError('PULSER_E_USAGE', `${this.dir} is not empty and not a git clone: pulser clones the GitOps repository into a folder of its own`);
    }
    await this.run(['clone', '--quiet', '--origin', 'origin', '--branch', this.branch, '--', this.url, this.dir], { cwd: path.dirname(this.dir) });
  }

  private remoteRef(branch: string): string {
    return `refs/remotes/origin/${branch}`;
  }

  private async fetchTracked(): Promise<string> {
    await this.run(['fetch', '--quiet', '--no-tags', 'origin', `+refs/heads/${this.branch}:${this.remoteRef(this.branch)}`]);
    const tip = (await this.run(['rev-parse', '--verify', `${this.remoteRef(this.branch)}^{commit}`])).trim();
    this.tips.set(this.branch, tip);
    return tip;
  }

  /** Moves the working tree to `target` when that is a fast-forward; a diverged history is an error. */
  private async fastForward(target: string, builtOn?: string): Promise<SyncResult> {
    const previous = this.head ?? (await this.run(['rev-parse', '--verify', 'HEAD^{commit}'])).trim();
    if (previous === target) {
      this.head = target;
      return { commit: target, previous, changed: false };
    }
    try {
      // A chain pulser just built on the working tree's own commit is a fast-forward by construction.
      if (builtOn !== previous) await this.run(['merge-base', '--is-ancestor', previous, target]);
    } catch (err) {
      throw new PulserError(
        'PULSER_E_GIT_DIVERGED',
        `origin/${this.branch} (${target.slice(0, 12)}) does not contain the commit pulser applied last (${previous.slice(0, 12)}): the branch was rewritten; pulser only fast-forwards`,
        { details: { branch: this.branch, local: previous, remote: target }, cause: err },
      );
    }
    await this.run(['merge', '--ff-only', '--quiet', target]);
    this.head = target;
    const result = { commit: target, previous, changed: true };
    for (const fn of this.listeners) fn(result);
    return result;
  }

  /** Fetches the tracked branch and fast-forwards the working clone to it. */
  sync(): Promise<SyncResult> {
    return this.exclusive(async () => {
      await this.ensureClone();
      const branch = (await this.run(['symbolic-ref', '--quiet', '--short', 'HEAD']).catch(() => '')).trim();
      if (branch !== this.branch) {
        await this.run(['checkout', '--quiet', '-B', this.branch, this.remoteRef(this.branch)]);
        this.head = null;
      }
      return this.fastForward(await this.fetchTracked());
    });
  }

  /** The remote tip of `branch`, or null when the remote has no such branch. */
  private async remoteTip(branch: string): Promise<string | null> {
    const out = (await this.run(['ls-remote', '--heads', 'origin', `refs/heads/${branch}`])).trim();
    const sha = out.split(/\s+/)[0] ?? '';
    if (!SHA.test(sha)) return null;
    await this.run(['fetch', '--quiet', '--no-tags', 'origin', `+refs/heads/${branch}:${this.remoteRef(branch)}`]);
    return sha;
  }

  /**
   * Builds one commit per edit on top of `parent`, in order, without touching the working tree:
   * one `git fast-import` run for the whole chain, whatever its length.
   */
  private async chain(parent: string, edits: KvEdit[]): Promise<string[]> {
    const marks = path.join(this.dir, '.git', `pulser-marks-${randomBytes(6).toString('hex')}`);
    const when = `${Math.floor(Date.now() / 1000)} +0000`;
    const data = (text: string) => `data ${Buffer.byteLength(text, 'utf8')}\n${text}\n`;
    let stream = '';
    edits.forEach((e, i) => {
      stream += `commit ${IMPORT_REF}\nmark :${i + 1}\ncommitter ${PULSER_IDENTITY.name} <${PULSER_IDENTITY.email}> ${when}\n${data(e.message)}`;
      if (i === 0) stream += `from ${parent}\n`;
      stream += `M 100644 inline ${KV_DIR}/${e.key}${KV_FILE_SUFFIX}\n${data(e.value.trim() + '\n')}\n`;
    });
    try {
      // A scratch ref that is never pushed: --force only lets each run start from its own parent.
      await this.run(['fast-import', '--quiet', '--force', '--done', `--export-marks=${marks}`], { input: stream + 'done\n' });
      const byMark = new Map((await readFile(marks, 'utf8')).trim().split('\n').map((l) => l.split(' ') as [string, string]));
      return edits.map((_, i) => {
        const sha = byMark.get(`:${i + 1}`);
        if (!sha || !SHA.test(sha)) throw new PulserError('PULSER_E_GIT', `git fast-import did not report commit ${i + 1}`);
        return sha;
      });
    } finally {
      await rm(marks, { force: true });
    }
  }

  /**
   * Commits `edits` (one commit each, in order) on `branch` and pushes them without force. A
   * branch missing on the remote starts from the tracked branch. Returns the commit of each edit
   * once the remote has them. A push that lost a race is rebuilt on the new tip (a few times).
   */
  commitKv(branch: string, edits: KvEdit[]): Promise<{ commits: string[]; created: boolean }> {
    return this.exclusive(async () => {
      await this.ensureClone();
      for (let attempt = 0; ; attempt++) {
        const tracked = branch === this.branch;
        // The tracked branch is pushed on top of what the last sync saw; a rejected push fetches.
        let parent: string | null = tracked && attempt === 0 ? await this.localTip(branch) : null;
        let created = false;
        if (!parent) parent = tracked ? await this.fetchTracked() : await this.remoteTip(branch);
        if (!parent) {
          parent = await this.fetchTracked();
          created = true;
        }
        const commits = await this.chain(parent, edits);
        const last = commits[commits.length - 1] ?? parent;
        try {
          // Dispatches answer within GitHub's and Odoo's budgets: a push that hangs is an error, not a wait.
          await this.run(['push', '--quiet', '--porcelain', 'origin', `${last}:refs/heads/${branch}`], { timeoutMs: PUSH_TIMEOUT_MS });
        } catch (err) {
          const stderr = String((err as PulserError).details?.stderr ?? '');
          if (attempt < 4 && /rejected|non-fast-forward|fetch first|stale info|cannot lock ref/i.test(stderr)) continue;
          throw err;
        }
        // The push moved refs/remotes/origin/<branch> too (origin's fetch refspec maps it).
        this.tips.set(branch, last);
        if (tracked) await this.fastForward(last, parent);
        return { commits, created };
      }
    });
  }

  private async localTip(branch: string): Promise<string | null> {
    return this.tips.get(branch) ?? ((await this.run(['rev-parse', '--verify', '--quiet', `${this.remoteRef(branch)}^{commit}`]).catch(() => '')).trim() || null);
  }

  /**
   * Checks `sha` out into a temporary worktree (fetching `refs` first when the clone lacks it),
   * runs `fn` on its folder, and removes the worktree whatever happens.
   */
  withWorktree<T>(sha: string, refs: string[], fn: (dir: string) => Promise<T>): Promise<T> {
    if (!SHA.test(sha)) return Promise.reject(new PulserError('PULSER_E_GIT', `not a commit id: ${JSON.stringify(sha)}`));
    const dir = path.join(path.dirname(this.dir), `.worktree-${sha.slice(0, 12)}-${randomBytes(4).toString('hex')}`);
    const add = this.exclusive(async () => {
      await this.ensureClone();
      const present = await this.run(['cat-file', '-e', `${sha}^{commit}`]).then(
        () => true,
        () => false,
      );
      if (!present) {
        for (const ref of refs) {
          if (await this.run(['fetch', '--quiet', '--no-tags', '--end-of-options', 'origin', ref]).then(() => true, () => false)) break;
        }
      }
      await this.run(['worktree', 'add', '--quiet', '--detach', dir, sha]);
    });
    return add.then(async () => {
      try {
        return await fn(dir);
      } finally {
        await this.exclusive(() => this.run(['worktree', 'remove', '--force', dir]).catch(() => rm(dir, { recursive: true, force: true })));
      }
    });
  }
}
