// Odoo's kv dispatches (`{branch, message, kv_key, kv_value}`) become commits of
// `ops/kv/<key>.txt`: straight on the tracked branch when ops/policy.yaml allows it, else on a
// branch with a pull request. Dispatches queue per repository; waiting ones are committed as one
// chain (one commit each, in arrival order) and pushed once, then every caller gets its commit.
import { PulserError, asPulserError } from '../errors.ts';
import { validateKvKey, validateKvValue } from '../spec/kv.ts';
import type { Logger } from '../core/log.ts';
import { branchProblem, type GitOpsRepo } from './repo.ts';
import { loadPolicy, routeKv } from './policy.ts';

export interface KvDispatch {
  branch: string;
  message: string;
  key: string;
  value: string;
}

export interface PullRequestRef {
  number: number;
  url: string;
}

export interface DispatchResult {
  commit: string;
  branch: string;
  direct: boolean;
  pullRequest: PullRequestRef | null;
}

/** What the dispatcher needs from GitHub: a pull request for a branch (an open one is reused). */
export interface PullRequestOpener {
  ensurePullRequest(o: { head: string; base: string; title: string; body: string }): Promise<PullRequestRef>;
}

export const MESSAGE_MAX_BYTES = 8192;

/** Checks the shape of a dispatch body; kv rules come from src/spec/kv.ts. Throws coded errors. */
export function parseDispatch(body: unknown): KvDispatch {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new PulserError('PULSER_E_WEBHOOK_PAYLOAD', 'the body must be a JSON object {branch, message, kv_key, kv_value}');
  const b = body as Record<string, unknown>;
  const unknown = Object.keys(b).filter((k) => !['branch', 'message', 'kv_key', 'kv_value'].includes(k));
  if (unknown.length > 0) throw new PulserError('PULSER_E_WEBHOOK_PAYLOAD', `unknown field(s): ${unknown.slice(0, 5).map((k) => JSON.stringify(k.slice(0, 40))).join(', ')}`);
  for (const f of ['branch', 'kv_key', 'kv_value'] as const) {
    if (typeof b[f] !== 'string') throw new PulserError('PULSER_E_WEBHOOK_PAYLOAD', `${f} must be a string`);
  }
  if (b.message !== undefined && typeof b.message !== 'string') throw new PulserError('PULSER_E_WEBHOOK_PAYLOAD', 'message must be a string');
  const key = b.kv_key as string;
  const value = b.kv_value as string;
  const kvErr = validateKvKey(key) ?? validateKvValue(value);
  if (kvErr) throw kvErr;
  const branch = b.branch as string;
  const why = branchProblem(branch);
  if (why) throw new PulserError('PULSER_E_DISPATCH_INVALID', `branch ${why}`, { details: { field: 'branch', problem: why } });
  const message = ((b.message as string | undefined) ?? '').trim() || `kv: set ${key}`;
  if (Buffer.byteLength(message, 'utf8') > MESSAGE_MAX_BYTES) throw new PulserError('PULSER_E_DISPATCH_INVALID', `message is longer than ${MESSAGE_MAX_BYTES} bytes`);
  if (/[\u0000-\u0008\u000b-\u001f\u007f]/.test(message)) throw new PulserError('PULSER_E_DISPATCH_INVALID', 'message contains NUL or control characters');
  return { branch, message: message + '\n', key, value: value.trim() };
}

interface Waiting {
  d: KvDispatch;
  resolve: (r: DispatchResult) => void;
  reject: (e: unknown) => void;
}

export class KvDispatcher {
  private readonly waiting: Waiting[] = [];
  private draining: Promise<void> | null = null;

  constructor(
    private readonly repo: GitOpsRepo,
    private readonly log: Logger,
    private readonly github: () => PullRequestOpener | null,
  ) {}

  /** Resolves once the commit is on the remote. */
  submit(d: KvDispatch): Promise<DispatchResult> {
    return new Promise<DispatchResult>((resolve, reject) => {
      this.waiting.push({ d, resolve, reject });
      this.draining ??= this.drain().finally(() => (this.draining = null));
    });
  }

  private async drain(): Promise<void> {
    while (this.waiting.length > 0) {
      const batch = this.waiting.splice(0);
      try {
        const policy = await loadPolicy(this.repo.dir);
        const groups = new Map<string, { direct: boolean; items: Waiting[] }>();
        for (const w of batch) {
          const direct = routeKv(policy, w.d.key) === 'direct';
          const target = direct ? this.repo.branch : w.d.branch !== this.repo.branch ? w.d.branch : `pulser/kv/${w.d.key}`;
          const g = groups.get(target) ?? { direct, items: [] };
          g.items.push(w);
          groups.set(target, g);
        }
        for (const [branch, g] of groups) await this.commitGroup(branch, g.direct, g.items);
      } catch (err) {
        for (const w of batch) w.reject(err);
      }
    }
  }

  private async commitGroup(branch: string, direct: boolean, items: Waiting[]): Promise<void> {
    let commits: string[];
    try {
      ({ commits } = await this.repo.commitKv(
        branch,
        items.map((w) => ({ key: w.d.key, value: w.d.value, message: w.d.message })),
      ));
    } catch (err) {
      for (const w of items) w.reject(err);
      return;
    }
    let pr: PullRequestRef | null = null;
    let prError: unknown = null;
    if (!direct) {
      const gh = this.github();
      if (gh) {
        const first = items[0]!.d;
        try {
          pr = await gh.ensurePullRequest({
            head: branch,
            base: this.repo.branch,
            title: first.message.split('\n')[0]!.slice(0, 250),
            body: `Requested by a kv dispatch: ${items.map((w) => `\`ops/kv/${w.d.key}.txt\``).join(', ')}.\n\n\`ops/policy.yaml\` asks for a pull request for ${items.length > 1 ? 'these keys' : 'this key'}.`,
          });
        } catch (err) {
          prError = err;
          this.log.error(`pushed ${branch} but could not open its pull request: ${asPulserError(err).message}`, { code: asPulserError(err).code });
        }
      }
    }
    items.forEach((w, i) => {
      if (prError) w.reject(prError);
      else w.resolve({ commit: commits[i]!, branch, direct, pullRequest: pr });
    });
  }
}
