// The monitor: probes every environment's health endpoint on its interval, reads the Odoo log
// of its running container, asks the backup and disk providers, turns all that into KPIs and
// metrics, evaluates the alerts and sends their notifications. Uptime history and notified
// alert states live in the state directory, so a restart neither forgets nor re-notifies.
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Drivers, ProbeResult } from '../drivers/index.ts';
import { describeProbe, LABEL } from '../drivers/index.ts';
import type { Metrics } from '../metrics.ts';
import type { Logger } from '../core/log.ts';
import type { DesiredEnv, SpecSnapshot } from '../spec/model.ts';
import { parseDuration } from '../core/duration.ts';
import { writeFileAtomic, isErrno } from '../evidence/durable.ts';
import { UptimeStore } from './uptime-store.ts';
import { addTallies, EMPTY_TALLY, errorRate, percentile, tallyRecords, type ErrorTally, type LogRecord } from './kpi.ts';
import { parseEngineLog } from './odoo-log.ts';
import { hostDisk, unknownBackups, type BackupProvider, type DiskProvider } from './providers.ts';
export { backupsFromStatus, hostDisk, unknownBackups, type BackupProvider, type DiskProvider } from './providers.ts';
import { ALERT_NAMES, ALERT_WINDOW_MS, UPTIME_WINDOWS, alertSettings, type AlertName, type AlertSettings, type ErrorRateWindow } from '../../reconcilers/alerts/settings.ts';
import { conditionsOf, describeAlert, evaluateEnv, initialStates, owedNotification, type EnvAlertStates, type AlertPhase, type Kpis } from '../../reconcilers/alerts/evaluate.ts';
import { deliverNotification, type AlertNotification } from '../../reconcilers/alerts/notify.ts';
import { SEVERITY, type RenderEnv } from '../../reconcilers/alerts/render.ts';

export interface MonitorOptions {
  drivers: () => Drivers;
  metrics: Metrics;
  log: Logger;
  stateDir: string;
  backups?: BackupProvider;
  disk?: DiskProvider;
  /** how often the Odoo log of each environment is read (default 15 s) */
  logPollMs?: number;
  /** how often backup age and disk use are asked for (default 60 s) */
  kpiPollMs?: number;
  /** base of the backoff between webhook attempts (default 500 ms) */
  notifyBackoffMs?: number;
  /** wait before a notification that failed every attempt is tried again (default 30 s) */
  notifyRetryMs?: number;
}

const ERROR_WINDOWS: Record<ErrorRateWindow, number> = { '5m': 5, '1h': 60 };
const MINUTE_MS = 60_000;

export interface EnvMonitorView {
  env: string;
  up: boolean | null;
  lastProbe: { at: string; ok: boolean; durationMs: number; detail: string } | null;
  uptime: Record<string, number | null>;
  uptimeObjective: number;
  errorRate: Record<string, number | null>;
  latency: { p95: number | null; p99: number | null };
  backup: { lastAt: string | null; ageSeconds: number | null };
  diskUsedRatio: number | null;
  alerts: { alert: AlertName; phase: AlertPhase; since: string | null; summary: string }[];
}

interface Watch {
  desired: DesiredEnv;
  settings: AlertSettings;
  probeTimer: NodeJS.Timeout | null;
  logTimer: NodeJS.Timeout | null;
  lastProbe: (ProbeResult & { at: number }) | null;
  latencies: { at: number; seconds: number }[];
  errors: Map<number, ErrorTally>;
  /** the container whose log was read, and the last line's timestamp */
  logCursor: { container: string; ts: string } | null;
  backupAt: Date | null;
  disk: number | null;
  alerts: EnvAlertStates;
  inFlight: Set<AlertName>;
  retryAt: number;
}

export class Monitor {
  private readonly watches = new Map<string, Watch>();
  private readonly uptime: UptimeStore;
  private readonly alertsFile: string;
  private readonly backups: BackupProvider;
  private readonly disk: DiskProvider;
  private started = false;
  private kpiTimer: NodeJS.Timeout | null = null;
  private readonly tasks = new Set<Promise<unknown>>();
  private persisted = '';
  private persisting: Promise<void> = Promise.resolve();
  private loadedAlerts: Record<string, Partial<EnvAlertStates>> = {};
  /** aborted by stop(): deliveries under way give up, their notifications stay owed */
  private running = new AbortController();

