// One pass of one environment: guard clauses, then the named stages observe → plan → policy →
// apply → verify, and an epilogue in `finally` that always records evidence, metrics and status.
import { stringify as toYaml } from 'yaml';
import type { Change, Finding, Plan, ReconcileContext, Reconciler } from './reconciler.ts';
import type { ApplyEntry, PassOutcome, PassRecord } from './record.ts';
import type { DesiredEnv, EnvLoad } from '../spec/model.ts';
import type { Drivers } from '../drivers/index.ts';
import type { Logger } from './log.ts';
import type { BackupMetricFacts, Metrics } from '../metrics.ts';
import { orderReconcilers, dependentsOf } from './registry.ts';
import { asPulserError, PulserError, type ErrorRecord } from '../errors.ts';
import { redact } from './redact.ts';
import { StatusBoard } from './status.ts';
import type { MailCatcherRoute } from '../odoo/catcher-route.ts';
import type { StatusStore } from './status-store.ts';
import { describeHolder, type Lease, type Leases } from './lease.ts';

/** The part of the evidence store the engine needs (the full store lives in src/evidence). */
export interface EvidenceSink {
  newPassId(now: Date): string;
  beginApply(record: PassRecord): Promise<void>;
  appendApply(env: string, entry: ApplyEntry): Promise<void>;
  write(record: PassRecord): Promise<string>;
}

export interface EngineDeps {
  reconcilers: Reconciler[];
  drivers: () => Drivers;
  evidence: EvidenceSink | null;
  metrics: Metrics;
  log: Logger;
  secrets: () => Iterable<string>;
  now?: () => Date;
  /** commit of the spec repository for this pass (`uncommitted` for a plain working tree) */
  commit?: () => Promise<string>;
  progress?: (env: string, message: string) => void;
  /** told when a pass starts applying and when its record is written (GitHub deployments) */
  observer?: { applyStarted(rec: PassRecord): void; passRecorded(rec: PassRecord): void };
  mailCatcher?: () => MailCatcherRoute | null;
  /** another environment's desired state from the latest load (a staging refresh reads its source's) */
  peer?: (env: string) => DesiredEnv | null;
  /** pulser's own state folder (journals of operations that must be finishable after a crash) */
  stateDir?: string;
  /** where stalls and the last error of apply passes outlive the process (read back on start) */
  statusStore?: StatusStore;
  /** one writer per environment across processes: an apply pass holds the environment's lease */
  leases?: Leases;
}

export interface PassOptions {
  mode: 'plan' | 'apply';
  trigger: string;
  /** explicit `pulser apply`: applies even when sync.auto is off or the env is stalled */
  force?: boolean;
  /** observe the engines afresh instead of sharing a listing taken moments ago by another pass */
  fresh?: boolean;
  /** the interrupted pass this one follows up, for the record */
  resumes?: PassRecord['resumes'];
  /** an apply pass finding the lease held waits for it (the CLI) instead of failing transiently (the daemon) */
  waitForLease?: boolean;
}

export class Engine {
  readonly status = new StatusBoard();
  private readonly levels: Reconciler[][];
  private readonly lastGood = new Map<string, DesiredEnv>();
  private readonly stalled = new Map<string, { specHash: string; error: ErrorRecord }>();
  private readonly now: () => Date;
  private readonly interrupted = new Map<string, NonNullable<PassRecord['resumes']>>();
  /** the last error of the daemon's passes, as persisted: shown by plan passes that found none */
  private readonly persistedError = new Map<string, ErrorRecord>();
  private readonly restored: Promise<void>;

  constructor(private readonly deps: EngineDeps) {
    this.levels = orderReconcilers(deps.reconcilers);
    this.now = deps.now ?? (() => new Date());
    this.restored = this.restoreStatus();
  }

  /** A stall survives a restart: the same failing spec is not retried by a new process either. */
  private async restoreStatus(): Promise<void> {
    if (!this.deps.statusStore) return;
    try {
      for (const [env, s] of await this.deps.statusStore.load()) {
        if (s.stalled) this.stalled.set(env, s.stalled);
        if (s.lastError) this.persistedError.set(env, s.lastError);
      }
    } catch (err) {
      this.deps.log.warn(`could not read the persisted status: ${asPulserError(err).message}`);
    }
  }

  get reconcilerNames(): string[] {
    return this.deps.reconcilers.map((r) => r.name);
  }

