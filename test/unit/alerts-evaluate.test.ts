// The alert state machine (pending → firing after `for`, resolve, owed notifications), and the
// webhook delivery against a real local HTTP server: signature, retries with backoff, timeouts.
import t, { type Test } from 'tap';
import http from 'node:http';
import { createHmac } from 'node:crypto';
import { alertSettingsOf, evaluateEnv, initialStates, owedNotification, deliverNotification, type AlertNotification, type Kpis } from '../../reconcilers/alerts/index.ts';

const kpis = (k: Partial<Kpis>): Kpis => ({ up: true, uptime: 1, errorRate: 0, latencyP95Seconds: 0.01, backupAgeSeconds: null, diskUsedRatio: null, ...k });

t.test('pending, firing after for, resolved, and the notifications owed', async (t) => {
  const s = alertSettingsOf({ for: { down: '2s', error_rate: '0s' } });
  let st = initialStates();
  st = evaluateEnv(st, kpis({ up: false }), s, 1000);
  t.equal(st.PulserEnvDown.phase, 'pending', 'first failing probe: pending');
  t.equal(owedNotification(st.PulserEnvDown), null, 'nothing owed while pending');
  st = evaluateEnv(st, kpis({ up: false }), s, 2999);
  t.equal(st.PulserEnvDown.phase, 'pending', '1.999 s later: still pending');
  st = evaluateEnv(st, kpis({ up: false }), s, 3000);
  t.equal(st.PulserEnvDown.phase, 'firing', '2 s later: firing');
  t.equal(owedNotification(st.PulserEnvDown), 'firing');
  st.PulserEnvDown = { ...st.PulserEnvDown, notified: 'firing' };
  st = evaluateEnv(st, kpis({ up: false }), s, 4000);
  t.equal(owedNotification(st.PulserEnvDown), null, 'still firing, already notified: nothing owed');
  st = evaluateEnv(st, kpis({ up: true }), s, 5000);
  t.equal(st.PulserEnvDown.phase, 'inactive');
  t.equal(st.PulserEnvDown.resolvedAt, 5000);
  t.equal(owedNotification(st.PulserEnvDown), 'resolved');
  st.PulserEnvDown = { ...st.PulserEnvDown, notified: 'resolved' };
  t.equal(owedNotification(st.PulserEnvDown), null);

  // a pending alert that clears never fires and owes nothing
  st = evaluateEnv(st, kpis({ up: false }), s, 6000);
  st = evaluateEnv(st, kpis({ up: true }), s, 7000);
  t.equal(st.PulserEnvDown.phase, 'inactive');
  t.equal(owedNotification(st.PulserEnvDown), null);

  // for: 0s fires at once; thresholds compare like the rules (> max)
  st = evaluateEnv(st, kpis({ errorRate: 0.05 }), s, 8000);
  t.equal(st.PulserErrorRateHigh.phase, 'inactive', '5% is not above 5%');
  st = evaluateEnv(st, kpis({ errorRate: 0.06 }), s, 8001);
  t.equal(st.PulserErrorRateHigh.phase, 'firing');
  // unknown values never fire
  st = evaluateEnv(st, kpis({ up: null, uptime: null, backupAgeSeconds: null }), s, 9000);
  t.equal(st.PulserUptimeLow.phase, 'inactive');
  t.equal(st.PulserBackupStale.phase, 'inactive');
  // uptime under the minimum (0.99 by default)
  st = evaluateEnv(st, kpis({ uptime: 0.985 }), s, 9000);
  t.equal(st.PulserUptimeLow.phase, 'pending', 'uptime 98.5% < 99%: pending for the default 5m');
  // an unknown value neither resolves a firing alert nor moves a pending one
  const firing = evaluateEnv(initialStates(), kpis({ up: false }), alertSettingsOf({ for: { down: '0s' } }), 1);
  t.equal(firing.PulserEnvDown.phase, 'firing');
  t.equal(evaluateEnv(firing, kpis({ up: null }), s, 2).PulserEnvDown.phase, 'firing', 'unknown keeps it firing');
  t.equal(evaluateEnv(firing, kpis({ up: true }), s, 3).PulserEnvDown.phase, 'inactive', 'a known good value resolves it');
  // disabled alerts stay inactive
  const off = evaluateEnv(initialStates(), kpis({ up: false }), alertSettingsOf({ enabled: false, for: { down: '0s' } }), 1);
  t.equal(off.PulserEnvDown.phase, 'inactive');
  // disabling the alerts of an environment resolves what fired, unknown values or not
  const notified = { ...firing, PulserEnvDown: { ...firing.PulserEnvDown, notified: 'firing' as const } };
  const disabled = evaluateEnv(notified, kpis({ up: null }), alertSettingsOf({ enabled: false }), 5);
  t.equal(disabled.PulserEnvDown.phase, 'inactive');
  t.equal(owedNotification(disabled.PulserEnvDown), 'resolved');
});