  constructor(private readonly opts: MonitorOptions) {
    const dir = path.join(opts.stateDir, 'monitor');
    this.uptime = new UptimeStore(dir, (err) => opts.log.warn(`could not write uptime history: ${String(err)}`));
    this.alertsFile = path.join(dir, 'alerts.json');
    this.backups = opts.backups ?? unknownBackups;
    this.disk = opts.disk ?? hostDisk(opts.drivers);
  }

  /** Follows the environments of a new snapshot; an invalid spec keeps its last good settings. */
  update(snap: SpecSnapshot): void {
    for (const [name, l] of snap.envs) {
      if (!l.ok) continue;
      const w = this.watches.get(name);
      if (w) {
        w.desired = l.desired;
        w.settings = alertSettings(l.desired);
      } else {
        this.watches.set(name, this.newWatch(l.desired));
        if (this.started) this.schedule(name, 0);
      }
    }
    for (const name of [...this.watches.keys()]) if (!snap.envs.has(name)) this.drop(name);
  }

  async start(): Promise<void> {
    if (this.started) return;
    await mkdir(path.dirname(this.alertsFile), { recursive: true });
    await this.uptime.load();
    this.loadedAlerts = await this.readAlertStates();
    for (const [name, w] of this.watches) w.alerts = { ...initialStates(), ...this.loadedAlerts[name] };
    this.persisted = this.alertStatesJson();
    this.running = new AbortController();
    this.started = true;
    for (const name of this.watches.keys()) this.schedule(name, 0);
    const kpiPoll = () => {
      this.track(this.pollKpis()).finally(() => {
        if (this.started) this.kpiTimer = setTimeout(kpiPoll, this.opts.kpiPollMs ?? 60_000);
      });
    };
    kpiPoll();
  }

  /** Stops every timer, waits for probes and deliveries under way, and saves the state. */
  async stop(): Promise<void> {
    if (!this.started) return;
    this.started = false;
    this.running.abort();
    if (this.kpiTimer) clearTimeout(this.kpiTimer);
    for (const w of this.watches.values()) this.clearTimers(w);
    while (this.tasks.size > 0) await Promise.allSettled([...this.tasks]);
    await this.uptime.flush();
    await this.persistAlerts();
  }

  /** What the rules and the dashboard are rendered from: every environment followed. */
  renderEnvs(): RenderEnv[] {
    return [...this.watches].map(([env, w]) => ({ env, tier: w.desired.tier, settings: w.settings }));
  }

  snapshot(): Record<string, EnvMonitorView> {
    const out: Record<string, EnvMonitorView> = {};
    const now = Date.now();
    for (const [name, w] of this.watches) {
      const k = this.kpis(name, w, now);
      const recent = w.latencies.map((l) => l.seconds);
      out[name] = {
        env: name,
        up: k.up,
        lastProbe: w.lastProbe ? { at: new Date(w.lastProbe.at).toISOString(), ok: w.lastProbe.ok, durationMs: w.lastProbe.durationMs, detail: describeProbe(w.lastProbe) } : null,
        uptime: Object.fromEntries(UPTIME_WINDOWS.map((win) => [win, this.uptime.ratio(name, win, now)])),
        uptimeObjective: w.settings.uptimeObjective,
        errorRate: Object.fromEntries(Object.keys(ERROR_WINDOWS).map((win) => [win, this.errorRateOf(w, win as ErrorRateWindow, now)])),
        latency: { p95: percentile(recent, 0.95), p99: percentile(recent, 0.99) },
        backup: { lastAt: w.backupAt?.toISOString() ?? null, ageSeconds: k.backupAgeSeconds },
        diskUsedRatio: w.disk,
        alerts: ALERT_NAMES.filter((a) => w.alerts[a].phase !== 'inactive').map((a) => ({
          alert: a,
          phase: w.alerts[a].phase,
          since: w.alerts[a].activeSince === null ? null : new Date(w.alerts[a].activeSince!).toISOString(),
          summary: describeAlert(name, a, w.alerts[a], w.settings),
        })),
      };
    }
    return out;
  }