  /** Observes every reconciler, level by level, the reconcilers of one level concurrently. */
  async observe(ctx: ReconcileContext): Promise<Record<string, unknown>> {
    const observed: Record<string, unknown> = {};
    for (const level of this.levels) {
      const results = await Promise.all(level.map((r) => r.observe(ctx)));
      level.forEach((r, i) => (observed[r.name] = results[i]));
    }
    return observed;
  }

  plan(desired: DesiredEnv, observed: Record<string, unknown>, now: Date): Plan {
    const changes: Change[] = [];
    const findings: Finding[] = [];
    for (const level of this.levels) {
      for (const r of level) {
        const p = r.plan(desired, observed[r.name], now);
        changes.push(...p.changes);
        findings.push(...p.findings);
      }
    }
    let prepared = changes;
    for (const r of this.deps.reconcilers) if (r.prepare) prepared = r.prepare(desired, prepared, now, observed[r.name]);
    return { changes: prepared, findings };
  }

  context(desired: DesiredEnv, signal?: AbortSignal): ReconcileContext {
    return {
      desired,
      drivers: this.deps.drivers(),
      log: this.deps.log.child({ env: desired.name }),
      progress: (m) => this.deps.progress?.(desired.name, m),
      signal: signal ?? new AbortController().signal,
      metrics: this.deps.metrics,
      mailCatcher: this.deps.mailCatcher?.() ?? null,
      peer: (env) => this.deps.peer?.(env) ?? null,
      stateDir: this.deps.stateDir,
    };
  }

  /** The desired state a pass would use: the loaded spec, or the last good one when it is invalid. */
  desiredFor(load: EnvLoad): DesiredEnv | null {
    if (load.ok) return load.desired;
    return this.lastGood.get(load.name) ?? null;
  }

  /** A pass cut short by a crash: shown in status, and named by the next pass of the environment. */
  noteInterrupted(rec: PassRecord): void {
    this.interrupted.set(rec.env, {
      passId: rec.passId,
      startedAt: rec.startedAt,
      applied: rec.apply.filter((a) => a.outcome === 'applied').length,
      planned: rec.plan.changes.length,
    });
    this.status.update(rec, null, {}, null);
  }

  async runPass(load: EnvLoad, opts: PassOptions): Promise<PassRecord> {
    await this.restored;
    const started = this.now();
    const rec: PassRecord = {
      passId: this.deps.evidence?.newPassId(started) ?? `${started.getTime()}`,
      env: load.name,
      file: load.file,
      trigger: opts.trigger,
      commit: 'unknown',
      startedAt: started.toISOString(),
      mode: opts.mode,
      desiredYaml: null,
      specHash: null,
      usingLastGood: false,
      observed: {},
      plan: { changes: [], findings: [] },
      apply: [],
      driftBefore: 0,
      driftAfter: null,
      driftByReconciler: {},
      errors: [],
    };
    const resumes = opts.resumes ?? this.interrupted.get(load.name);
    if (resumes) {
      rec.resumes = resumes;
      this.interrupted.delete(load.name);
    }
    let desired: DesiredEnv | null = null;
    let latest: Record<string, unknown> = {};
    let lease: Lease | null = null;
    try {
      rec.commit = (await this.deps.commit?.()) ?? 'unknown';
      if (load.ok) {
        desired = load.desired;
        this.lastGood.set(load.name, load.desired);
      } else {
        rec.errors.push(...load.errors.map((e) => e.toJSON()));
        desired = this.lastGood.get(load.name) ?? null;
        rec.usingLastGood = desired !== null;
      }
      if (!desired) {
        rec.outcome = 'invalid';
        return rec;
      }
      rec.desiredYaml = toYaml(desired.masked);
      rec.specHash = desired.specHash;
      // Observed and planned under the lease too: what another writer is changing is not planned from.
      if (opts.mode === 'apply' && this.deps.leases) lease = await this.holdLease(desired.name, opts, rec);

      const ctx = this.context(desired);
      ctx.commit = rec.commit;
      if (opts.fresh) ctx.drivers.invalidate(desired.hostName);
      const observed = await this.observe(ctx);
      rec.observed = observed;
      latest = observed;
      const plan = this.plan(desired, observed, started);
      rec.plan = plan;
      rec.driftBefore = plan.changes.length;
      rec.driftByReconciler = countBy(plan.changes);
      rec.errors.push(...plan.findings.map((f) => f.error));

      rec.outcome = this.policy(desired, plan, opts, rec);
      if (rec.outcome !== undefined) return rec;

      const anyFailed = await this.applyAll(ctx, plan.changes, rec);
      latest = await this.observe(ctx);
      const after = this.plan(desired, latest, this.now());
      rec.driftAfter = after.changes.length;
      rec.driftByReconciler = countBy(after.changes);
      if (anyFailed) rec.outcome = 'failed';
      else if (after.changes.length > 0) {
        rec.outcome = 'failed';
        rec.errors.push(
          new PulserError('PULSER_E_DRIFT_REMAINS', `after applying, ${after.changes.length} change(s) are still pending: ${after.changes.map((c) => c.summary).join('; ')}`).toJSON(),
        );
      } else rec.outcome = plan.findings.length > 0 ? 'failed' : 'applied';
      return rec;
    } catch (err) {
      rec.errors.push(asPulserError(err).toJSON());
      rec.outcome = 'failed';
      return rec;
    } finally {
      try {
        await this.record(rec, desired, latest);
      } finally {
        await lease?.release().catch((err: unknown) => this.deps.log.error(`could not release the lease of ${rec.env}: ${asPulserError(err).message}`));
      }
    }
  }

