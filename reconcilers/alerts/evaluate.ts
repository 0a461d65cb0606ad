// Alert evaluation as a pure state machine, like Prometheus: a condition that holds makes its
// alert pending, and firing once it has held for the alert's `for` duration; a condition that
// stops holding makes it inactive. Which notification is owed follows from the state and the
// last notification delivered, so a restart with the persisted states sends nothing twice.
import type { AlertName, AlertSettings } from './settings.ts';
import { ALERT_NAMES, ALERT_WINDOW_MS } from './settings.ts';

export type AlertPhase = 'inactive' | 'pending' | 'firing';
export type Notified = 'firing' | 'resolved' | null;

export interface AlertState {
  phase: AlertPhase;
  /** when the condition started to hold (pending/firing), unix ms */
  activeSince: number | null;
  /** when it fired, unix ms */
  firedAt: number | null;
  /** when it last stopped firing, unix ms */
  resolvedAt: number | null;
  value: number | null;
  /** the last notification delivered */
  notified: Notified;
}

export const INACTIVE: AlertState = { phase: 'inactive', activeSince: null, firedAt: null, resolvedAt: null, value: null, notified: null };

/** What pulser measured for one environment; null is "unknown": it neither fires nor resolves anything. */
export interface Kpis {
  up: boolean | null;
  uptime: number | null;
  errorRate: number | null;
  latencyP95Seconds: number | null;
  backupAgeSeconds: number | null;
  diskUsedRatio: number | null;
}

export interface Condition {
  alert: AlertName;
  holds: boolean;
  value: number | null;
  threshold: number;
}

/** Each alert's condition, compared the way the rendered Prometheus rule compares it. */
export function conditionsOf(k: Kpis, s: AlertSettings): Condition[] {
  const gt = (alert: AlertName, v: number | null, t: number): Condition => ({ alert, holds: v !== null && v > t, value: v, threshold: t });
  return [
    { alert: 'PulserEnvDown', holds: k.up === false, value: k.up === null ? null : k.up ? 1 : 0, threshold: 0 },
    { alert: 'PulserUptimeLow', holds: k.uptime !== null && k.uptime < s.uptimeMin, value: k.uptime, threshold: s.uptimeMin },
    gt('PulserErrorRateHigh', k.errorRate, s.errorRateMax),
    gt('PulserLatencyHigh', k.latencyP95Seconds, s.latencyP95MaxMs / 1000),
    gt('PulserBackupStale', k.backupAgeSeconds, s.backupAgeMaxMs / 1000),
    gt('PulserDiskFull', k.diskUsedRatio, s.diskUsedMax),
  ];
}

export function stepAlert(prev: AlertState, c: Condition, forMs: number, now: number): AlertState {
  // An unknown value (no probe yet after a restart, the log not read yet) is no evidence either
  // way: the alert stays where it was instead of resolving and firing again.
  if (c.value === null && prev.phase !== 'inactive') return prev;
  if (!c.holds) return deactivate(prev, c.value, now);
  const since = prev.phase === 'inactive' ? now : (prev.activeSince ?? now);
  if (prev.phase === 'firing') return { ...prev, value: c.value };
  if (now - since >= forMs) return { ...prev, phase: 'firing', activeSince: since, firedAt: now, value: c.value };
  return { ...prev, phase: 'pending', activeSince: since, value: c.value };
}

function deactivate(prev: AlertState, value: number | null, now: number): AlertState {
  if (prev.phase === 'inactive') return { ...prev, value };
  return { ...prev, phase: 'inactive', activeSince: null, value, resolvedAt: prev.phase === 'firing' ? now : prev.resolvedAt };
}

/** The notification the state calls for and that was not yet delivered, if any. */
export function owedNotification(s: AlertState): 'firing' | 'resolved' | null {
  if (s.phase === 'firing') return s.notified === 'firing' ? null : 'firing';
  return s.notified === 'firing' ? 'resolved' : null;
}

export type EnvAlertStates = Record<AlertName, AlertState>;

export function initialStates(): EnvAlertStates {
  return Object.fromEntries(ALERT_NAMES.map((a) => [a, { ...INACTIVE }])) as EnvAlertStates;
}

/** One evaluation of every alert of an environment; disabling alerts resolves the firing ones. */
export function evaluateEnv(prev: EnvAlertStates, kpis: Kpis, settings: AlertSettings, now: number): EnvAlertStates {
  const next = { ...prev };
  for (const c of conditionsOf(kpis, settings)) {
    const before = prev[c.alert] ?? { ...INACTIVE };
    next[c.alert] = settings.enabled ? stepAlert(before, c, settings.forMs[c.alert], now) : deactivate(before, c.value, now);
  }
  return next;
}

/** Human text of an alert, used in the notification's `text` and the status page. */
export function describeAlert(env: string, alert: AlertName, s: AlertState, settings: AlertSettings): string {
  const v = s.value;
  const pct = (x: number | null) => (x === null ? 'unknown' : `${(x * 100).toFixed(2)}%`);
  const window = `${ALERT_WINDOW_MS / 60_000}m`;
  switch (alert) {
    case 'PulserEnvDown':
      return `${env}: the health probe fails`;
    case 'PulserUptimeLow':
      return `${env}: uptime over ${settings.uptimeWindow} is ${pct(v)}, under ${pct(settings.uptimeMin)}`;
    case 'PulserErrorRateHigh':
      return `${env}: error rate over ${window} is ${pct(v)}, above ${pct(settings.errorRateMax)}`;
    case 'PulserLatencyHigh':
      return `${env}: probe latency p95 over ${window} is ${v === null ? 'unknown' : `${v.toFixed(3)}s`}, above ${settings.latencyP95MaxMs / 1000}s`;
    case 'PulserBackupStale':
      return `${env}: last backup is ${v === null ? 'unknown' : `${(v / 3600).toFixed(1)}h`} old, more than ${settings.backupAgeMaxMs / 3_600_000}h`;
    case 'PulserDiskFull':
      return `${env}: host disk ${pct(v)} used, above ${pct(settings.diskUsedMax)}`;
  }
}
