// CLI side of the GitOps intake: what the options that make `reconcile --watch` follow a git branch
// (and talk to a GitHub App) set up (they are declared in options.ts), and `pulser kv get|set`.
import path from 'node:path';
import { readKv, writeKv, validateKvKey, validateKvValue, KV_DIR, KV_FILE_SUFFIX } from '../spec/kv.ts';
import { PulserError } from '../errors.ts';
import { git } from '../drivers/git.ts';
import { parseDuration } from '../core/duration.ts';
import { createLogger } from '../core/log.ts';
import { GitOpsRepo, KvDispatcher } from '../gitops/index.ts';
import type { GitOpsOptions } from '../gitops/index.ts';

export interface GitOpsFlags {
  dir: string;
  git?: string;
  branch: string;
  'git-poll': string;
  'state-dir'?: string;
  'public-url'?: string;
  'github-repository'?: string;
  'github-app-id'?: string;
  'github-installation-id'?: string;
  'github-api-url'?: string;
  commit: boolean;
  message?: string;
  listen: string;
}

/** The root (the clone with --git) and the git options of a command line. */
export function gitopsFrom(flags: GitOpsFlags): { root: string; git?: GitOpsOptions } {
  if (!flags.git) return { root: path.resolve(flags.dir) };
  const state = path.resolve(flags['state-dir'] ?? path.join(flags.dir, '.pulser'));
  let pollIntervalMs: number;
  try {
    pollIntervalMs = parseDuration(flags['git-poll']);
  } catch {
    throw new PulserError('PULSER_E_USAGE', `--git-poll must be a duration like 30s, got ${JSON.stringify(flags['git-poll'])}`);
  }
  const gh = [flags['github-repository'], flags['github-app-id'], flags['github-installation-id']];
  if (gh.some(Boolean) && !gh.every(Boolean)) throw new PulserError('PULSER_E_USAGE', '--github-repository, --github-app-id and --github-installation-id go together');
  const installationId = Number(flags['github-installation-id']);
  if (gh.every(Boolean) && (!Number.isInteger(installationId) || installationId <= 0)) throw new PulserError('PULSER_E_USAGE', '--github-installation-id must be a positive integer');
  return {
    root: path.join(state, 'repo'),
    git: {
      url: flags.git,
      branch: flags.branch,
      pollIntervalMs,
      publicUrl: flags['public-url'] ?? `http://${flags.listen}`,
      github: gh.every(Boolean)
        ? { repository: flags['github-repository']!, appId: flags['github-app-id']!, installationId, baseUrl: flags['github-api-url'] }
        : undefined,
    },
  };
}

/** `pulser kv get KEY` and `pulser kv set KEY VALUE [--commit] [--message M]`. */
export async function cmdKv(args: string[], flags: GitOpsFlags & { json: boolean }, out: (t: string) => void): Promise<number> {
  const [verb, key, value, ...rest] = args;
  if (verb === 'get' && key !== undefined && value === undefined) {
    const v = await readKv(path.resolve(flags.dir), key);
    out(flags.json ? JSON.stringify({ key, value: v }) : v);
    return 0;
  }
  if (verb !== 'set' || key === undefined || value === undefined || rest.length > 0) throw new PulserError('PULSER_E_USAGE', 'usage: pulser kv get KEY | pulser kv set KEY VALUE [--commit] [--message M]');
  const bad = validateKvKey(key) ?? validateKvValue(value);
  if (bad) throw bad;
  const message = (flags.message ?? `kv: set ${key}`).trim() + '\n';
  if (flags.git) {
    if (!flags.commit) throw new PulserError('PULSER_E_USAGE', 'with --git, kv set writes through a commit: add --commit');
    // Through the tracked clone, exactly like a dispatch: policy, serialized commit, push.
    const { root, git: g } = gitopsFrom(flags);
    const repo = new GitOpsRepo(g!.url, g!.branch, root);
    await repo.sync();
    const log = createLogger({ secrets: () => [], level: 'warn', json: false });
    const r = await new KvDispatcher(repo, log, () => null).submit({ branch: g!.branch, message, key, value: value.trim() });
    out(flags.json ? JSON.stringify(r) : `${r.direct ? 'committed' : 'pushed for a pull request'} ${KV_DIR}/${key}${KV_FILE_SUFFIX} on ${r.branch}: ${r.commit}`);
    return 0;
  }
  const root = path.resolve(flags.dir);
  await writeKv(root, key, value);
  if (!flags.commit) {
    out(flags.json ? JSON.stringify({ key, value: value.trim() }) : `wrote ${KV_DIR}/${key}${KV_FILE_SUFFIX}`);
    return 0;
  }
  const file = `${KV_DIR}/${key}${KV_FILE_SUFFIX}`;
  await git(['add', '--', file], { cwd: root });
  await git(['commit', '--quiet', '--only', '-F', '-', '--', file], { cwd: root, input: message });
  const sha = (await git(['rev-parse', 'HEAD'], { cwd: root })).trim();
  out(flags.json ? JSON.stringify({ key, value: value.trim(), commit: sha }) : `committed ${file}: ${sha}`);
  return 0;
}