  // ------------------------------------------------------------------------------ probes ---

  private schedule(name: string, delayMs: number): void {
    const w = this.watches.get(name);
    if (!w || !this.started) return;
    w.probeTimer = setTimeout(() => {
      w.probeTimer = null;
      this.track(this.probe(name, w)).finally(() => {
        if (this.watches.get(name) === w) this.schedule(name, w.settings.probeIntervalMs);
      });
    }, delayMs);
    if (!w.logTimer) {
      const poll = () => {
        this.track(this.readLog(name, w)).finally(() => {
          if (this.started && this.watches.get(name) === w) w.logTimer = setTimeout(poll, this.opts.logPollMs ?? 15_000);
        });
      };
      w.logTimer = setTimeout(poll, 0);
    }
  }

  private async probe(name: string, w: Watch): Promise<void> {
    const d = w.desired;
    const h = d.spec.odoo.health;
    let result: ProbeResult;
    try {
      result = await this.opts.drivers().probe(d.hostName, d.spec.odoo.port, h.path, parseDuration(h.timeout), d.spec.odoo.bind);
    } catch (err) {
      this.opts.log.warn(`${name}: health probe could not run: ${String(err)}`);
      return;
    }
    const at = Date.now();
    w.lastProbe = { ...result, at };
    w.latencies.push({ at, seconds: result.durationMs / 1000 });
    while (w.latencies.length > 0 && w.latencies[0]!.at <= at - ALERT_WINDOW_MS) w.latencies.shift();
    this.uptime.record(name, at, result.ok);
    const m = this.opts.metrics;
    m.envUp.set({ env: name }, result.ok ? 1 : 0);
    m.probeDuration.observe({ env: name }, result.durationMs / 1000);
    this.evaluate(name, w, at);
  }

  // -------------------------------------------------------------------------------- logs ---

  private async readLog(name: string, w: Watch): Promise<void> {
    const d = w.desired;
    try {
      const docker = this.opts.drivers().docker(d.hostName);
      const running = (await docker.containers())
        .filter((c) => c.labels[LABEL.managedBy] === 'pulser' && c.labels[LABEL.env] === name && c.labels[LABEL.service] === 'odoo' && c.state === 'running')
        .sort((a, b) => b.created - a.created)[0];
      if (!running) return;
      const now = Date.now();
      const cursor = w.logCursor?.container === running.id ? w.logCursor : null;
      // A container seen for the first time is read back one error-rate window.
      const since = cursor ? Date.parse(cursor.ts) / 1000 : (now - ERROR_WINDOWS['1h'] * MINUTE_MS) / 1000;
      const lines = parseEngineLog(await docker.logsSince(running.id, since)).filter((l) => !cursor || l.ts > cursor.ts);
      if (lines.length > 0) w.logCursor = { container: running.id, ts: lines[lines.length - 1]!.ts };
      else if (!cursor) w.logCursor = { container: running.id, ts: new Date(since * 1000).toISOString() };
      this.addRecords(w, lines.flatMap((l) => (l.record ? [l.record] : [])), now);
      this.publishErrorRates(name, w, now);
      this.evaluate(name, w, now);
    } catch (err) {
      this.opts.log.debug(`${name}: could not read the Odoo log: ${String(err)}`);
    }
  }

  private addRecords(w: Watch, records: LogRecord[], now: number): void {
    const byMinute = new Map<number, LogRecord[]>();
    for (const r of records) {
      const minute = Math.floor(Number(r.time) / MINUTE_MS);
      byMinute.set(minute, [...(byMinute.get(minute) ?? []), r]);
    }
    for (const [minute, rs] of byMinute) w.errors.set(minute, addTallies(w.errors.get(minute) ?? EMPTY_TALLY, tallyRecords(rs)));
    const oldest = Math.floor(now / MINUTE_MS) - ERROR_WINDOWS['1h'];
    for (const minute of w.errors.keys()) if (minute <= oldest) w.errors.delete(minute);
  }