const notification: AlertNotification = {
  status: 'firing',
  alert: 'PulserEnvDown',
  env: 'staging',
  tier: 'staging',
  severity: 'critical',
  summary: 'staging: the health probe fails',
  value: 0,
  threshold: 0,
  startsAt: '2026-01-01T00:00:00.000Z',
  endsAt: null,
};

async function receiver(t: Test, answers: (number | 'hang')[]) {
  const seen: { body: string; signature: string | undefined; at: number }[] = [];
  const srv = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen.push({ body: Buffer.concat(chunks).toString(), signature: req.headers['x-pulser-signature'] as string | undefined, at: Date.now() });
      const a = answers[Math.min(seen.length - 1, answers.length - 1)]!;
      if (a !== 'hang') res.writeHead(a).end();
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    srv.closeAllConnections();
    srv.close();
  });
  return { url: `http://127.0.0.1:${(srv.address() as { port: number }).port}/hook`, seen };
}

t.test('webhook: signed body with text, retried with backoff until delivered', async (t) => {
  const r = await receiver(t, [500, 'hang', 204]);
  // The timeout leaves room for a loaded machine: only the hanging attempt may reach it.
  const t0 = performance.now();
  const res = await deliverNotification({ url: r.url, secret: 'k3y', timeoutMs: 1500, retries: 3 }, notification, { backoffMs: 100 });
  const elapsed = performance.now() - t0;
  t.same(res, { ok: true, attempts: 3, error: null });
  t.equal(r.seen.length, 3, 'a 500, a timeout, then delivered');
  const body = r.seen[2]!.body;
  t.equal(r.seen[2]!.signature, 'sha256=' + createHmac('sha256', 'k3y').update(body).digest('hex'));
  const parsed = JSON.parse(body) as { text: string; alert: string; status: string };
  t.equal(parsed.text, '[FIRING] PulserEnvDown staging: the health probe fails');
  t.equal(parsed.status, 'firing');
  // Backoff 100 ms, the 1.5 s timeout of the hanging attempt, then backoff 200 ms, all waited on the
  // sender's side (timers never fire early); the receiver's clock would see each request late by
  // however busy the machine is, so it cannot bound the waits.
  t.ok(elapsed >= 100 + 1500 + 200 - 5, `the sender waited 100 ms, the 1.5 s timeout, then 200 ms (${Math.round(elapsed)} ms in all)`);
  t.ok(r.seen[0]!.at <= r.seen[1]!.at && r.seen[1]!.at <= r.seen[2]!.at, 'the attempts arrived in order');
});

t.test('webhook: a 4xx is not retried; giving up reports the last error', async (t) => {
  const r = await receiver(t, [403]);
  const res = await deliverNotification({ url: r.url, secret: null, timeoutMs: 500, retries: 3 }, notification, { backoffMs: 10 });
  t.same(res, { ok: false, attempts: 1, error: 'HTTP 403' });
  t.equal(r.seen[0]!.signature, undefined, 'no secret, no signature header');
  const r2 = await receiver(t, [502]);
  const res2 = await deliverNotification({ url: r2.url, secret: 'x', timeoutMs: 500, retries: 2 }, notification, { backoffMs: 10 });
  t.same(res2, { ok: false, attempts: 3, error: 'HTTP 502' });
});

t.test('webhook: stopping pulser cuts a delivery short', async (t) => {
  const r = await receiver(t, ['hang']);
  const stop = new AbortController();
  const started = Date.now();
  setTimeout(() => stop.abort(), 200);
  const res = await deliverNotification({ url: r.url, secret: 'x', timeoutMs: 5000, retries: 5 }, notification, { backoffMs: 1000, signal: stop.signal });
  t.same(res, { ok: false, attempts: 1, error: 'stopped during delivery' });
  t.ok(Date.now() - started < 2000, 'neither the 5 s timeout nor the backoff was waited for');
});
