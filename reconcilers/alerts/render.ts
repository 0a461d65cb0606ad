// The `alerts` thresholds of every environment rendered for Prometheus (alerting rules) and
// Grafana (a dashboard). Pure: the same environments give byte-for-byte the same output.
import { stringify } from 'yaml';
import type { AlertName, AlertSettings } from './settings.ts';
import { ALERT_WINDOW_MS } from './settings.ts';

export interface RenderEnv {
  env: string;
  tier: string;
  settings: AlertSettings;
}

/** A duration in Prometheus notation (`90s`, `5m`, `26h`, `500ms`). */
export function promDuration(ms: number): string {
  if (ms === 0) return '0s';
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

/** A number as PromQL reads it, without float noise (0.1 + 0.2 style). */
function num(x: number): string {
  return String(Number(x.toPrecision(12)));
}

export const SEVERITY: Record<AlertName, 'critical' | 'warning'> = {
  PulserEnvDown: 'critical',
  PulserUptimeLow: 'warning',
  PulserErrorRateHigh: 'warning',
  PulserLatencyHigh: 'warning',
  PulserBackupStale: 'critical',
  PulserDiskFull: 'warning',
};

interface Rule {
  alert: AlertName;
  expr: string;
  for: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

const WINDOW = promDuration(ALERT_WINDOW_MS);

function rulesOf(e: RenderEnv): Rule[] {
  const s = e.settings;
  const sel = `env="${e.env}"`;
  const rule = (alert: AlertName, expr: string, summary: string): Rule => ({
    alert,
    expr,
    for: promDuration(s.forMs[alert]),
    labels: { severity: SEVERITY[alert], env: e.env, tier: e.tier },
    annotations: { summary },
  });
  return [
    rule('PulserEnvDown', `pulser_env_up{${sel}} == 0`, `${e.env}: the health probe fails`),
    rule('PulserUptimeLow', `pulser_uptime_ratio{${sel},window="${s.uptimeWindow}"} < ${num(s.uptimeMin)}`, `${e.env}: uptime over ${s.uptimeWindow} is {{ $value | humanizePercentage }}, under ${num(s.uptimeMin * 100)}%`),
    rule('PulserErrorRateHigh', `pulser_error_rate{${sel},window="${WINDOW}"} > ${num(s.errorRateMax)}`, `${e.env}: error rate over ${WINDOW} is {{ $value | humanizePercentage }}, above ${num(s.errorRateMax * 100)}%`),
    rule(
      'PulserLatencyHigh',
      `histogram_quantile(0.95, sum by (le) (rate(pulser_probe_duration_seconds_bucket{${sel}}[${WINDOW}]))) > ${num(s.latencyP95MaxMs / 1000)}`,
      `${e.env}: probe latency p95 is {{ $value | humanizeDuration }}, above ${promDuration(s.latencyP95MaxMs)}`,
    ),
    rule('PulserBackupStale', `pulser_backup_age_seconds{${sel}} > ${num(s.backupAgeMaxMs / 1000)}`, `${e.env}: the last backup is {{ $value | humanizeDuration }} old, more than ${promDuration(s.backupAgeMaxMs)}`),
    rule('PulserDiskFull', `pulser_disk_used_ratio{${sel}} > ${num(s.diskUsedMax)}`, `${e.env}: host disk {{ $value | humanizePercentage }} used, above ${num(s.diskUsedMax * 100)}%`),
  ];
}

/** Prometheus rule file: one group per environment whose alerts are enabled. */
export function renderAlertRules(envs: readonly RenderEnv[]): string {
  const groups = [...envs]
    .filter((e) => e.settings.enabled)
    .sort((a, b) => a.env.localeCompare(b.env))
    .map((e) => ({ name: `pulser-${e.env}`, rules: rulesOf(e) }));
  return '# Rendered by `pulser render alerts` from environments/*.yaml (alerts section). Do not edit.\n' + stringify({ groups }, { lineWidth: 0 });
}

// ------------------------------------------------------------------------------ dashboard ---

const DS = { type: 'prometheus', uid: '${datasource}' };

interface Target {
  expr: string;
  legendFormat: string;
}

interface PanelSpec {
  title: string;
  type: 'stat' | 'timeseries' | 'table';
  unit: string;
  targets: Target[];
  description: string;
  w?: number;
}

const t = (expr: string, legendFormat: string): Target => ({ expr, legendFormat });
const E = 'env=~"$env"';

/** Every panel queries metrics pulser exports itself; a test checks each name against /metrics. */
export const DASHBOARD_PANELS: readonly PanelSpec[] = [
  { title: 'Up', type: 'stat', unit: 'bool_on_off', description: '1 when the last health probe answered 2xx.', targets: [t(`pulser_env_up{${E}}`, '{{env}}')] },
  { title: 'In sync', type: 'stat', unit: 'bool_yes_no', description: 'The last pass left no drift and no error.', targets: [t(`pulser_in_sync{${E}}`, '{{env}}')] },
  { title: 'Firing alerts', type: 'table', unit: 'none', description: 'Alerts pulser evaluates itself (pending → firing with the `for` of the spec).', targets: [t(`pulser_alert_firing{${E}} == 1`, '{{env}} {{alert}}')] },
  {
    title: 'Uptime',
    type: 'timeseries',
    unit: 'percentunit',
    description: 'Share of successful probes over rolling windows, against the uptime objective and the alert threshold.',
    w: 24,
    targets: [
      t(`pulser_uptime_ratio{${E}}`, '{{env}} {{window}}'),
      t(`pulser_uptime_objective{${E}}`, '{{env}} objective'),
      t(`pulser_alert_threshold{${E},alert="PulserUptimeLow"}`, '{{env}} alert under'),
    ],
  },
  {
    title: 'Probe latency p95 / p99',
    type: 'timeseries',
    unit: 's',
    description: 'Health probe duration percentiles over 5 minutes.',
    targets: [
      t(`histogram_quantile(0.95, sum by (env, le) (rate(pulser_probe_duration_seconds_bucket{${E}}[${WINDOW}])))`, '{{env}} p95'),
      t(`histogram_quantile(0.99, sum by (env, le) (rate(pulser_probe_duration_seconds_bucket{${E}}[${WINDOW}])))`, '{{env}} p99'),
      t(`pulser_alert_threshold{${E},alert="PulserLatencyHigh"}`, '{{env}} alert above'),
    ],
  },
  {
    title: 'Error rate',
    type: 'timeseries',
    unit: 'percentunit',
    description: '(5xx requests + error records) / (requests + error records), from the Odoo log.',
    targets: [t(`pulser_error_rate{${E}}`, '{{env}} {{window}}'), t(`pulser_alert_threshold{${E},alert="PulserErrorRateHigh"}`, '{{env}} alert above')],
  },
  {
    title: 'Backup age',
    type: 'timeseries',
    unit: 's',
    description: 'Time since the last successful backup.',
    targets: [t(`pulser_backup_age_seconds{${E}}`, '{{env}}'), t(`pulser_alert_threshold{${E},alert="PulserBackupStale"}`, '{{env}} alert above')],
  },
  {
    title: 'Host disk used',
    type: 'timeseries',
    unit: 'percentunit',
    description: 'Used share of the disk of the host the environment runs on.',
    targets: [t(`pulser_disk_used_ratio{${E}}`, '{{env}}'), t(`pulser_alert_threshold{${E},alert="PulserDiskFull"}`, '{{env}} alert above')],
  },
  {
    title: 'Drift',
    type: 'timeseries',
    unit: 'none',
    description: 'Pending changes found by the last pass.',
    targets: [t(`sum by (env) (pulser_drift{${E}})`, '{{env}}')],
  },
  {
    title: 'Reconcile duration p95',
    type: 'timeseries',
    unit: 's',
    description: 'Duration of passes, 95th percentile over 15 minutes.',
    targets: [t(`histogram_quantile(0.95, sum by (env, le) (rate(pulser_reconcile_duration_seconds_bucket{${E}}[15m])))`, '{{env}}')],
  },
  {
    title: 'Alert notifications',
    type: 'timeseries',
    unit: 'none',
    description: 'Webhook deliveries by outcome.',
    targets: [t('sum by (outcome) (increase(pulser_alert_notifications_total[1h]))', '{{outcome}}')],
  },
];

/** Grafana dashboard JSON (schema 39), importable as is; pick the Prometheus data source on import. */
export function renderDashboard(envs: readonly RenderEnv[]): Record<string, unknown> {
  let x = 0;
  let y = 0;
  const panels = DASHBOARD_PANELS.map((p, i) => {
    const w = p.w ?? (p.type === 'timeseries' ? 12 : 8);
    const h = p.type === 'timeseries' ? 8 : 5;
    if (x + w > 24) {
      x = 0;
      y += 8;
    }
    const gridPos = { x, y, w, h };
    x += w;
    return {
      id: i + 1,
      type: p.type,
      title: p.title,
      description: p.description,
      datasource: DS,
      gridPos,
      fieldConfig: { defaults: { unit: p.unit }, overrides: [] },
      options: {},
      targets: p.targets.map((tg, j) => ({ refId: String.fromCharCode(65 + j), datasource: DS, expr: tg.expr, legendFormat: tg.legendFormat })),
    };
  });
  const names = [...envs].map((e) => e.env).sort();
  return {
    title: 'pulser',
    uid: 'pulser-overview',
    tags: ['pulser', 'odoo'],
    timezone: 'browser',
    schemaVersion: 39,
    version: 1,
    refresh: '30s',
    time: { from: 'now-24h', to: 'now' },
    templating: {
      list: [
        { name: 'datasource', type: 'datasource', query: 'prometheus', label: 'Prometheus' },
        {
          name: 'env',
          type: 'custom',
          label: 'Environment',
          multi: true,
          includeAll: true,
          allValue: '.*',
          current: { text: 'All', value: '$__all' },
          query: names.join(','),
          options: names.map((n) => ({ text: n, value: n, selected: false })),
        },
      ],
    },
    panels,
  };
}
