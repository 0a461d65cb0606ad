// Goldens of the rendered Prometheus rules and Grafana dashboard, the schema defaults against
// the code's, and the spec checks of the alerts section.
import t, { type Test } from 'tap';
import { readFile } from 'node:fs/promises';
import { alertSettingsOf, renderAlertRules, renderDashboard, promDuration, ALERT_DEFAULTS, DASHBOARD_PANELS, type RenderEnv } from '../../reconcilers/alerts/index.ts';
import { HOSTS_YAML } from '../helpers/builders.ts';
import { loadSpecs } from '../../src/spec/load.ts';
import { SecretSource } from '../../src/spec/secrets.ts';
import { metricNamesOf } from '../helpers/promql.ts';

const envs: RenderEnv[] = [
  { env: 'staging', tier: 'staging', settings: alertSettingsOf({ uptime_min: 0.995, error_rate_max: 0.1, latency_p95_max: '1500ms', for: { down: '30s' } }) },
  { env: 'production', tier: 'production', settings: alertSettingsOf(undefined) },
  { env: 'preview-1', tier: 'preview', settings: alertSettingsOf({ enabled: false }) },
];

t.test('Prometheus rules golden', async (t) => {
  const text = renderAlertRules(envs);
  t.equal(text, renderAlertRules([...envs].reverse()), 'order of the input does not matter');
  t.equal(
    text,
    `# Rendered by \`pulser render alerts\` from environments/*.yaml (alerts section). Do not edit.
groups:
  - name: pulser-production
    rules:
      - alert: PulserEnvDown
        expr: pulser_env_up{env="production"} == 0
        for: 1m
        labels:
          severity: critical
          env: production
          tier: production
        annotations:
          summary: "production: the health probe fails"
      - alert: PulserUptimeLow
        expr: pulser_uptime_ratio{env="production",window="24h"} < 0.99
        for: 5m
        labels:
          severity: warning
          env: production
          tier: production
        annotations:
          summary: "production: uptime over 24h is {{ $value | humanizePercentage }}, under 99%"
      - alert: PulserErrorRateHigh
        expr: pulser_error_rate{env="production",window="5m"} > 0.05
        for: 5m
        labels:
          severity: warning
          env: production
          tier: production
        annotations:
          summary: "production: error rate over 5m is {{ $value | humanizePercentage }}, above 5%"
      - alert: PulserLatencyHigh
        expr: histogram_quantile(0.95, sum by (le) (rate(pulser_probe_duration_seconds_bucket{env="production"}[5m]))) > 2
        for: 5m
        labels:
          severity: warning
          env: production
          tier: production
        annotations:
          summary: "production: probe latency p95 is {{ $value | humanizeDuration }}, above 2s"
      - alert: PulserBackupStale
        expr: pulser_backup_age_seconds{env="production"} > 93600
        for: 0s
        labels:
          severity: critical
          env: production
          tier: production
        annotations:
          summary: "production: the last backup is {{ $value | humanizeDuration }} old, more than 26h"
      - alert: PulserDiskFull
        expr: pulser_disk_used_ratio{env="production"} > 0.85
        for: 10m
        labels:
          severity: warning
          env: production
          tier: production
        annotations:
          summary: "production: host disk {{ $value | humanizePercentage }} used, above 85%"
  - name: pulser-staging
    rules:
      - alert: PulserEnvDown
        expr: pulser_env_up{env="staging"} == 0
        for: 30s
        labels:
          severity: critical
          env: staging
          tier: staging
        annotations:
          summary: "staging: the health probe fails"
      - alert: PulserUptimeLow
        expr: pulser_uptime_ratio{env="staging",window="24h"} < 0.995
        for: 5m
        labels:
          severity: warning
          env: staging
          tier: staging
        annotations:
          summary: "staging: uptime over 24h is {{ $value | humanizePercentage }}, under 99.5%"
      - alert: PulserErrorRateHigh
        expr: pulser_error_rate{env="staging",window="5m"} > 0.1
        for: 5m
        labels:
          severity: warning
          env: staging
          tier: staging
        annotations:
          summary: "staging: error rate over 5m is {{ $value | humanizePercentage }}, above 10%"
      - alert: PulserLatencyHigh
        expr: histogram_quantile(0.95, sum by (le) (rate(pulser_probe_duration_seconds_bucket{env="staging"}[5m]))) > 1.5
        for: 5m
        labels:
          severity: warning
          env: staging
          tier: staging
        annotations:
          summary: "staging: probe latency p95 is {{ $value | humanizeDuration }}, above 1500ms"
      - alert: PulserBackupStale
        expr: pulser_backup_age_seconds{env="staging"} > 93600
        for: 0s
        labels:
          severity: critical
          env: staging
          tier: staging
        annotations:
          summary: "staging: the last backup is {{ $value | humanizeDuration }} old, more than 26h"
      - alert: PulserDiskFull
        expr: pulser_disk_used_ratio{env="staging"} > 0.85
        for: 10m
        labels:
          severity: warning
          env: staging
          tier: staging
        annotations:
          summary: "staging: host disk {{ $value | humanizePercentage }} used, above 85%"
`,
  );
});

