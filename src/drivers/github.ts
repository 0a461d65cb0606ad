// GitHub through a GitHub App (@octokit/app): app JWT → installation token, kept in one
// installation client and renewed ahead of its expiry; pull requests, the plan comment, commit
// statuses and deployments. Tokens and the private key go only to the mask set, never to output.
import { App } from '@octokit/app';
import { Octokit } from '@octokit/core';
import { PulserError } from '../errors.ts';
import type { Logger } from '../core/log.ts';
import type { PullRequestOpener, PullRequestRef } from '../gitops/dispatch.ts';

export interface GitHubAppConfig {
  appId: string;
  privateKey: string;
  installationId: number;
  /** `owner/name` of the GitOps repository */
  repository: string;
  /** API root; `https://api.github.com` unless aimed at GitHub Enterprise or a local server */
  baseUrl?: string;
  timeoutMs?: number;
}

/** A token is renewed when it has less than this left (GitHub issues them for one hour). */
export const TOKEN_RENEW_MARGIN_MS = 5 * 60_000;

type Client = InstanceType<typeof Octokit>;
type DeploymentState = 'in_progress' | 'success' | 'failure' | 'error';

export class GitHubClient implements PullRequestOpener {
  private readonly app: App;
  private readonly owner: string;
  private readonly repo: string;
  private installation: { client: Client; expiresAt: number } | null = null;
  private pendingInstallation: Promise<Client> | null = null;

  constructor(
    private readonly cfg: GitHubAppConfig,
    log: Logger,
    /** every token pulser obtains is handed here so that logs and evidence mask it */
    private readonly onSecret: (value: string) => void = () => undefined,
  ) {
    const m = /^([A-Za-z0-9-]{1,39})\/([A-Za-z0-9._-]{1,100})$/.exec(cfg.repository);
    if (!m) throw new PulserError('PULSER_E_USAGE', `GitHub repository must be owner/name, got ${JSON.stringify(cfg.repository)}`);
    [this.owner, this.repo] = [m[1]!, m[2]!];
    onSecret(cfg.privateKey);
    const timeoutMs = cfg.timeoutMs ?? 8_000;
    const timedFetch: typeof fetch = (url, init) => fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
    const quiet = { debug: () => undefined, info: () => undefined, warn: (m: string) => log.warn(`github: ${m}`), error: (m: string) => log.error(`github: ${m}`) };
    this.app = new App({
      appId: cfg.appId,
      privateKey: cfg.privateKey,
      Octokit: Octokit.defaults({ baseUrl: cfg.baseUrl ?? 'https://api.github.com', request: { fetch: timedFetch }, userAgent: 'pulser' }),
      log: quiet,
    });
  }

  get repository(): string {
    return `${this.owner}/${this.repo}`;
  }

  /**
   * The installation client. @octokit/auth-app caches a token for 59 minutes by the clock of
   * the moment it got it (shared by every client of one App), whatever the token's own expiry
   * says; pulser reads the expiry GitHub returned and asks for a new token ahead of it.
   */
  private async client(): Promise<Client> {
    const cur = this.installation;
    if (cur && cur.expiresAt - Date.now() > TOKEN_RENEW_MARGIN_MS) return cur.client;
    this.pendingInstallation ??= (async () => {
      try {
        const client = (await this.app.getInstallationOctokit(this.cfg.installationId)) as unknown as Client;
        let auth = (await client.auth({ type: 'installation' })) as { token: string; expiresAt: string };
        // The app's cache may hand back the token that is about to expire: ask for a new one.
        if (Date.parse(auth.expiresAt) - Date.now() <= TOKEN_RENEW_MARGIN_MS) auth = (await client.auth({ type: 'installation', refresh: true })) as typeof auth;
        this.onSecret(auth.token);
        this.installation = { client, expiresAt: Date.parse(auth.expiresAt) };
        return client;
      } finally {
        this.pendingInstallation = null;
      }
    })();
    return this.pendingInstallation;
  }

