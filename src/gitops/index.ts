// The GitOps intake assembled: tracked repository, poller, dispatch queue, GitHub App client,
// webhook handlers and deployment reporting, from one options object. Secrets come from the
// secrets source: PULSER_DISPATCH_SECRET, PULSER_GITHUB_WEBHOOK_SECRET, PULSER_GITHUB_APP_PRIVATE_KEY.
import type { Logger } from '../core/log.ts';
import type { Reconciler } from '../core/reconciler.ts';
import type { Metrics } from '../metrics.ts';
import type { SecretSource } from '../spec/secrets.ts';
import type { SpecSnapshot } from '../spec/model.ts';
import { GitHubClient } from '../drivers/github.ts';
import { PulserError } from '../errors.ts';
import { GitOpsRepo, type SyncResult } from './repo.ts';
import { GitSource } from './source.ts';
import { KvDispatcher } from './dispatch.ts';
import { DeploymentReporter, GitHubIntake } from './github.ts';
import type { GitOpsRouteDeps } from './routes.ts';

export { GitOpsRepo } from './repo.ts';
export { KvDispatcher } from './dispatch.ts';

export const SECRET_NAMES = {
  dispatch: 'PULSER_DISPATCH_SECRET',
  githubWebhook: 'PULSER_GITHUB_WEBHOOK_SECRET',
  githubKey: 'PULSER_GITHUB_APP_PRIVATE_KEY',
} as const;

export interface GitOpsOptions {
  /** any git URL git can fetch and push (ssh, https, a path) */
  url: string;
  branch: string;
  /** how often the branch is fetched even without a webhook (default 60 s) */
  pollIntervalMs?: number;
  /** pulser's public URL, for links in deployments (default http://127.0.0.1:9470) */
  publicUrl?: string;
  github?: { appId: string; installationId: number; repository: string; baseUrl?: string; timeoutMs?: number };
}

export interface GitOpsDeps {
  /** where the working clone lives */
  dir: string;
  log: Logger;
  metrics: Metrics;
  secrets: SecretSource;
  /** adds a value to the set every log line, evidence pack and comment is masked with */
  maskSecret: (value: string) => void;
  knownSecrets: () => Iterable<string>;
  reconcilers: Reconciler[];
  /** a new commit is in the working tree */
  onCommit: (r: SyncResult, trigger: string) => void;
  tierOf: (env: string) => string | undefined;
  /** the tracked branch's latest load: all that a pull request plan may reach */
  tracked: () => SpecSnapshot | null;
  dockerTimeoutMs?: number;
}

export class GitOps {
  readonly repo: GitOpsRepo;
  readonly source: GitSource;
  readonly dispatcher: KvDispatcher;
  readonly deployments: DeploymentReporter;
  github: GitHubClient | null = null;
  intake: GitHubIntake | null = null;

  constructor(
    private readonly opts: GitOpsOptions,
    private readonly deps: GitOpsDeps,
  ) {
    this.repo = new GitOpsRepo(opts.url, opts.branch, deps.dir);
    this.source = new GitSource({ repo: this.repo, log: deps.log, intervalMs: opts.pollIntervalMs ?? 60_000, onCommit: deps.onCommit });
    this.dispatcher = new KvDispatcher(this.repo, deps.log, () => this.github);
    this.deployments = new DeploymentReporter(() => this.github, opts.publicUrl ?? 'http://127.0.0.1:9470', deps.tierOf, deps.log);
  }

  private async secret(name: string): Promise<string | undefined> {
    const v = await this.deps.secrets.get(name);
    if (v) this.deps.maskSecret(v);
    return v || undefined;
  }

  /** Reads the GitHub App key, clones or fetches the repository; throws when it cannot. */
  async start(): Promise<SyncResult> {
    const gh = this.opts.github;
    if (gh) {
      const key = await this.secret(SECRET_NAMES.githubKey);
      if (!key) throw new PulserError('PULSER_E_SECRET_MISSING', `the GitHub App needs its private key in ${SECRET_NAMES.githubKey} (${this.deps.secrets.describe()})`);
      this.github = new GitHubClient({ ...gh, privateKey: key }, this.deps.log, this.deps.maskSecret);
      this.intake = new GitHubIntake({
        repo: this.repo,
        source: this.source,
        github: this.github,
        reconcilers: this.deps.reconcilers,
        secrets: this.deps.secrets,
        knownSecrets: this.deps.knownSecrets,
        log: this.deps.log,
        tracked: this.deps.tracked,
        dockerTimeoutMs: this.deps.dockerTimeoutMs,
      });
    }
    return this.source.start();
  }

  routeDeps(): Omit<GitOpsRouteDeps, 'metrics' | 'log'> {
    return {
      secret: (source) => this.secret(source === 'odoo' ? SECRET_NAMES.dispatch : SECRET_NAMES.githubWebhook),
      dispatch: (d) => this.dispatcher.submit(d),
      github: {
        push: (p) => {
          if (p.ref === `refs/heads/${this.repo.branch}`) void this.source.hint('github push');
        },
        pullRequest: (p) => this.intake?.pullRequest(p),
      },
    };
  }

  async stop(): Promise<void> {
    await this.source.stop();
    await this.intake?.idle();
    await this.deployments.idle();
  }
}
