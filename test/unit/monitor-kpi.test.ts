// KPI math against histories whose results are worked out by hand in the comments.
import t from 'tap';
import { errorRate, percentile, tallyRecords, uptimeRatio, werkzeugStatus, type LogRecord } from '../../src/monitor/kpi.ts';
import { parseEngineLog } from '../../src/monitor/odoo-log.ts';
import { UptimeStore } from '../../src/monitor/uptime-store.ts';
import { readFile, statfs } from 'node:fs/promises';
import { backupsFromStatus, hostDisk } from '../../src/monitor/providers.ts';
import { createDrivers, diskUsedRatio, type Drivers } from '../../src/drivers/index.ts';
import { hostFacts } from '../../reconcilers/hosts/facts.ts';
import type { DesiredEnv } from '../../src/spec/model.ts';
import path from 'node:path';

t.test('uptime ratio over per-minute buckets', async (t) => {
  // minute 100: 4/4 up, 101: 1/4, 102: 3/4, 160: 2/2
  const b = [
    { minute: 100, up: 4, total: 4 },
    { minute: 101, up: 1, total: 4 },
    { minute: 102, up: 3, total: 4 },
    { minute: 160, up: 2, total: 2 },
  ];
  // window of 60 minutes ending at 160 = minutes 101..160: (1+3+2)/(4+4+2) = 6/10
  t.equal(uptimeRatio(b, 160, 60), 0.6);
  // ending at 102 with 3 minutes = 100..102: (4+1+3)/12 = 8/12
  t.equal(uptimeRatio(b, 102, 3), 8 / 12);
  // 2 minutes ending at 101 = 100..101: 5/8
  t.equal(uptimeRatio(b, 101, 2), 0.625);
  t.equal(uptimeRatio(b, 99, 60), null, 'no probe in the window is no data, not downtime');
});

t.test('werkzeug status extraction', async (t) => {
  t.equal(werkzeugStatus('127.0.0.1 - - [01/May/2024 10:00:00] "GET /web HTTP/1.1" 500 - 3 0.001 0.003'), 500);
  t.equal(werkzeugStatus('10.0.0.2 - - [01/May/2024 10:00:01] "POST /web/dataset/call_kw/res.partner/read HTTP/1.1" 200 - 12 0.010 0.050'), 200);
  t.equal(werkzeugStatus('10.0.0.2 - - [01/May/2024 10:00:01] "GET /a\\"b HTTP/1.1" 404 - 1 0.001 0.001'), 404, 'escaped quote in the request line');
  t.equal(werkzeugStatus('Loading module base (1/10)'), null);
});

t.test('error rate from Odoo log records', async (t) => {
  const line = (status: number) => `127.0.0.1 - - [01/May/2024 10:00:00] "GET /web HTTP/1.1" ${status} - 3 0.001 0.003`;
  const r = (level: string, logger: string, message: string): LogRecord => ({ time: 0, level, logger, message });
  const records = [
    ...Array.from({ length: 16 }, () => r('INFO', 'werkzeug', line(200))),
    r('INFO', 'werkzeug', line(404)),
    r('INFO', 'werkzeug', line(500)),
    r('INFO', 'werkzeug', line(503)),
    r('ERROR', 'odoo.http', 'Exception during request handling.'),
    r('ERROR', 'odoo.addons.base.models.ir_cron', 'Call from cron failed'),
    r('INFO', 'odoo.modules.loading', 'Modules loaded.'),
    r('WARNING', 'odoo.models', 'slow'),
  ];
  const tally = tallyRecords(records);
  // 19 werkzeug lines, two of them 5xx; the odoo.http ERROR belongs to the 500 and is not counted
  // again; the cron ERROR is one event on its own.
  t.same(tally, { requests: 19, failedRequests: 2, errorRecords: 1 });
  // (2 + 1) / (19 + 1) = 3/20 = 0.15
  t.equal(errorRate(tally), 0.15);
  t.equal(errorRate({ requests: 0, failedRequests: 0, errorRecords: 0 }), 0, 'nothing happened: 0');
  // 1 error record alone: 1/1
  t.equal(errorRate({ requests: 0, failedRequests: 0, errorRecords: 1 }), 1);
});

