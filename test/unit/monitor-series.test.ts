// The monitoring series' text format: what a scrape of them looks like, checked by promtool's
// own parser and linter, with label values that need escaping.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { Metrics } from '../../src/metrics.ts';

t.test('monitoring series pass promtool check metrics', async (t) => {
  const m = new Metrics({ processMetrics: false });
  m.envUp.set({ env: 'shop' }, 1);
  m.envUp.set({ env: 'qa' }, 0);
  m.envUp.remove({ env: 'qa' });
  for (const v of [0.004, 0.02, 0.02, 30]) m.probeDuration.observe({ env: 'shop' }, v);
  m.uptimeRatio.set({ env: 'shop', window: '24h' }, 0.75);
  m.alertFiring.set({ env: 'we"ird\\name', alert: 'PulserEnvDown' }, 1);
  m.backupAge.set({ env: 'shop' }, Infinity);
  const text = await m.exposition();
  const check = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 20_000 });
  t.equal(check.status, 0, `promtool: ${check.stdout}${check.stderr}`);
  // four observations: 0.004 ≤ 0.005; two of 0.02 ≤ 0.025; 30 only in +Inf
  t.match(text, 'pulser_probe_duration_seconds_bucket{env="shop",le="0.005"} 1\n');
  t.match(text, 'pulser_probe_duration_seconds_bucket{env="shop",le="0.01"} 1\n');
  t.match(text, 'pulser_probe_duration_seconds_bucket{env="shop",le="0.025"} 3\n');
  t.match(text, 'pulser_probe_duration_seconds_bucket{env="shop",le="10"} 3\n');
  t.match(text, 'pulser_probe_duration_seconds_bucket{env="shop",le="+Inf"} 4\n');
  t.match(text, 'pulser_probe_duration_seconds_sum{env="shop"} 30.044\n');
  t.match(text, 'pulser_probe_duration_seconds_count{env="shop"} 4\n');
  t.match(text, 'pulser_alert_firing{env="we\\"ird\\\\name",alert="PulserEnvDown"} 1\n');
  t.match(text, 'pulser_backup_age_seconds{env="shop"} +Inf\n');
  t.notMatch(text, /env="qa"/, 'a removed series is gone');
});
