// Notified alert states and uptime history survive a restart of pulser: a firing alert that was
// already notified is not notified again by the next pulser, which still sends the resolution;
// a receiver that fails is retried (backoff within a delivery, then again later) until it answers.
import t from 'tap';
import http from 'node:http';
import { mkdtemp, rm, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { World, freePort, suffix } from '../helpers/world.ts';

async function until<T>(what: string, fn: () => T | null | undefined | false, timeoutMs = 15_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

t.test('a failed delivery is retried; a restart neither re-notifies nor forgets', async (t) => {
  const world = await World.create();
  const tmp = await mkdtemp(path.join(tmpdir(), 'pulser-restart-'));
  let healthy = false;
  const health = http.createServer((_req, res) => res.writeHead(healthy ? 200 : 500).end());
  const received: { status: string; alert: string }[] = [];
  let failNext = 5;
  let attempts = 0;
  const hook = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      attempts++;
      // The first five attempts fail: four of the first delivery (1 + 3 retries), then one more.
      if (failNext-- > 0) return res.writeHead(503).end();
      received.push(JSON.parse(Buffer.concat(chunks).toString()) as { status: string; alert: string });
      res.writeHead(200).end();
    });
  });
  const [healthPort, hookPort] = [await freePort(), await freePort()];
  await new Promise<void>((r) => health.listen(healthPort, '127.0.0.1', r));
  await new Promise<void>((r) => hook.listen(hookPort, '127.0.0.1', r));
  t.teardown(async () => {
    await world.cleanup();
    health.close();
    hook.close();
    await rm(tmp, { recursive: true, force: true });
  });
  const env = `restart-${suffix()}`;
  await world.env(env, {
    port: healthPort,
    extra: `alerts:\n  probe_interval: 100ms\n  for: { down: 300ms }\n  webhook: { url: "http://127.0.0.1:${hookPort}/", retries: 3 }`,
  });
  const stateDir = path.join(tmp, 'state');
  const opts = { stateDir, monitor: { logPollMs: 60_000, kpiPollMs: 60_000, notifyBackoffMs: 50, notifyRetryMs: 300 } };

  const first = world.start(opts);
  await first.load();
  await first.monitor.start();
  const fired = await until('the firing notification', () => received.find((r) => r.alert === 'PulserEnvDown' && r.status === 'firing'));
  t.ok(fired, 'fired and notified');
  t.equal(attempts, 6, 'a delivery that failed all its attempts is tried again later, and delivered');
  t.ok(
    world.logs.some((l) => l.includes('PULSER_E_ALERT_WEBHOOK')),
    'the failed delivery is logged with its code',
  );
  const uptimeBefore = first.monitor.snapshot()[env]!.uptime['24h'];
  t.equal(uptimeBefore, 0, 'every probe so far failed');
  await first.close();
  const saved = JSON.parse(await readFile(path.join(stateDir, 'monitor', 'alerts.json'), 'utf8')) as { envs: Record<string, Record<string, { phase: string; notified: string }>> };
  t.same([saved.envs[env]!.PulserEnvDown!.phase, saved.envs[env]!.PulserEnvDown!.notified], ['firing', 'firing'], 'the notified state is on disk');

  // A new pulser on the same state directory, the environment still down.
  world.pulser = null;
  const second = world.start(opts);
  await second.load();
  await second.monitor.start();
  t.teardown(() => second.close());
  await new Promise((r) => setTimeout(r, 1000));
  t.equal(received.filter((r) => r.alert === 'PulserEnvDown').length, 1, 'no second firing notification after the restart');
  t.equal(second.monitor.snapshot()[env]!.uptime['24h'], 0, 'the uptime history was kept');
  healthy = true;
  await until('the resolved notification', () => received.find((r) => r.alert === 'PulserEnvDown' && r.status === 'resolved'));
  await new Promise((r) => setTimeout(r, 500));
  t.same(
    received.filter((r) => r.alert === 'PulserEnvDown').map((r) => r.status),
    ['firing', 'resolved'],
    'one firing, one resolved across the restart',
  );
  const ratio = second.monitor.snapshot()[env]!.uptime['1h']!;
  t.ok(ratio > 0 && ratio < 1, `uptime now between 0 and 1 (${ratio})`);
});