t.test('engine log lines become records; others are skipped', async (t) => {
  const text = [
    '2024-05-01T10:00:00.123456789Z 2024-05-01 10:00:00,123 42 INFO db werkzeug: 127.0.0.1 - - [01/May/2024 10:00:00] "GET /web HTTP/1.1" 500 - 3 0.001 0.003',
    '2024-05-01T10:00:00.200000000Z Traceback (most recent call last):',
    '2024-05-01T10:00:01.000000000Z 2024-05-01 10:00:01,000 42 ERROR ? odoo.service.server: oops',
  ].join('\n');
  const lines = parseEngineLog(text);
  t.equal(lines.length, 3);
  t.same(lines[0]!.record, { time: Date.parse('2024-05-01T10:00:00.123Z'), level: 'INFO', logger: 'werkzeug', message: '127.0.0.1 - - [01/May/2024 10:00:00] "GET /web HTTP/1.1" 500 - 3 0.001 0.003' });
  t.equal(lines[1]!.record, null, 'a traceback line is no record');
  t.equal(lines[2]!.record!.level, 'ERROR');
  t.ok(lines[1]!.ts < lines[2]!.ts, 'engine timestamps compare as strings');
});

t.test('nearest-rank percentiles', async (t) => {
  const v = [0.1, 0.5, 0.2, 0.4, 0.3, 0.9, 0.6, 0.8, 0.7, 1.0];
  // sorted 0.1..1.0; p95: ceil(9.5) = 10th = 1.0; p50: 5th = 0.5; p10: 1st = 0.1
  t.equal(percentile(v, 0.95), 1.0);
  t.equal(percentile(v, 0.5), 0.5);
  t.equal(percentile(v, 0.1), 0.1);
  t.equal(percentile([], 0.95), null);
});

t.test('uptime store: rolling windows, persisted across a restart, bounded by compaction', async (t) => {
  const dir = t.testdir();
  const errors: unknown[] = [];
  const store = new UptimeStore(dir, (e) => errors.push(e));
  const M = 60_000;
  const t0 = 1_000_020 * M; // a whole hour: minute 1_000_020 = hour 16_667
  // minute 0 of the history: 3 up, 1 down; minute 1: 2 down; minute 70: 4 up
  for (const up of [true, true, true, false]) store.record('prod', t0, up);
  store.record('prod', t0 + M, false);
  store.record('prod', t0 + M + 1000, false);
  for (let i = 0; i < 4; i++) store.record('prod', t0 + 70 * M, true);
  // 1h ending at minute 70: minutes 11..70 → 4/4
  t.equal(store.ratio('prod', '1h', t0 + 70 * M), 1);
  // 24h: (3 + 0 + 4) / (4 + 2 + 4) = 7/10
  t.equal(store.ratio('prod', '24h', t0 + 70 * M), 0.7);
  t.equal(store.ratio('prod', '30d', t0 + 70 * M), 0.7);
  await store.flush();

  const again = new UptimeStore(dir, (e) => errors.push(e));
  await again.load();
  t.equal(again.ratio('prod', '24h', t0 + 70 * M), 0.7, 'the history survives a restart');
  // one more probe in the same minute after the restart adds to it: (7 + 0) / (10 + 1)
  again.record('prod', t0 + 70 * M + 5000, false);
  t.equal(again.ratio('prod', '24h', t0 + 70 * M + 5000), 7 / 11);
  // 25 h later the first minutes leave the 24 h window but stay in 30 d
  t.equal(again.ratio('prod', '24h', t0 + (70 + 1440) * M), null, 'nothing in the last 24 h');

  // three days of one probe a minute: the file is compacted and stays bounded
  const long = new UptimeStore(path.join(dir, 'long'), (e) => errors.push(e));
  for (let m = 0; m < 3 * 1440; m++) long.record('dev', t0 + m * M, m % 10 !== 0);
  await long.flush();
  const lines = (await readFile(path.join(dir, 'long', 'uptime', 'dev.log'), 'utf8')).trim().split('\n');
  t.ok(lines.length <= 1440 + 720 + 720 + 1, `file bounded (${lines.length} lines)`);
  const reread = new UptimeStore(path.join(dir, 'long'), (e) => errors.push(e));
  await reread.load();
  // every 10th minute was down: 30 d (whole hours) ≈ 0.9 over the three days
  t.equal(reread.ratio('dev', '30d', t0 + (3 * 1440 - 1) * M)!.toFixed(2), '0.90');
  // the last hour ending at minute 4319 is minutes 4260..4319: 4260, 4270, …, 4310 were down → 54/60
  t.equal(reread.ratio('dev', '1h', t0 + (3 * 1440 - 1) * M), 54 / 60);
  t.same(errors, [], 'no write errors');
});

