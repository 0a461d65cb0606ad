// End to end: a real Prometheus scrapes a real pulser whose environment runs a stand-in Odoo
// container. Pausing the container makes its health probe fail: the rendered rule fires in
// Prometheus, pulser's own evaluation fires and notifies the webhook once (signature checked),
// and resolves once when the container is unpaused. Every metric the rules and the dashboard
// query is checked against the same /metrics scrape.
import t from 'tap';
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { createHmac } from 'node:crypto';
import http from 'node:http';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { World, freePort, suffix } from '../helpers/world.ts';
import { metricNamesOf, sampleNamesOf } from '../helpers/promql.ts';

const run = promisify(execFile);
const HOOK_SECRET = 'hook-secret-' + suffix();
process.env.TEST_ALERT_HOOK_SECRET = HOOK_SECRET;

interface Received {
  status: string;
  alert: string;
  env: string;
  text: string;
  signatureOk: boolean;
}

async function until<T>(what: string, fn: () => Promise<T | null | undefined | false>, timeoutMs = 30_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => null);
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

t.test('a failing health endpoint fires in Prometheus and in pulser, notifies once, resolves once', async (t) => {
  const world = await World.create();
  const env = `alerts-${suffix()}`;
  const received: Received[] = [];
  const hook = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const expected = 'sha256=' + createHmac('sha256', HOOK_SECRET).update(raw).digest('hex');
      const body = JSON.parse(raw) as Received;
      received.push({ ...body, signatureOk: req.headers['x-pulser-signature'] === expected });
      res.writeHead(204).end();
    });
  });
  const hookPort = await freePort();
  await new Promise<void>((r) => hook.listen(hookPort, '127.0.0.1', r));
  const tmp = await mkdtemp(path.join(tmpdir(), 'pulser-prom-'));
  let prom: ChildProcess | null = null;
  t.teardown(async () => {
    prom?.kill('SIGKILL');
    await world.cleanup();
    hook.close();
    await rm(tmp, { recursive: true, force: true });
  });

  await world.env(env, {
    extra: [
      'alerts:',
      '  probe_interval: 250ms',
      '  uptime_window: 1h',
      '  for: { down: 1s, uptime: 1s }',
      `  webhook: { url: "http://127.0.0.1:${hookPort}/hook", secret: "\${secret:TEST_ALERT_HOOK_SECRET}", timeout: 2s, retries: 2 }`,
    ].join('\n'),
  });
  const p = world.start({
    stateDir: path.join(tmp, 'state'),
    monitor: { logPollMs: 500, kpiPollMs: 1000, backups: { lastBackupAt: async () => new Date(Date.now() - 3_600_000) } },
  });
  const [rec] = await world.pass(env);
  t.equal(rec!.outcome, 'applied', 'the stand-in Odoo container runs');
  await p.monitor.start();
  const app = p.server();
  const pulserPort = await freePort();
  await app.listen({ host: '127.0.0.1', port: pulserPort });
  t.teardown(() => app.close());
  const base = `http://127.0.0.1:${pulserPort}`;

  // The rules pulser renders pass promtool and are what Prometheus evaluates.
  const rules = await (await fetch(`${base}/api/render/alerts`)).text();
  const rulesFile = path.join(tmp, 'rules.yml');
  await writeFile(rulesFile, rules);
  const check = await run('promtool', ['check', 'rules', rulesFile]);
  t.match(check.stdout, /SUCCESS: 6 rules found/, 'promtool accepts the rendered rules');

  const promPort = await freePort();
  await writeFile(
    path.join(tmp, 'prometheus.yml'),
    [
      'global: { scrape_interval: 1s, evaluation_interval: 1s }',
      `rule_files: [${JSON.stringify(rulesFile)}]`,
      'scrape_configs:',
      `  - { job_name: pulser, static_configs: [ { targets: ["127.0.0.1:${pulserPort}"] } ] }`,
    ].join('\n'),
  );
  prom = spawn('prometheus', [`--config.file=${path.join(tmp, 'prometheus.yml')}`, `--storage.tsdb.path=${path.join(tmp, 'tsdb')}`, `--web.listen-address=127.0.0.1:${promPort}`], { stdio: 'ignore' });
  const promApi = `http://127.0.0.1:${promPort}/api/v1`;
  const promQuery = async (q: string) => {
    const res = (await (await fetch(`${promApi}/query?query=${encodeURIComponent(q)}`, { signal: AbortSignal.timeout(2000) })).json()) as { data: { result: { value: [number, string] }[] } };
    return res.data.result;
  };
  await until('Prometheus to scrape pulser_env_up == 1', async () => (await promQuery(`pulser_env_up{env="${env}"} == 1`)).length === 1);
  t.pass('Prometheus scrapes pulser and sees the environment up');

  const container = world.docker.getContainer((await world.containersOf(env))[0]!.Id);
  await container.pause();
  const promAlerts = async () =>
    ((await (await fetch(`${promApi}/alerts`, { signal: AbortSignal.timeout(2000) })).json()) as { data: { alerts: { labels: Record<string, string>; state: string }[] } }).data.alerts;
  const firingInProm = await until('PulserEnvDown to fire in Prometheus', async () =>
    (await promAlerts()).find((a) => a.labels.alertname === 'PulserEnvDown' && a.labels.env === env && a.state === 'firing'),
  );
  t.equal(firingInProm.labels.severity, 'critical', 'Prometheus fires PulserEnvDown from the rendered rule');
  const fired = await until('pulser to notify PulserEnvDown firing', async () => received.find((r) => r.alert === 'PulserEnvDown' && r.status === 'firing'));
  t.ok(fired.signatureOk, 'the notification carries a valid X-Pulser-Signature');
  t.match(fired.text, /^\[FIRING\] PulserEnvDown /, 'the notification has a Slack-style text');
  t.equal(fired.env, env);
  const status = (await (await fetch(`${base}/api/status`)).json()) as { monitor: Record<string, { up: boolean; alerts: { alert: string; phase: string }[] }> };
  t.equal(status.monitor[env]!.up, false, '/api/status reports the environment down');
  t.ok(status.monitor[env]!.alerts.some((a) => a.alert === 'PulserEnvDown' && a.phase === 'firing'), '/api/status lists the firing alert');
  t.match(await (await fetch(`${base}/metrics`)).text(), new RegExp(`pulser_alert_firing\\{env="${env}",alert="PulserEnvDown"\\} 1`), '/metrics exports the firing alert');

  await container.unpause();
  await until('pulser to notify PulserEnvDown resolved', async () => received.find((r) => r.alert === 'PulserEnvDown' && r.status === 'resolved'));
  await until('PulserEnvDown to leave Prometheus', async () => !(await promAlerts()).some((a) => a.labels.alertname === 'PulserEnvDown' && a.labels.env === env));
  // Several more probes and evaluations with the state unchanged send nothing new.
  await new Promise((r) => setTimeout(r, 1500));
  const down = received.filter((r) => r.alert === 'PulserEnvDown');
  t.same(
    down.map((r) => r.status),
    ['firing', 'resolved'],
    'exactly one firing and one resolved notification',
  );
  t.ok(
    received.every((r) => r.signatureOk),
    'every notification is signed',
  );
  t.ok(received.filter((r) => r.alert === 'PulserUptimeLow' && r.status === 'firing').length <= 1, 'uptime alert notified at most once');

  // Every metric a rule or a dashboard panel queries is in a real scrape.
  const exposition = await (await fetch(`${base}/metrics`)).text();
  const present = sampleNamesOf(exposition);
  const dashboard = (await (await fetch(`${base}/api/render/dashboard`)).json()) as { panels: { title: string; targets: { expr: string }[] }[] };
  const exprs = [
    ...[...rules.matchAll(/^\s+expr: (.+)$/gm)].map((m) => ({ where: 'rule', expr: m[1]! })),
    ...dashboard.panels.flatMap((p) => p.targets.map((tg) => ({ where: `panel ${p.title}`, expr: tg.expr }))),
  ];
  t.equal(exprs.filter((e) => e.where === 'rule').length, 6, 'six rule expressions extracted');
  t.ok(exprs.length > 15, 'dashboard expressions extracted');
  for (const e of exprs) {
    const names = metricNamesOf(e.expr);
    t.ok(names.length > 0, `${e.where}: references a metric`);
    for (const n of names) t.ok(present.has(n), `${e.where}: ${n} is in /metrics`);
  }
});