  private errorRateOf(w: Watch, window: ErrorRateWindow, now: number): number | null {
    if (!w.logCursor) return null;
    const to = Math.floor(now / MINUTE_MS);
    let t = EMPTY_TALLY;
    for (const [minute, tally] of w.errors) if (minute > to - ERROR_WINDOWS[window] && minute <= to) t = addTallies(t, tally);
    return errorRate(t);
  }

  private publishErrorRates(name: string, w: Watch, now: number): void {
    for (const win of Object.keys(ERROR_WINDOWS) as ErrorRateWindow[]) {
      const r = this.errorRateOf(w, win, now);
      if (r !== null) this.opts.metrics.errorRate.set({ env: name, window: win }, r);
    }
  }

  // -------------------------------------------------------------------- backups and disk ---

  private async pollKpis(): Promise<void> {
    await Promise.all(
      [...this.watches].map(async ([name, w]) => {
        const [backup, disk] = await Promise.allSettled([this.backups.lastBackupAt(w.desired), this.disk.usedRatio(w.desired)]);
        if (backup.status === 'fulfilled') w.backupAt = backup.value;
        else this.opts.log.debug(`${name}: backup age unknown: ${String(backup.reason)}`);
        if (disk.status === 'fulfilled') w.disk = disk.value;
        else this.opts.log.debug(`${name}: disk use unknown: ${String(disk.reason)}`);
        const m = this.opts.metrics;
        if (w.disk === null) m.diskUsed.remove({ env: name });
        else m.diskUsed.set({ env: name }, w.disk);
        this.evaluate(name, w, Date.now());
      }),
    );
  }

  // ------------------------------------------------------------------------------ alerts ---

  private kpis(name: string, w: Watch, now: number): Kpis {
    const p95 = percentile(
      w.latencies.map((l) => l.seconds),
      0.95,
    );
    return {
      up: w.lastProbe ? w.lastProbe.ok : null,
      uptime: this.uptime.ratio(name, w.settings.uptimeWindow, now),
      errorRate: this.errorRateOf(w, '5m', now),
      latencyP95Seconds: p95,
      backupAgeSeconds: w.backupAt ? Math.max(0, (now - w.backupAt.getTime()) / 1000) : null,
      diskUsedRatio: w.disk,
    };
  }

  private evaluate(name: string, w: Watch, now: number): void {
    if (!this.started) return;
    const k = this.kpis(name, w, now);
    w.alerts = evaluateEnv(w.alerts, k, w.settings, now);
    const m = this.opts.metrics;
    for (const win of UPTIME_WINDOWS) {
      const r = this.uptime.ratio(name, win, now);
      if (r !== null) m.uptimeRatio.set({ env: name, window: win }, r);
    }
    m.uptimeObjective.set({ env: name }, w.settings.uptimeObjective);
    if (k.backupAgeSeconds === null) m.backupAge.remove({ env: name });
    else m.backupAge.set({ env: name }, k.backupAgeSeconds);
    for (const c of conditionsOf(k, w.settings)) {
      m.alertThreshold.set({ env: name, alert: c.alert }, c.threshold);
      m.alertFiring.set({ env: name, alert: c.alert }, w.alerts[c.alert].phase === 'firing' ? 1 : 0);
    }
    this.notify(name, w, now);
    void this.persistAlerts();
  }

