// Prometheus metrics (prefix pulser_). Labels stay low-cardinality: environment, reconciler,
// action and outcome names only — never a commit, an image tag or an error message.
import { Registry, Counter, Gauge, Histogram, collectDefaultMetrics } from 'prom-client';
import type { PassRecord } from './core/record.ts';

export interface BackupMetricFacts {
  lastBackup: { at: string; size: number; durationSeconds: number } | null;
  lastDrill: { ok: boolean; durationSeconds: number } | null;
}

export const VERSION = '0.1.0';

export class Metrics {
  readonly registry = new Registry();
  readonly reconcileDuration = new Histogram({
    name: 'pulser_reconcile_duration_seconds',
    help: 'Duration of one reconcile pass of one environment.',
    labelNames: ['env', 'outcome'] as const,
    buckets: [0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
    registers: [this.registry],
  });
  readonly reconcileTotal = new Counter({
    name: 'pulser_reconcile_total',
    help: 'Reconcile passes by outcome.',
    labelNames: ['env', 'outcome'] as const,
    registers: [this.registry],
  });
  readonly drift = new Gauge({
    name: 'pulser_drift',
    help: 'Pending changes found by the last pass, per reconciler.',
    labelNames: ['env', 'reconciler'] as const,
    registers: [this.registry],
  });
  readonly inSync = new Gauge({
    name: 'pulser_in_sync',
    help: '1 when the last pass left no drift and no error.',
    labelNames: ['env'] as const,
    registers: [this.registry],
  });
  readonly applyTotal = new Counter({
    name: 'pulser_apply_total',
    help: 'Changes applied, by reconciler, action and outcome.',
    labelNames: ['env', 'reconciler', 'action', 'outcome'] as const,
    registers: [this.registry],
  });
  readonly specValid = new Gauge({
    name: 'pulser_spec_valid',
    help: '1 when the environment spec on disk is valid.',
    labelNames: ['env'] as const,
    registers: [this.registry],
  });
  readonly lastPass = new Gauge({
    name: 'pulser_last_pass_timestamp_seconds',
    help: 'When the last pass of the environment ended (unix seconds).',
    labelNames: ['env'] as const,
    registers: [this.registry],
  });
  readonly errorsTotal = new Counter({
    name: 'pulser_errors_total',
    help: 'Errors by stable code (see README) and class.',
    labelNames: ['env', 'code', 'class'] as const,
    registers: [this.registry],
  });
  // Backups and restore drills (from the backups reconciler's facts)
  readonly backupLastSuccess = new Gauge({ name: 'pulser_backup_last_success_timestamp_seconds', help: 'When the newest complete backup was taken (unix seconds).', labelNames: ['env'] as const, registers: [this.registry] });
  readonly backupSize = new Gauge({ name: 'pulser_backup_size_bytes', help: 'Size of the newest complete backup (dump and filestore).', labelNames: ['env'] as const, registers: [this.registry] });
  readonly backupDuration = new Gauge({ name: 'pulser_backup_duration_seconds', help: 'How long the newest complete backup took.', labelNames: ['env'] as const, registers: [this.registry] });
  readonly drillDuration = new Gauge({ name: 'pulser_restore_drill_duration_seconds', help: 'How long the last restore drill took (the measured restore time).', labelNames: ['env'] as const, registers: [this.registry] });
  readonly drillSuccess = new Gauge({ name: 'pulser_restore_drill_success', help: '1 when the last restore drill restored the backup and matched its manifest.', labelNames: ['env'] as const, registers: [this.registry] });
  readonly info = new Gauge({
    name: 'pulser_info',
    help: 'Always 1; carries the pulser version.',
    labelNames: ['version'] as const,
    registers: [this.registry],
  });

  constructor(opts: { processMetrics?: boolean } = {}) {
    this.info.set({ version: VERSION }, 1);
    if (opts.processMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: 'pulser_' });
  }

  /** Backup facts of an environment (the backups reconciler's summary), when it has a policy. */
  recordBackups(env: string, facts: BackupMetricFacts | undefined): void {
    const last = facts?.lastBackup;
    if (last) {
      this.backupLastSuccess.set({ env }, Date.parse(last.at) / 1000);
      this.backupSize.set({ env }, last.size);
      this.backupDuration.set({ env }, last.durationSeconds);
    }
    const drill = facts?.lastDrill;
    if (drill) {
      this.drillDuration.set({ env }, drill.durationSeconds);
      this.drillSuccess.set({ env }, drill.ok ? 1 : 0);
    }
  }

  recordPass(rec: PassRecord, reconcilerNames: string[]): void {
    const outcome = rec.outcome ?? 'failed';
    const env = rec.env;
    if (rec.durationMs !== undefined) this.reconcileDuration.observe({ env, outcome }, rec.durationMs / 1000);
    this.reconcileTotal.inc({ env, outcome });
    const pending = rec.driftAfter ?? rec.driftBefore;
    for (const r of reconcilerNames) this.drift.set({ env, reconciler: r }, rec.driftByReconciler[r] ?? 0);
    this.inSync.set({ env }, pending === 0 && rec.errors.length === 0 ? 1 : 0);
    this.specValid.set({ env }, rec.outcome === 'invalid' || rec.usingLastGood ? 0 : 1);
    this.lastPass.set({ env }, Date.parse(rec.endedAt ?? rec.startedAt) / 1000);
    for (const e of rec.errors) this.errorsTotal.inc({ env, code: e.code, class: e.class });
    for (const a of rec.apply) {
      if (a.outcome) {
        const change = rec.plan.changes[a.index];
        this.applyTotal.inc({ env, reconciler: change?.reconciler ?? 'unknown', action: a.action, outcome: a.outcome });
      }
    }
  }

  /** An environment that is gone from git stops being reported. */
  forget(env: string, reconcilerNames: string[]): void {
    for (const g of [this.inSync, this.specValid, this.lastPass]) g.remove({ env });
    for (const r of reconcilerNames) this.drift.remove({ env, reconciler: r });
  }
}
