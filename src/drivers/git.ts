// The git CLI as a driver: argv arrays through execFile (never a shell), a timeout on every call,
// no terminal prompts. Also tells which commit of the GitOps repository a pass applies.
import { execFile } from 'node:child_process';
import { PulserError } from '../errors.ts';

const SPEC_PATHS = ['environments', 'ops/kv'];
export const GIT_TIMEOUT_MS = 30_000;

export interface GitRunOptions {
  cwd: string;
  timeoutMs?: number;
  /** written to the command's stdin */
  input?: string | Buffer;
  env?: Record<string, string>;
}

/** Identity of the commits pulser writes (dispatches, `pulser kv set --commit`). */
export const PULSER_IDENTITY = { name: 'pulser', email: 'pulser@localhost' };

function gitEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    GIT_TERMINAL_PROMPT: '0',
    // A credential helper or askpass program could otherwise block a daemon waiting for a person.
    GIT_ASKPASS: 'true',
    SSH_ASKPASS: 'true',
    GIT_SSH_COMMAND: process.env.GIT_SSH_COMMAND ?? 'ssh -o BatchMode=yes',
    GIT_AUTHOR_NAME: PULSER_IDENTITY.name,
    GIT_AUTHOR_EMAIL: PULSER_IDENTITY.email,
    GIT_COMMITTER_NAME: PULSER_IDENTITY.name,
    GIT_COMMITTER_EMAIL: PULSER_IDENTITY.email,
    LC_ALL: 'C',
    ...extra,
  };
}

/** Runs `git …args` and returns stdout; failures become PULSER_E_GIT (stderr excerpt, no URL credentials). */
export function git(args: readonly string[], opts: GitRunOptions): Promise<string> {
  const timeout = opts.timeoutMs ?? GIT_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    const child = execFile('git', args, { cwd: opts.cwd, timeout, maxBuffer: 16 << 20, env: gitEnv(opts.env), encoding: 'utf8' }, (err, stdout, stderr) => {
      if (!err) return resolve(stdout);
      const killed = (err as { killed?: boolean }).killed === true;
      const excerpt = stripCredentials(String(stderr).trim()).slice(-600);
      const what = `git ${args[0] ?? ''}`;
      reject(
        killed
          ? new PulserError('PULSER_E_TIMEOUT', `${what} did not finish within ${timeout} ms`, { cause: err })
          : new PulserError('PULSER_E_GIT', `${what} failed: ${excerpt || err.message}`, { details: { command: what, stderr: excerpt }, cause: err }),
      );
    });
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(opts.input ?? '');
  });
}

/** `https://user:token@host/x` → `https://host/x`, wherever a URL shows up in git's messages. */
export function stripCredentials(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/)[^/@\s]+@/gi, '$1');
}

export async function specCommit(root: string, timeoutMs = 5_000): Promise<string> {
  try {
    const opts = { cwd: root, timeoutMs };
    const head = (await git(['rev-parse', 'HEAD'], opts)).trim();
    const dirty = (await git(['status', '--porcelain', '--untracked-files=all', '--', ...SPEC_PATHS], opts)).trim();
    return dirty ? 'uncommitted' : head;
  } catch {
    return 'uncommitted';
  }
}
