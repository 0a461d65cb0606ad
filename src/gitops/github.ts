// What GitHub hears from pulser and what pulser hears from GitHub: a push of the tracked branch
// is a hint to fetch now; a pull request gets the plan of its head as one comment (updated on
// every push) and a `pulser/plan` status; every apply becomes a deployment with statuses.
import type { Reconciler } from '../core/reconciler.ts';
import type { PassRecord } from '../core/record.ts';
import type { Logger } from '../core/log.ts';
import { redactText } from '../core/redact.ts';
import type { GitHubClient } from '../drivers/github.ts';
import { asPulserError } from '../errors.ts';
import type { SecretSource } from '../spec/secrets.ts';
import type { SpecSnapshot } from '../spec/model.ts';
import { SHA, type GitOpsRepo } from './repo.ts';
import type { GitSource } from './source.ts';
import type { GitHubHookHandler } from './routes.ts';
import { git } from '../drivers/git.ts';
import { planUntrusted } from './untrusted-plan.ts';

export const PLAN_MARKER = '<!-- pulser:plan -->';
export const PLAN_CONTEXT = 'pulser/plan';
const WATCHED = /^(environments|ops\/kv)\//;

export interface PullRequestEvent {
  number: number;
  headSha: string;
  headRef: string;
  baseSha: string;
}

/** The fields pulser uses from a pull_request payload, or null when they are not there. */
export function pullRequestOf(payload: Record<string, unknown>): PullRequestEvent | null {
  const pr = payload.pull_request as { number?: unknown; head?: { sha?: unknown; ref?: unknown }; base?: { sha?: unknown } } | undefined;
  const number = typeof payload.number === 'number' ? payload.number : pr?.number;
  if (typeof number !== 'number' || typeof pr?.head?.sha !== 'string' || !SHA.test(pr.head.sha) || typeof pr.head.ref !== 'string') return null;
  return { number, headSha: pr.head.sha, headRef: pr.head.ref, baseSha: typeof pr.base?.sha === 'string' && SHA.test(pr.base.sha) ? pr.base.sha : '' };
}

const NOT_OBSERVED = 'PULSER_E_NOT_OBSERVED';

/** What a record found wrong, without what the untrusted plan only declined to contact. */
function realErrors(r: PassRecord): PassRecord['errors'] {
  return r.errors.filter((e) => e.code !== NOT_OBSERVED);
}

/** `failed` only because something was not contacted reads as what it is. */
function shownOutcome(r: PassRecord): string {
  return r.outcome === 'failed' && realErrors(r).length === 0 && r.errors.length > 0 ? 'not observed' : (r.outcome ?? 'failed');
}

/** The plan comment: one section per environment, changes like `terraform plan`, masked. */
export function renderPlanComment(recs: PassRecord[], headSha: string, secrets: Iterable<string>): string {
  const lines = [PLAN_MARKER, `### pulser plan for \`${headSha.slice(0, 12)}\``, ''];
  if (recs.length === 0) lines.push('No environments in this revision.');
  else {
    lines.push('| Environment | Result | Changes |', '|---|---|---|');
    for (const r of recs) lines.push(`| \`${r.env}\` | ${shownOutcome(r)} | ${r.plan.changes.length} |`);
  }
  for (const r of recs) {
    const errors = realErrors(r);
    const unseen = r.errors.filter((e) => e.code === NOT_OBSERVED);
    if (r.plan.changes.length === 0 && r.errors.length === 0) continue;
    lines.push('', `#### \`${r.env}\``, '');
    if (r.plan.changes.length > 0 || errors.length > 0) {
      lines.push('```diff');
      for (const c of r.plan.changes) {
        const sign = c.action === 'create' ? '+' : c.action === 'delete' ? '-' : '!';
        lines.push(`${sign} ${c.subject}: ${c.summary} (${c.action}, ${c.risk})`);
      }
      for (const e of errors) lines.push(`- ${e.code}: ${e.message.replace(/\n/g, ' ')}`);
      lines.push('```');
    }
    if (unseen.length > 0) {
      lines.push('', 'Not observed (the plan of a pull request reaches only what the tracked branch declares):');
      for (const m of new Set(unseen.map((e) => e.message.replace(/\n/g, ' ')))) lines.push(`- ${m}`);
    }
  }
  return redactText(lines.join('\n') + '\n', secrets);
}

function planState(recs: PassRecord[]): { state: 'success' | 'failure'; description: string } {
  const bad = recs.filter((r) => (r.outcome === 'failed' || r.outcome === 'invalid') && (realErrors(r).length > 0 || r.errors.length === 0));
  if (bad.length > 0) return { state: 'failure', description: `${bad.map((r) => r.env).join(', ')}: ${bad[0]!.errors[0]?.code ?? 'failed'}` };
  const changes = recs.reduce((n, r) => n + r.plan.changes.length, 0);
  return { state: 'success', description: changes === 0 ? 'no changes' : `${changes} change(s) in ${recs.filter((r) => r.plan.changes.length > 0).length} environment(s)` };
}

export interface GitHubIntakeDeps {
  repo: GitOpsRepo;
  source: GitSource;
  github: GitHubClient;
  reconcilers: Reconciler[];
  secrets: SecretSource;
  /** secret values known to the daemon, masked in comments */
  knownSecrets: () => Iterable<string>;
  log: Logger;
  /** the tracked branch's latest load: all that a pull request's plan may reach */
  tracked: () => SpecSnapshot | null;
  dockerTimeoutMs?: number;
}

export class GitHubIntake implements GitHubHookHandler {
  private readonly prs = new Map<number, { running: Promise<void>; next: PullRequestEvent | null }>();

