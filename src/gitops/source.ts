// The tracked git source of the daemon: polls the branch on an interval and on hints (webhooks),
// and tells the loop when the working clone moved to a new commit. A hint never replaces polling.
import type { Logger } from '../core/log.ts';
import { asPulserError } from '../errors.ts';
import type { GitOpsRepo, SyncResult } from './repo.ts';

export interface GitSourceOptions {
  repo: GitOpsRepo;
  log: Logger;
  intervalMs: number;
  /** a new commit is in the working tree */
  onCommit: (r: SyncResult, trigger: string) => void;
}

export class GitSource {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<SyncResult | null> | null = null;
  private again: string | null = null;
  private stopped = false;
  private trigger = 'git poll';

  constructor(private readonly opts: GitSourceOptions) {
    opts.repo.onAdvance((r) => opts.onCommit(r, `${this.trigger} ${r.commit.slice(0, 12)}`));
  }

  get repo(): GitOpsRepo {
    return this.opts.repo;
  }

  /** First sync (clones when needed); throws when the repository cannot be reached or diverged. */
  async start(): Promise<SyncResult> {
    const r = await this.opts.repo.sync();
    this.schedule();
    return r;
  }

  /** Fetches now; hints arriving during a fetch coalesce into exactly one more. */
  hint(reason: string): Promise<SyncResult | null> {
    if (this.stopped) return Promise.resolve(null);
    if (this.running) {
      this.again = reason;
      return this.running;
    }
    this.running = this.once(reason).finally(() => {
      this.running = null;
      const owed = this.again;
      this.again = null;
      if (owed && !this.stopped) void this.hint(owed);
    });
    return this.running;
  }

  private async once(reason: string): Promise<SyncResult | null> {
    this.trigger = reason;
    try {
      return await this.opts.repo.sync();
    } catch (err) {
      const e = asPulserError(err, 'PULSER_E_GIT');
      this.opts.log.error(`git source ${this.opts.repo.safeUrl} (${this.opts.repo.branch}): ${e.message}`, { code: e.code });
      return null;
    } finally {
      this.trigger = 'git commit';
      this.schedule();
    }
  }

  private schedule(): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.hint('git poll'), this.opts.intervalMs);
    this.timer.unref?.();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
  }
}
