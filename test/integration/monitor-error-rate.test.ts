// The error-rate KPI from a real container's log: a stand-in Odoo writes werkzeug access lines
// and ERROR records in Odoo's format; pulser reads them through the Docker engine (only lines it
// has not read yet), exports pulser_error_rate and fires PulserErrorRateHigh.
import t from 'tap';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { World, suffix } from '../helpers/world.ts';

// Ten cycles of: three 200s, one 500 (with its odoo.http traceback record, which must not count
// twice), one 404, one cron ERROR and one WARNING. Per cycle: 5 requests, 1 failed, 1 error
// record outside requests → (10·1 + 10·1) / (10·5 + 10·1) = 20/60 = 1/3.
const SCRIPT = `
req() { echo "$t 7 INFO db werkzeug: 127.0.0.1 - - [01/May/2024 10:00:00] \\"GET /web HTTP/1.1\\" $1 - 3 0.001 0.003" >&2; }
i=0
while [ $i -lt 10 ]; do
  t=$(date -u '+%Y-%m-%d %H:%M:%S,000')
  req 200; req 200; req 200
  echo "$t 7 ERROR db odoo.http: Exception during request handling." >&2
  req 500; req 404
  echo "$t 7 ERROR db odoo.addons.base.models.ir_cron: Call from cron failed" >&2
  echo "$t 7 WARNING db odoo.models: slow query" >&2
  i=$((i+1)); sleep 0.1
done
exec httpd -f -p 0.0.0.0:8069 -h /www
`;

t.test('error rate read from the Odoo log of the running container', async (t) => {
  const world = await World.create();
  const tmp = await mkdtemp(path.join(tmpdir(), 'pulser-errrate-'));
  t.teardown(async () => {
    await world.cleanup();
    await rm(tmp, { recursive: true, force: true });
  });
  const env = `errrate-${suffix()}`;
  // A generous probe budget: on a loaded machine the script takes a while before httpd answers.
  const port = await world.env(env, { retries: 150, extra: 'alerts:\n  probe_interval: 500ms\n  error_rate_max: 0.3\n  for: { error_rate: 0s }' });
  const file = path.join(world.root, 'environments', `${env}.yaml`);
  await writeFile(file, (await readFile(file, 'utf8')).replace(`  port: ${port}\n`, `  port: ${port}\n  command: ${JSON.stringify(['sh', '-c', SCRIPT])}\n`));
  const p = world.start({ stateDir: path.join(tmp, 'state'), monitor: { logPollMs: 300, kpiPollMs: 5000 } });
  const [rec] = await world.pass(env);
  t.equal(rec!.outcome, 'applied', 'the container runs');
  await p.monitor.start();
  const app = p.server();
  t.teardown(() => app.close());

  const deadline = Date.now() + 20_000;
  let last = '';
  while (Date.now() < deadline) {
    last = (await app.inject('/metrics')).body;
    if (new RegExp(`pulser_error_rate\\{env="${env}",window="5m"\\} 0\\.333`).test(last)) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  t.match(last, new RegExp(`pulser_error_rate\\{env="${env}",window="5m"\\} 0\\.3333333333`), 'error rate over 5m is 1/3');
  t.match(last, new RegExp(`pulser_error_rate\\{env="${env}",window="1h"\\} 0\\.3333333333`), 'and over 1h');
  // Reading again (polls continue) adds nothing: each line is counted once.
  await new Promise((r) => setTimeout(r, 1000));
  const status = (await app.inject('/api/status')).json() as { monitor: Record<string, { errorRate: Record<string, number>; alerts: { alert: string; phase: string }[] }> };
  t.equal(status.monitor[env]!.errorRate['5m'], 1 / 3, 'still 1/3 after more reads');
  t.ok(status.monitor[env]!.alerts.some((a) => a.alert === 'PulserErrorRateHigh' && a.phase === 'firing'), '1/3 > 0.3 fires PulserErrorRateHigh');
  t.match((await app.inject('/metrics')).body, new RegExp(`pulser_alert_firing\\{env="${env}",alert="PulserErrorRateHigh"\\} 1`));
});