  constructor(private readonly deps: GitHubIntakeDeps) {}

  push(payload: Record<string, unknown>): void {
    if (payload.ref !== `refs/heads/${this.deps.repo.branch}`) return;
    void this.deps.source.hint('github push');
  }

  pullRequest(payload: Record<string, unknown>): void {
    const ev = pullRequestOf(payload);
    if (!ev) {
      this.deps.log.warn('pull_request payload without number or head: ignored');
      return;
    }
    // One plan per pull request at a time; pushes during a plan coalesce into the newest head.
    const cur = this.prs.get(ev.number);
    if (cur) {
      cur.next = ev;
      return;
    }
    const entry = { running: Promise.resolve(), next: null as PullRequestEvent | null };
    const loop = async (first: PullRequestEvent) => {
      let ev: PullRequestEvent | null = first;
      while (ev) {
        await this.planPullRequest(ev);
        ev = entry.next;
        entry.next = null;
      }
      this.prs.delete(first.number);
    };
    entry.running = loop(ev);
    this.prs.set(ev.number, entry);
  }

  /** Resolves when no pull request plan is under way (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.prs.size > 0) await Promise.all([...this.prs.values()].map((e) => e.running));
  }

  private async planPullRequest(ev: PullRequestEvent): Promise<void> {
    const gh = this.deps.github;
    try {
      const recs = await this.deps.repo.withWorktree(ev.headSha, [`+refs/pull/${ev.number}/head`, `+refs/heads/${ev.headRef}`, ev.headSha], async (dir) => {
        if (ev.baseSha && !(await this.touchesSpec(dir, ev.baseSha, ev.headSha))) return null;
        return this.planRevision(dir, ev);
      });
      if (!recs) return;
      await gh.upsertComment(ev.number, PLAN_MARKER, renderPlanComment(recs.records, ev.headSha, recs.secrets));
      const { state, description } = planState(recs.records);
      await gh.setStatus(ev.headSha, state, PLAN_CONTEXT, description);
    } catch (err) {
      const e = asPulserError(err);
      this.deps.log.error(`plan of pull request #${ev.number} failed: ${e.message}`, { code: e.code });
      await gh.setStatus(ev.headSha, 'error', PLAN_CONTEXT, `${e.code}`).catch(() => undefined);
    }
  }

  private async touchesSpec(dir: string, base: string, head: string): Promise<boolean> {
    const out = await git(['diff', '--name-only', `${base}...${head}`], { cwd: dir }).catch(() => null);
    return out === null || out.split('\n').some((f) => WATCHED.test(f));
  }

  /** Plans the revision as untrusted: see untrusted-plan.ts. */
  private planRevision(dir: string, ev: PullRequestEvent): Promise<{ records: PassRecord[]; secrets: string[] }> {
    return planUntrusted(dir, {
      tracked: this.deps.tracked(),
      secrets: this.deps.secrets,
      reconcilers: this.deps.reconcilers,
      log: this.deps.log.child({ pr: String(ev.number) }),
      knownSecrets: this.deps.knownSecrets,
      trigger: `pull request #${ev.number}`,
      commit: ev.headSha,
      dockerTimeoutMs: this.deps.dockerTimeoutMs,
    });
  }
}

/** One GitHub deployment per environment per apply, with in_progress → success | failure. */
export class DeploymentReporter {
  private readonly open = new Map<string, Promise<number | null>>();
  private readonly tails = new Set<Promise<unknown>>();

  constructor(
    private readonly github: () => GitHubClient | null,
    private readonly publicUrl: string,
    private readonly tierOf: (env: string) => string | undefined,
    private readonly log: Logger,
  ) {}

  private logUrl(rec: PassRecord): string {
    return `${this.publicUrl.replace(/\/+$/, '')}/api/evidence/${rec.passId}/${rec.env}/summary.md`;
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.tails.add(p);
    void p.finally(() => this.tails.delete(p));
    return p;
  }

  applyStarted(rec: PassRecord): void {
    const gh = this.github();
    if (!gh || !SHA.test(rec.commit)) return;
    const key = `${rec.passId}/${rec.env}`;
    const p = (async () => {
      try {
        const id = await gh.createDeployment({ ref: rec.commit, environment: rec.env, description: `pulser pass ${rec.passId}`, production: this.tierOf(rec.env) === 'production' });
        await gh.setDeploymentStatus(id, 'in_progress', `applying ${rec.plan.changes.length} change(s)`, this.logUrl(rec));
        return id;
      } catch (err) {
        this.log.warn(`could not report deployment of ${rec.env}: ${asPulserError(err).message}`, { code: asPulserError(err).code });
        return null;
      }
    })();
    this.open.set(key, this.track(p));
  }

  passRecorded(rec: PassRecord): void {
    const key = `${rec.passId}/${rec.env}`;
    const started = this.open.get(key);
    if (!started) return;
    this.open.delete(key);
    const gh = this.github();
    const ok = rec.outcome === 'applied';
    const description = ok ? `applied ${rec.apply.filter((a) => a.outcome === 'applied').length} change(s)` : `${rec.outcome}: ${rec.errors[0]?.code ?? 'failed'}`;
    this.track(
      started.then(async (id) => {
        if (id === null || !gh) return;
        await gh.setDeploymentStatus(id, ok ? 'success' : 'failure', description, this.logUrl(rec)).catch((err: unknown) => {
          this.log.warn(`could not report deployment of ${rec.env}: ${asPulserError(err).message}`, { code: asPulserError(err).code });
        });
      }),
    );
  }

  async idle(): Promise<void> {
    while (this.tails.size > 0) await Promise.all([...this.tails]);
  }
}
