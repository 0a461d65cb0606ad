// Which addon repository URLs pulser hands to git. A URL is data, never an option, a transport
// helper (`ext::…`) or a second word: only https, ssh (URL or scp-like) and, where the spec opts
// in, local paths. Checked when a spec is loaded and again right before git runs.
import { PulserError } from '../../errors.ts';
import type { GitTransport } from '../../drivers/git.ts';

export type RepoUrlForm = 'https' | 'ssh' | 'local';

export interface RepoUrlPolicy {
  /** `file://` URLs and absolute paths: repositories on the machine pulser runs on */
  allowLocal: boolean;
}

const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;
const WHITESPACE = /\s/;
/** Options of git and ssh that run programs, wherever they hide in a URL. */
const OPTION_LIKE = /--?(?:upload-pack|receive-pack)|proxycommand|localcommand/i;
/** git runs `git-remote-<name>` for `<name>::<address>` (`ext::sh -c …` runs a shell). */
const TRANSPORT_HELPER = /^[A-Za-z0-9][A-Za-z0-9+._-]*::/;
const SCHEME = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//;
const HOST_NAME = /^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])$/;
const USER_NAME = /^[A-Za-z0-9_][A-Za-z0-9._-]*$/;
/** `[user@]host:path`, what git reads as ssh when a colon comes before any slash. */
const SCP_LIKE = /^(?:([^@/:]+)@)?([^@/:[\]]+|\[[^\]]+\]):(.+)$/;

/** The schema's `maxLength` of `addons.repos[].url`. */
const MAX_URL_LENGTH = 1024;
const LOCAL_HINT = 'set addons.allow_local_repos: true to fetch repositories from this machine';

/** The form of `url`, or why pulser refuses it. */
export function classifyRepoUrl(url: string, policy: RepoUrlPolicy): { form: RepoUrlForm } | { problem: string } {
  const no = (problem: string) => ({ problem });
  if (url === '') return no('is empty');
  if (CONTROL.test(url)) return no('contains a control character (newline, tab, NUL…)');
  if (url.startsWith('-')) return no('starts with "-": git would read it as an option');
  if (WHITESPACE.test(url)) return no('contains whitespace');
  if (OPTION_LIKE.test(url)) return no('contains an option that makes git or ssh run a program (--upload-pack, ProxyCommand…)');
  if (TRANSPORT_HELPER.test(url)) return no('names a transport helper ("name::address"); only https, ssh and local paths are fetched');

  const scheme = SCHEME.exec(url)?.[1]?.toLowerCase();
  if (scheme !== undefined) {
    if (scheme === 'https') return hostUrl(url, 'https');
    if (scheme === 'ssh') return hostUrl(url, 'ssh');
    if (scheme === 'file') {
      if (!policy.allowLocal) return no(`is a file:// URL: ${LOCAL_HINT}`);
      return /^file:\/\/(?:localhost)?\/[^/]/i.test(url) ? { form: 'local' } : no('file:// needs an absolute path (file:///srv/addons/repo.git)');
    }
    // Addon code runs inside Odoo with the database's rights: a fetch nobody authenticates lets
    // anyone on the path replace it.
    if (scheme === 'http' || scheme === 'git') return no(`uses ${scheme}://, which nobody authenticates: use https:// or ssh://`);
    return no(`uses ${scheme}://: only https://, ssh:// and user@host:path are fetched`);
  }
  if (url.startsWith('/')) return policy.allowLocal ? { form: 'local' } : no(`is a path on this machine: ${LOCAL_HINT}`);
  const colon = url.indexOf(':');
  const slash = url.indexOf('/');
  const scp = colon > 0 && (slash === -1 || colon < slash) ? SCP_LIKE.exec(url) : null;
  if (scp) {
    const [, user, host, rest] = scp as unknown as [string, string | undefined, string, string];
    if (user !== undefined && !USER_NAME.test(user)) return no('has a user name that is not letters, digits, ".", "_" or "-" (not starting with "-")');
    if (!HOST_NAME.test(host)) return no('has a host that is not a host name or [IPv6] address');
    if (rest.startsWith('-')) return no('has a path starting with "-"');
    return { form: 'ssh' };
  }
  return no(`is not a repository URL pulser fetches: use https://host/path, ssh://host/path or user@host:path${policy.allowLocal ? ', or an absolute path' : ''}`);
}

function hostUrl(url: string, form: 'https' | 'ssh'): { form: RepoUrlForm } | { problem: string } {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return { problem: `is not a valid ${form}:// URL` };
  }
  if (!HOST_NAME.test(u.hostname)) return { problem: 'has a host that is not a host name or [IPv6] address' };
  if (form === 'ssh' && u.username !== '' && !USER_NAME.test(decodeURIComponent(u.username))) return { problem: 'has a user name that is not letters, digits, ".", "_" or "-" (not starting with "-")' };
  if (u.pathname === '' || u.pathname === '/') return { problem: 'names no repository (the path is empty)' };
  return { form };
}

/** The checkout folder of a repository without a `name`: the last part of its URL without `.git`. */
export function defaultRepoName(url: string): string {
  const last = url.replace(/\/+$/, '').split(/[/:]/).pop() ?? 'repo';
  return last.replace(/\.git$/, '') || 'repo';
}

/** What `addons.repos[].name` may be (the schema's pattern): a folder name, never `..`. */
const FOLDER_NAME = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,99}$/;

/** The git transports fetching a URL of this form needs. */
export function transportsFor(form: RepoUrlForm): GitTransport[] {
  return form === 'local' ? ['file'] : [form];
}

/** The form of a URL pulser fetches; PULSER_E_REPO_URL, naming no part of the URL, otherwise. */
export function checkRepoUrl(url: string, policy: RepoUrlPolicy): RepoUrlForm {
  const r = classifyRepoUrl(url, policy);
  if ('problem' in r) throw new PulserError('PULSER_E_REPO_URL', `addon repository URL ${r.problem}`);
  return r.form;
}

export interface RepoUrlProblem {
  /** JSON pointer of the url in the spec */
  pointer: string;
  message: string;
}

/**
 * Problems of every `addons.repos[].url` of a spec. Messages never repeat the URL: it may carry
 * a resolved `${secret:}` (a token in https://user:token@host/…).
 */
export function repoUrlProblems(spec: unknown): RepoUrlProblem[] {
  const addons = (spec as { addons?: unknown } | null)?.addons as { repos?: unknown; allow_local_repos?: unknown } | undefined;
  if (!addons || !Array.isArray(addons.repos)) return [];
  const policy = { allowLocal: addons.allow_local_repos === true };
  const out: RepoUrlProblem[] = [];
  addons.repos.forEach((r: unknown, i) => {
    const { url, name } = (r ?? {}) as { url?: unknown; name?: unknown };
    // The schema reports a missing, empty or over-long URL.
    if (typeof url !== 'string' || url === '' || url.length > MAX_URL_LENGTH) return;
    const c = classifyRepoUrl(url, policy);
    if ('problem' in c) out.push({ pointer: `/addons/repos/${i}/url`, message: `addons.repos[${i}].url: ${c.problem}` });
    // The folder is a path on the host: ".." or "." taken from a URL would leave the environment's folder.
    else if (name === undefined && !FOLDER_NAME.test(defaultRepoName(url))) {
      out.push({ pointer: `/addons/repos/${i}/url`, message: `addons.repos[${i}].url: its last part is no usable folder name: give the repository a name` });
    }
  });
  return out;
}
