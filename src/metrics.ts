// Prometheus metrics (prefix pulser_). Labels stay low-cardinality: environment, reconciler,
// action and outcome names only — never a commit, an image tag or an error message.
import { Registry, Counter, Gauge, Histogram, collectDefaultMetrics } from 'prom-client';
import type { PassRecord } from './core/record.ts';
import { TextGauge, TextHistogram } from './monitor/series.ts';
import { VERSION } from './version.ts';

export interface BackupMetricFacts {
  lastBackup: { at: string; size: number; durationSeconds: number } | null;
  lastDrill: { ok: boolean; durationSeconds: number } | null;
}

export { VERSION };

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
  // GitOps intake: webhooks and Odoo dispatches
  readonly webhookRequests = new Counter({
    name: 'pulser_webhook_requests_total',
    help: 'Webhook and dispatch requests by source (odoo, github) and outcome (accepted, rejected, duplicate, failed).',
    labelNames: ['source', 'outcome'] as const,
    registers: [this.registry],
  });
  readonly dispatchDuration = new Histogram({
    name: 'pulser_dispatch_duration_seconds',
    help: 'Time from receiving a kv dispatch to answering it (after the commit was pushed).',
    labelNames: ['outcome'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
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

  // Monitoring: health probes, KPIs and alerts (src/monitor/, reconcilers/alerts/). The
  // per-environment series are written by src/monitor/series.ts (see there why).
  readonly envUp = new TextGauge('pulser_env_up', '1 when the last health probe answered 2xx.', ['env']);
  readonly probeDuration = new TextHistogram('pulser_probe_duration_seconds', 'Duration of health probes (failed ones included).', ['env'], [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]);
  readonly uptimeRatio = new TextGauge('pulser_uptime_ratio', 'Share of successful health probes over a rolling window (1h, 24h, 30d).', ['env', 'window']);
  readonly uptimeObjective = new TextGauge('pulser_uptime_objective', 'Uptime the environment is meant to reach (alerts.uptime_objective).', ['env']);
  readonly errorRate = new TextGauge('pulser_error_rate', 'Failed share of requests and error records in the Odoo log over a rolling window (5m, 1h).', ['env', 'window']);
  readonly backupAge = new TextGauge('pulser_backup_age_seconds', 'Time since the last successful backup (absent while unknown).', ['env']);
  readonly diskUsed = new TextGauge('pulser_disk_used_ratio', "Used share of the disk of the environment's host (absent while unknown).", ['env']);
  readonly alertFiring = new TextGauge('pulser_alert_firing', '1 while the alert fires (as evaluated by pulser).', ['env', 'alert']);
  readonly alertThreshold = new TextGauge('pulser_alert_threshold', 'Threshold of each alert from the spec, in the unit of the metric it is compared with.', ['env', 'alert']);
  private readonly monitoring = [this.envUp, this.probeDuration, this.uptimeRatio, this.uptimeObjective, this.errorRate, this.backupAge, this.diskUsed, this.alertFiring, this.alertThreshold];
  readonly alertNotifications = new Counter({ name: 'pulser_alert_notifications_total', help: 'Alert webhook deliveries by outcome (delivered, failed).', labelNames: ['outcome'] as const, registers: [this.registry] });

  /** The whole text exposition that GET /metrics serves. */
  async exposition(): Promise<string> {
    return (await this.registry.metrics()) + this.monitoringText();
  }

  /** The per-environment monitoring series alone. */
  monitoringText(): string {
    let out = '';
    for (const f of this.monitoring) out += f.text();
    return out;
  }

  // Hosts (set by the hosts reconciler whenever it observes a host)
  readonly hostUp = new Gauge({
    name: 'pulser_host_up',
    help: '1 when the host answered its last observation (SSH and Docker), 0 when it did not',
    labelNames: ['host'],
    registers: [this.registry],
  });
  readonly hostDiskUsedRatio = new Gauge({
    name: 'pulser_host_disk_used_ratio',
    help: 'Used fraction of the root file system of the host',
    labelNames: ['host'],
    registers: [this.registry],
  });

  recordHost(host: string, up: boolean, diskUsedRatio: number | null): void {
    this.hostUp.set({ host }, up ? 1 : 0);
    if (diskUsedRatio !== null) this.hostDiskUsedRatio.set({ host }, diskUsedRatio);
  }

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
