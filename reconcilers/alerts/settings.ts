// An environment's `alerts` section with every default applied and durations in milliseconds:
// the one shape the renderer, the evaluator and the monitor read.
import { parseDuration } from '../../src/core/duration.ts';
import type { Alerts } from '../../src/spec/types.gen.ts';
import type { DesiredEnv } from '../../src/spec/model.ts';

export const ALERT_NAMES = ['PulserEnvDown', 'PulserUptimeLow', 'PulserErrorRateHigh', 'PulserLatencyHigh', 'PulserBackupStale', 'PulserDiskFull'] as const;
export type AlertName = (typeof ALERT_NAMES)[number];

export const UPTIME_WINDOWS = ['1h', '24h', '30d'] as const;
export type UptimeWindow = (typeof UPTIME_WINDOWS)[number];
export type ErrorRateWindow = '5m' | '1h';
/** Window of the latency percentiles and of the error rate the alerts compare. */
export const ALERT_WINDOW_MS = 5 * 60_000;

/** The defaults the schema documents (a unit test keeps both equal). */
export const ALERT_DEFAULTS = {
  enabled: true,
  probe_interval: '15s',
  uptime_objective: 0.995,
  uptime_min: 0.99,
  uptime_window: '24h',
  error_rate_max: 0.05,
  latency_p95_max: '2s',
  backup_age_max: '26h',
  disk_used_max: 0.85,
  for: { down: '1m', uptime: '5m', error_rate: '5m', latency: '5m', backup: '0s', disk: '10m' },
  webhook: { timeout: '5s', retries: 3 },
} as const;

export interface WebhookSettings {
  url: string;
  secret: string | null;
  timeoutMs: number;
  retries: number;
}

export interface AlertSettings {
  enabled: boolean;
  probeIntervalMs: number;
  uptimeObjective: number;
  uptimeMin: number;
  uptimeWindow: UptimeWindow;
  errorRateMax: number;
  latencyP95MaxMs: number;
  backupAgeMaxMs: number;
  diskUsedMax: number;
  forMs: Record<AlertName, number>;
  webhook: WebhookSettings | null;
}

export function alertSettingsOf(alerts: Alerts | undefined): AlertSettings {
  const a = alerts ?? {};
  const d = ALERT_DEFAULTS;
  const f = a.for ?? {};
  return {
    enabled: a.enabled ?? d.enabled,
    probeIntervalMs: parseDuration(a.probe_interval ?? d.probe_interval),
    uptimeObjective: a.uptime_objective ?? d.uptime_objective,
    uptimeMin: a.uptime_min ?? d.uptime_min,
    uptimeWindow: a.uptime_window ?? d.uptime_window,
    errorRateMax: a.error_rate_max ?? d.error_rate_max,
    latencyP95MaxMs: parseDuration(a.latency_p95_max ?? d.latency_p95_max),
    backupAgeMaxMs: parseDuration(a.backup_age_max ?? d.backup_age_max),
    diskUsedMax: a.disk_used_max ?? d.disk_used_max,
    forMs: {
      PulserEnvDown: parseDuration(f.down ?? d.for.down),
      PulserUptimeLow: parseDuration(f.uptime ?? d.for.uptime),
      PulserErrorRateHigh: parseDuration(f.error_rate ?? d.for.error_rate),
      PulserLatencyHigh: parseDuration(f.latency ?? d.for.latency),
      PulserBackupStale: parseDuration(f.backup ?? d.for.backup),
      PulserDiskFull: parseDuration(f.disk ?? d.for.disk),
    },
    webhook: a.webhook
      ? {
          url: a.webhook.url,
          secret: a.webhook.secret ?? null,
          timeoutMs: parseDuration(a.webhook.timeout ?? d.webhook.timeout),
          retries: a.webhook.retries ?? d.webhook.retries,
        }
      : null,
  };
}

export function alertSettings(desired: DesiredEnv): AlertSettings {
  return alertSettingsOf(desired.spec.alerts);
}
