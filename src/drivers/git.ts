// The git CLI as a driver, the one way pulser runs git: argv arrays through execFile (never a
// shell), a timeout on every call, no terminal prompts, and an environment pulser builds itself,
// so that no GIT_* variable, system or global config can add options, transports or commands.
// Also tells which commit of the GitOps repository a pass applies.
import { execFile } from 'node:child_process';
import { PulserError } from '../errors.ts';

const SPEC_PATHS = ['environments', 'ops/kv'];
export const GIT_TIMEOUT_MS = 30_000;

/** A full commit id, as git and GitHub give it. */
export const COMMIT_ID = /^[0-9a-f]{40}$/;

/** Transports git may use (`GIT_ALLOW_PROTOCOL`); `file` covers local paths too. */
export type GitTransport = 'https' | 'ssh' | 'file';
export const DEFAULT_TRANSPORTS: readonly GitTransport[] = ['https', 'ssh', 'file'];

export interface GitRunOptions {
  /** working folder; defaults to the process's */
  cwd?: string;
  timeoutMs?: number;
  /** written to the command's stdin */
  input?: string | Buffer;
  /** the only transports this call may use (default: https, ssh and file) */
  transports?: readonly GitTransport[];
}

/** Identity of the commits pulser writes (dispatches, `pulser kv set --commit`). */
export const PULSER_IDENTITY = { name: 'pulser', email: 'pulser@localhost' };

/** The ssh git starts for ssh URLs: never a prompt, and never one a variable or config chose. */
export const GIT_SSH_COMMAND = 'ssh -o BatchMode=yes';

/**
 * GIT_* variables kept from pulser's own environment: trust anchors for https. Every other one
 * is dropped: GIT_CONFIG_COUNT/KEY/VALUE and GIT_CONFIG_PARAMETERS add config (an `ext`
 * transport, `core.sshCommand`, `uploadpack.*`), GIT_SSH/GIT_SSH_COMMAND/GIT_PROXY_COMMAND choose
 * programs, GIT_EXEC_PATH replaces git's own, GIT_DIR/GIT_WORK_TREE/… point git elsewhere.
 */
const KEPT_GIT_VARS = new Set(['GIT_SSL_CAINFO', 'GIT_SSL_CAPATH']);

/** The environment every git call gets: `base` without its GIT_* variables, plus pulser's own. */
export function gitEnv(base: NodeJS.ProcessEnv, transports: readonly GitTransport[] = DEFAULT_TRANSPORTS): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(base)) {
    if (!k.toUpperCase().startsWith('GIT_') || KEPT_GIT_VARS.has(k)) env[k] = v;
  }
  return {
    ...env,
    // Only these transports, whatever any config says (ext::, fd::, remote helpers are never listed).
    GIT_ALLOW_PROTOCOL: transports.join(':'),
    // Neither /etc/gitconfig nor ~/.gitconfig: no insteadOf rewrite, credential helper or alias of theirs.
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: '/dev/null',
    GIT_TERMINAL_PROMPT: '0',
    // A credential helper or askpass program could otherwise block a daemon waiting for a person.
    GIT_ASKPASS: 'true',
    SSH_ASKPASS: 'true',
    GIT_SSH_COMMAND,
    GIT_AUTHOR_NAME: PULSER_IDENTITY.name,
    GIT_AUTHOR_EMAIL: PULSER_IDENTITY.email,
    GIT_COMMITTER_NAME: PULSER_IDENTITY.name,
    GIT_COMMITTER_EMAIL: PULSER_IDENTITY.email,
    LC_ALL: 'C',
  };
}

/** Runs `git …args` and returns stdout; failures become PULSER_E_GIT (stderr excerpt, no URL credentials). */
export function git(args: readonly string[], opts: GitRunOptions = {}): Promise<string> {
  const timeout = opts.timeoutMs ?? GIT_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    const child = execFile('git', args, { cwd: opts.cwd, timeout, maxBuffer: 64 << 20, env: gitEnv(process.env, opts.transports), encoding: 'utf8' }, (err, stdout, stderr) => {
      if (!err) return resolve(stdout);
      const killed = (err as { killed?: boolean }).killed === true;
      const excerpt = stripCredentials(String(stderr).trim()).slice(-600);
      const what = `git ${(args[0] === '-C' ? args[2] : args[0]) ?? ''}`;
      const exitCode = typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : null;
      reject(
        killed
          ? new PulserError('PULSER_E_TIMEOUT', `${what} did not finish within ${timeout} ms`, { cause: err })
          : new PulserError('PULSER_E_GIT', `${what} failed: ${excerpt || err.message}`, { details: { command: what, argv: ['git', ...args.map(stripCredentials)], exitCode, stderr: excerpt }, cause: err }),
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