  private async call<T>(what: string, fn: (c: Client) => Promise<{ data: unknown }>): Promise<T> {
    try {
      return (await fn(await this.client())).data as T;
    } catch (err) {
      if (err instanceof PulserError) throw err;
      const status = (err as { status?: number }).status;
      const timedOut = (err as { name?: string }).name === 'TimeoutError' || /aborted|timeout/i.test(String((err as Error).message));
      throw new PulserError(timedOut ? 'PULSER_E_TIMEOUT' : 'PULSER_E_GITHUB_API', `GitHub ${what}: ${status ? `HTTP ${status} ` : ''}${String((err as Error).message).slice(0, 300)}`, {
        details: status ? { status } : undefined,
        cause: err,
      });
    }
  }

  private get repoParams() {
    return { owner: this.owner, repo: this.repo };
  }

  async ensurePullRequest(o: { head: string; base: string; title: string; body: string }): Promise<PullRequestRef> {
    const open = await this.call<{ number: number; html_url: string }[]>('list pull requests', (c) =>
      c.request('GET /repos/{owner}/{repo}/pulls', { ...this.repoParams, state: 'open', head: `${this.owner}:${o.head}`, base: o.base, per_page: 10 }),
    );
    const found = open[0];
    if (found) return { number: found.number, url: found.html_url };
    const pr = await this.call<{ number: number; html_url: string }>('open a pull request', (c) =>
      c.request('POST /repos/{owner}/{repo}/pulls', { ...this.repoParams, head: o.head, base: o.base, title: o.title, body: o.body }),
    );
    return { number: pr.number, url: pr.html_url };
  }

  /** Creates the comment holding `marker` on issue/PR `number`, or updates the one already there. */
  async upsertComment(number: number, marker: string, body: string): Promise<{ id: number; created: boolean }> {
    for (let page = 1; page <= 20; page++) {
      const list = await this.call<{ id: number; body?: string }[]>('list comments', (c) =>
        c.request('GET /repos/{owner}/{repo}/issues/{issue_number}/comments', { ...this.repoParams, issue_number: number, per_page: 100, page }),
      );
      const mine = list.find((x) => x.body?.includes(marker));
      if (mine) {
        await this.call('update a comment', (c) => c.request('PATCH /repos/{owner}/{repo}/issues/comments/{comment_id}', { ...this.repoParams, comment_id: mine.id, body }));
        return { id: mine.id, created: false };
      }
      if (list.length < 100) break;
    }
    const created = await this.call<{ id: number }>('create a comment', (c) =>
      c.request('POST /repos/{owner}/{repo}/issues/{issue_number}/comments', { ...this.repoParams, issue_number: number, body }),
    );
    return { id: created.id, created: true };
  }

  async setStatus(sha: string, state: 'pending' | 'success' | 'failure' | 'error', context: string, description: string, targetUrl?: string): Promise<void> {
    await this.call('set a commit status', (c) =>
      c.request('POST /repos/{owner}/{repo}/statuses/{sha}', {
        ...this.repoParams,
        sha,
        state,
        context,
        description: description.slice(0, 140),
        ...(targetUrl ? { target_url: targetUrl } : {}),
      }),
    );
  }

  async createDeployment(o: { ref: string; environment: string; description: string; production: boolean }): Promise<number> {
    const d = await this.call<{ id: number }>('create a deployment', (c) =>
      c.request('POST /repos/{owner}/{repo}/deployments', {
        ...this.repoParams,
        ref: o.ref,
        environment: o.environment,
        description: o.description.slice(0, 140),
        auto_merge: false,
        required_contexts: [],
        production_environment: o.production,
        transient_environment: false,
      }),
    );
    return d.id;
  }

  async setDeploymentStatus(id: number, state: DeploymentState, description: string, logUrl?: string): Promise<void> {
    await this.call('set a deployment status', (c) =>
      c.request('POST /repos/{owner}/{repo}/deployments/{deployment_id}/statuses', {
        ...this.repoParams,
        deployment_id: id,
        state,
        description: description.slice(0, 140),
        ...(logUrl ? { log_url: logUrl } : {}),
      }),
    );
  }
}