t.test('providers: backup time from the status the backups reconciler reports, disk use of local hosts', async (t) => {
  const status: Record<string, { lastBackup: { at: string } | null }> = {
    shop: { lastBackup: { at: '2026-01-02T03:04:05.000Z' } },
    qa: { lastBackup: { at: 'yesterday' } },
    dev: { lastBackup: null },
  };
  const backups = backupsFromStatus(() => ({ get: (env: string) => status[env] }));
  const envNamed = (name: string, host = 'local') => ({ name, hostName: host, host: { kind: 'local' } }) as unknown as DesiredEnv;
  t.same(await backups.lastBackupAt(envNamed('shop')), new Date('2026-01-02T03:04:05.000Z'));
  t.equal(await backups.lastBackupAt(envNamed('qa')), null, 'an unreadable time is unknown');
  t.equal(await backups.lastBackupAt(envNamed('dev')), null, 'no backup reported: unknown');
  t.equal(await backups.lastBackupAt(envNamed('nowhere')), null);

  const drivers = createDrivers(new Map([['local', { kind: 'local' as const }]]));
  t.teardown(() => drivers.close());
  const disk = hostDisk(() => drivers, '/');
  const s = await statfs('/');
  // the same arithmetic as df: (blocks − available to users) / blocks
  const used = (await disk.usedRatio(envNamed('shop')))!;
  // other processes write to the same disk meanwhile: equal to a thousandth
  t.ok(Math.abs(used - (s.blocks - s.bavail) / s.blocks) < 0.001, `used ratio ${used}`);
  t.ok(used > 0 && used < 1);
  await t.rejects(disk.usedRatio(envNamed('far', 'nowhere-host')), { code: 'PULSER_E_HOST_UNKNOWN' }, 'an undeclared host is an error (the monitor reports it unknown)');
});

t.test('host facts and the disk KPI read one definition of disk use', async (t) => {
  // ext4 with 5% reserved for root: 100 blocks, 40 free, 35 available to users.
  const fs = { totalBytes: 100 << 20, freeBytes: 40 << 20, availableBytes: 35 << 20 };
  const fake = {
    fsStats: async () => fs,
    readHostFile: async () => 'MemTotal:       2048 kB\nMemAvailable:   1024 kB\n',
    docker: () => ({ version: async () => '20.10.0' }),
  } as unknown as Drivers;
  const facts = await hostFacts(fake, 'box');
  const kpi = await hostDisk(() => fake).usedRatio({ name: 'shop', hostName: 'box' } as DesiredEnv);
  t.equal(facts.diskUsedRatio, 0.65, 'reserved blocks count as used: nobody but root can write them');
  t.equal(kpi, facts.diskUsedRatio, 'pulser_disk_used_ratio and pulser_host_disk_used_ratio agree');
  t.equal(facts.diskUsedBytes, 65 << 20);
  t.equal(diskUsedRatio({ totalBytes: 0, freeBytes: 0, availableBytes: 0 }), null, 'an empty file system is unknown');
});