  private notify(name: string, w: Watch, now: number): void {
    const hook = w.settings.webhook;
    if (!hook || now < w.retryAt) return;
    for (const alert of ALERT_NAMES) {
      const owed = owedNotification(w.alerts[alert]);
      if (!owed || w.inFlight.has(alert)) continue;
      const s = w.alerts[alert];
      const n: AlertNotification = {
        status: owed,
        alert,
        env: name,
        tier: w.desired.tier,
        severity: SEVERITY[alert],
        summary: describeAlert(name, alert, s, w.settings),
        value: s.value,
        threshold: conditionsOf(this.kpis(name, w, now), w.settings).find((c) => c.alert === alert)!.threshold,
        startsAt: new Date(s.firedAt ?? now).toISOString(),
        endsAt: owed === 'resolved' ? new Date(s.resolvedAt ?? now).toISOString() : null,
      };
      w.inFlight.add(alert);
      this.track(
        deliverNotification(hook, n, { backoffMs: this.opts.notifyBackoffMs, signal: this.running.signal })
          .then((r) => {
            if (!r.ok && this.running.signal.aborted) return;
            this.opts.metrics.alertNotifications.inc({ outcome: r.ok ? 'delivered' : 'failed' });
            if (r.ok) {
              w.alerts[alert] = { ...w.alerts[alert], notified: owed };
              this.opts.log.info(`${name}: ${alert} ${owed}, notified`);
              void this.persistAlerts();
            } else {
              w.retryAt = Date.now() + (this.opts.notifyRetryMs ?? 30_000);
              this.opts.log.warn(`${name}: ${alert} ${owed}: webhook failed after ${r.attempts} attempts (${r.error}); trying again later`, { code: 'PULSER_E_ALERT_WEBHOOK' });
            }
          })
          .finally(() => w.inFlight.delete(alert)),
      );
    }
  }

  /**
   * What a restart needs to keep its promises (phases, times, notifications sent). The measured
   * value is left out: it moves with every probe, and would make every probe a durable write.
   */
  private alertStatesJson(): string {
    const envs: Record<string, EnvAlertStates> = {};
    for (const [name, w] of [...this.watches].sort(([a], [b]) => a.localeCompare(b))) {
      envs[name] = Object.fromEntries(Object.entries(w.alerts).map(([alert, s]) => [alert, { ...s, value: null }])) as EnvAlertStates;
    }
    return JSON.stringify({ version: 1, envs });
  }

  private persistAlerts(): Promise<void> {
    this.persisting = this.persisting
      .then(async () => {
        const json = this.alertStatesJson();
        if (json === this.persisted) return;
        await writeFileAtomic(this.alertsFile, json + '\n');
        this.persisted = json;
      })
      .catch((err: unknown) => this.opts.log.warn(`could not save alert states: ${String(err)}`));
    return this.persisting;
  }

  private async readAlertStates(): Promise<Record<string, Partial<EnvAlertStates>>> {
    try {
      const data = JSON.parse(await readFile(this.alertsFile, 'utf8')) as { version?: number; envs?: Record<string, Partial<EnvAlertStates>> };
      return data.version === 1 && data.envs ? data.envs : {};
    } catch (err) {
      if (!isErrno(err, 'ENOENT')) this.opts.log.warn(`ignoring unreadable ${this.alertsFile}: ${String(err)}`);
      return {};
    }
  }

  // ----------------------------------------------------------------------------- helpers ---

  private newWatch(desired: DesiredEnv): Watch {
    return {
      desired,
      settings: alertSettings(desired),
      probeTimer: null,
      logTimer: null,
      lastProbe: null,
      latencies: [],
      errors: new Map(),
      logCursor: null,
      backupAt: null,
      disk: null,
      alerts: { ...initialStates(), ...this.loadedAlerts[desired.name] },
      inFlight: new Set(),
      retryAt: 0,
    };
  }

  private drop(name: string): void {
    const w = this.watches.get(name);
    if (w) this.clearTimers(w);
    this.watches.delete(name);
    this.uptime.forget(name);
    const m = this.opts.metrics;
    for (const g of [m.envUp, m.uptimeObjective, m.backupAge, m.diskUsed]) g.remove({ env: name });
    m.probeDuration.remove({ env: name });
    for (const win of UPTIME_WINDOWS) m.uptimeRatio.remove({ env: name, window: win });
    for (const win of Object.keys(ERROR_WINDOWS)) m.errorRate.remove({ env: name, window: win });
    for (const a of ALERT_NAMES) {
      m.alertFiring.remove({ env: name, alert: a });
      m.alertThreshold.remove({ env: name, alert: a });
    }
  }

  private clearTimers(w: Watch): void {
    if (w.probeTimer) clearTimeout(w.probeTimer);
    if (w.logTimer) clearTimeout(w.logTimer);
    w.probeTimer = null;
    w.logTimer = null;
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.tasks.add(p);
    void p.finally(() => this.tasks.delete(p)).catch(() => {});
    return p;
  }
}