  private holdLease(env: string, opts: PassOptions, rec: PassRecord): Promise<Lease> {
    return this.deps.leases!.acquire(env, {
      wait: opts.waitForLease === true,
      onWait: (h) => this.deps.progress?.(env, `waiting for ${describeHolder(h)} to finish with ${env}`),
      onTakeover: (h) => {
        rec.leaseTakenOver = h;
        this.deps.log.warn(`took over the lease of ${env} from ${describeHolder(h)}, which had died`, { env });
      },
    });
  }

  /** Decides whether the plan may be applied; returns an outcome when the pass stops here. */
  private policy(desired: DesiredEnv, plan: Plan, opts: PassOptions, rec: PassRecord): PassOutcome | undefined {
    if (plan.changes.length === 0) return plan.findings.length > 0 ? 'failed' : 'in-sync';
    if (opts.mode === 'plan') return 'planned';
    if (!desired.spec.sync.auto && !opts.force) return 'planned';
    const stall = this.stalled.get(desired.name);
    if (stall && stall.specHash === desired.specHash && !opts.force) {
      rec.errors.push(
        new PulserError('PULSER_E_STALLED', `not applying: the last attempt at this exact spec failed (${stall.error.code}: ${stall.error.message}); change the spec or run \`pulser apply ${desired.name}\``, {
          details: { cause: stall.error.code },
        }).toJSON(),
      );
      return 'planned';
    }
    return undefined;
  }

  /** Applies changes in order; a failure skips the later changes of its reconciler and its dependents. */
  private async applyAll(ctx: ReconcileContext, changes: Change[], rec: PassRecord): Promise<boolean> {
    const evidence = this.deps.evidence;
    await evidence?.beginApply(redact(rec, this.deps.secrets()));
    this.deps.observer?.applyStarted(redact(rec, this.deps.secrets()));
    const blocked = new Map<string, string>();
    let gateFailed: string | undefined;
    let anyFailed = false;
    for (const [index, change] of changes.entries()) {
      const entry: ApplyEntry = { index, subject: change.subject, action: change.action, summary: change.summary, startedAt: this.now().toISOString() };
      const blocker = gateFailed ?? blocked.get(change.reconciler);
      if (blocker) {
        entry.endedAt = entry.startedAt;
        entry.outcome = 'skipped';
        entry.error = new PulserError('PULSER_E_DEPENDENCY_FAILED', `skipped: ${blocker} failed earlier in this pass`).toJSON();
        rec.apply.push(entry);
        await evidence?.appendApply(rec.env, redact(entry, this.deps.secrets()));
        continue;
      }
      await evidence?.appendApply(rec.env, redact({ ...entry }, this.deps.secrets()));
      ctx.log.info(`apply ${change.subject}: ${change.summary}`, { action: change.action, risk: change.risk });
      const reconciler = this.deps.reconcilers.find((r) => r.name === change.reconciler);
      try {
        if (!reconciler) throw new PulserError('PULSER_E_INTERNAL', `no reconciler named ${change.reconciler}`);
        const result = await reconciler.apply(ctx, change);
        entry.outcome = result.outcome;
        if (result.output) entry.output = result.output;
        if (result.error) entry.error = result.error;
        if (result.detail) entry.detail = result.detail;
      } catch (err) {
        entry.outcome = 'failed';
        entry.error = asPulserError(err).toJSON();
      }
      entry.endedAt = this.now().toISOString();
      rec.apply.push(entry);
      await evidence?.appendApply(rec.env, redact(entry, this.deps.secrets()));
      if (entry.outcome === 'failed') {
        anyFailed = true;
        if (entry.error) rec.errors.push(entry.error);
        ctx.log.error(`failed ${change.subject}: ${entry.error?.message ?? 'unknown error'}`, { code: entry.error?.code });
        blocked.set(change.reconciler, change.subject);
        if (change.gate) gateFailed = change.subject;
        for (const d of dependentsOf(this.deps.reconcilers, change.reconciler)) blocked.set(d, change.subject);
      }
    }
    return anyFailed;
  }