t.test('dashboard golden', async (t) => {
  const d = renderDashboard(envs) as { uid: string; panels: { id: number; title: string; gridPos: { x: number; y: number; w: number }; targets: { expr: string }[] }[]; templating: { list: { name: string; query: string }[] } };
  t.same(JSON.parse(JSON.stringify(d)), JSON.parse(JSON.stringify(renderDashboard([...envs].reverse()))), 'pure and order-independent');
  t.equal(d.uid, 'pulser-overview');
  t.equal(d.templating.list.find((v) => v.name === 'env')!.query, 'preview-1,production,staging');
  t.same(
    d.panels.map((p) => p.title),
    ['Up', 'In sync', 'Firing alerts', 'Uptime', 'Probe latency p95 / p99', 'Error rate', 'Backup age', 'Host disk used', 'Drift', 'Reconcile duration p95', 'Alert notifications'],
  );
  for (const p of d.panels) t.ok(p.gridPos.x + p.gridPos.w <= 24, `${p.title} fits the 24-column grid`);
  t.same(d.panels[4]!.targets.map((x) => x.expr), [
    'histogram_quantile(0.95, sum by (env, le) (rate(pulser_probe_duration_seconds_bucket{env=~"$env"}[5m])))',
    'histogram_quantile(0.99, sum by (env, le) (rate(pulser_probe_duration_seconds_bucket{env=~"$env"}[5m])))',
    'pulser_alert_threshold{env=~"$env",alert="PulserLatencyHigh"}',
  ]);
  t.equal(DASHBOARD_PANELS.length, d.panels.length);
});

t.test('metric names are extracted from PromQL, not guessed', async (t) => {
  t.same(metricNamesOf('histogram_quantile(0.95, sum by (env, le) (rate(pulser_x_bucket{env=~"a|b",le="0.5"}[5m]))) > 2.5e3'), ['pulser_x_bucket']);
  t.same(metricNamesOf('a_metric{x="other_metric"} / on (env) group_left b_metric offset 5m and bool c'), ['a_metric', 'b_metric', 'c']);
  t.same(metricNamesOf('time() - pulser_y'), ['pulser_y']);
});

t.test('durations in Prometheus notation', async (t) => {
  t.same([0, 500, 1000, 90_000, 60_000, 3_600_000, 93_600_000].map(promDuration), ['0s', '500ms', '1s', '90s', '1m', '1h', '26h']);
});

t.test('schema defaults are the code defaults', async (t) => {
  const schema = JSON.parse(await readFile(new URL('../../schema/environment.schema.json', import.meta.url), 'utf8')) as {
    definitions: { alerts: { properties: Record<string, { default?: unknown; properties?: Record<string, { default?: unknown }> }> } };
  };
  const props = schema.definitions.alerts.properties;
  for (const [k, v] of Object.entries(ALERT_DEFAULTS)) {
    if (typeof v === 'object') {
      for (const [kk, vv] of Object.entries(v)) t.equal(props[k]!.properties![kk]!.default, vv, `${k}.${kk}`);
    } else t.equal(props[k]!.default, v, k);
  }
});

async function loadWith(t: Test, alerts: string) {
  const root = t.testdir({ environments: { 'hosts.yaml': HOSTS_YAML, 'staging.yaml': `name: staging\ntier: staging\nhost: local\nodoo: { image: "odoo:17.0", port: 18070 }\ndatabase: { name: db, host: h, user: u }\n${alerts}\n` }, ops: { kv: {} } });
  const snap = await loadSpecs(root, { secrets: new SecretSource({ env: { HOOK: 'hook-secret-value' } }) });
  return snap.envs.get('staging')!;
}

t.test('spec: alerts section validated, webhook secret masked', async (t) => {
  const ok = await loadWith(t, 'alerts:\n  uptime_min: 0.98\n  webhook: { url: "https://hooks.example.com/x", secret: "${secret:HOOK}" }');
  if (!ok.ok) throw new Error(ok.errors.map(String).join('\n'));
  t.equal(ok.desired.spec.alerts!.webhook!.secret, 'hook-secret-value');
  t.equal(ok.desired.masked.alerts!.webhook!.secret, '${secret:HOOK}', 'the masked spec shows the reference');
  t.ok(ok.desired.secretPaths.includes('alerts.webhook.secret'));
  t.equal(alertSettingsOf(ok.desired.spec.alerts).uptimeMin, 0.98);

  const bad = await loadWith(t, 'alerts:\n  uptime_min: 1.5\n  probe_interval: 10ms\n  uptime_window: 7d\n  webhook: { url: "ftp://x" }');
  t.equal(bad.ok, false);
  const msgs = bad.ok ? [] : bad.errors.map((e) => `${e.code} ${e.message}`);
  t.match(msgs.join('\n'), /PULSER_E_SPEC_INVALID alerts\.uptime_min: must be <= 1/);
  t.match(msgs.join('\n'), /alerts\.probe_interval: must be between 100ms and 1h/);
  t.match(msgs.join('\n'), /alerts\.uptime_window/);
  t.match(msgs.join('\n'), /alerts\.webhook\.url/);
});