  /** The epilogue: masks the record, then writes evidence, metrics and status, whatever happened. */
  private async record(raw: PassRecord, desired: DesiredEnv | null, latest: Record<string, unknown>): Promise<void> {
    const ended = this.now();
    raw.endedAt = ended.toISOString();
    raw.durationMs = ended.getTime() - Date.parse(raw.startedAt);
    raw.outcome ??= 'failed';
    const rec = redact(raw, this.deps.secrets());
    Object.assign(raw, rec);
    this.updateStall(rec);
    if (this.deps.evidence) {
      try {
        await this.deps.evidence.write(rec);
      } catch (err) {
        this.deps.log.error(`could not write evidence for ${rec.env}: ${asPulserError(err).message}`);
      }
    }
    this.deps.metrics.recordPass(rec, this.reconcilerNames);
    this.deps.observer?.passRecorded(rec);
    const summaries: Record<string, unknown> = {};
    if (desired) {
      for (const r of this.deps.reconcilers) {
        const o = latest[r.name];
        if (o !== undefined && r.summarize) summaries[r.name] = r.summarize(o);
      }
    }
    this.deps.metrics.recordBackups(rec.env, summaries.backups as BackupMetricFacts | undefined);
    const stalled = this.stalled.get(rec.env) ?? null;
    const lastError = rec.errors.at(-1) ?? null;
    if (rec.mode === 'apply') {
      if (lastError) this.persistedError.set(rec.env, lastError);
      else this.persistedError.delete(rec.env);
    }
    // A plan pass (`pulser status`, `pulser plan`) tells the daemon's last error when it found none itself.
    const shown = rec.mode === 'plan' && rec.errors.length === 0 ? (this.persistedError.get(rec.env) ?? null) : undefined;
    // Metrics and status change together (no await between them): a reader never sees one without the other.
    this.status.update(rec, desired, summaries, stalled, shown);
    if (rec.mode === 'apply' && this.deps.statusStore) {
      await this.deps.statusStore.save(rec.env, { stalled, lastError }).catch((err: unknown) => {
        this.deps.log.error(`could not persist the status of ${rec.env}: ${asPulserError(err).message}`);
      });
    }
    const level = rec.outcome === 'failed' || rec.outcome === 'invalid' ? 'warn' : 'info';
    this.deps.log[level](`pass ${rec.passId} ${rec.env}: ${rec.outcome}`, {
      trigger: rec.trigger,
      drift: rec.driftAfter ?? rec.driftBefore,
      ms: rec.durationMs,
      ...(rec.errors.length ? { errors: rec.errors.map((e) => e.code) } : {}),
    });
  }

  private updateStall(rec: PassRecord): void {
    if (rec.mode !== 'apply' || !rec.specHash) return;
    const terminal = rec.apply.map((a) => a.error).find((e) => e && e.class === 'terminal' && e.code !== 'PULSER_E_DEPENDENCY_FAILED');
    if (terminal) this.stalled.set(rec.env, { specHash: rec.specHash, error: terminal });
    else if (rec.outcome === 'applied' || rec.outcome === 'in-sync') this.stalled.delete(rec.env);
  }

  forget(env: string): void {
    this.lastGood.delete(env);
    this.stalled.delete(env);
    this.status.remove(env);
    this.deps.metrics.forget(env, this.reconcilerNames);
  }
}

function countBy(changes: Change[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const c of changes) out[c.reconciler] = (out[c.reconciler] ?? 0) + 1;
  return out;
}
