// L1: the log explorer on a 200,000-line Odoo log with tracebacks. `--errors -n 50` read from a
// real container through the Docker API, next to a naive baseline over the same engine stream
// (demultiplex, split lines, keep lines containing " ERROR "/" CRITICAL ": no tracebacks, no
// parsing), and `grep | tail` over the same text on disk. Not a test: nothing here asserts.
//
//   bash test/harness/with-engines.sh node --import tsx bench/logs.bench.ts [--runs 5]
import { parseArgs } from 'node:util';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { pack } from 'tar-stream';
import { ensureDemoImages } from '../src/demo/images.ts';
import { createDrivers, defaultDockerSocket, LABEL } from '../src/drivers/index.ts';
import { readEnvLogs, parseLogQuery } from '../src/logs/index.ts';
import { forEachDockerLogLine } from '../src/logs/stream.ts';
import type { DesiredEnv } from '../src/spec/model.ts';
import type { Host } from '../src/spec/types.gen.ts';
import { syntheticOdooLog } from '../test/helpers/odoo-log.ts';
import { dockerClient, fmtMs, load1, median, now, printSection, summaryLine } from './lib.ts';

const run = promisify(execFile);
const { values } = parseArgs({ options: { runs: { type: 'string', default: '5' }, lines: { type: 'string', default: '200000' } } });
const runs = Number(values.runs);
const docker = dockerClient();
await ensureDemoImages(docker, { tags: ['pulser-demo/odoo:17.0.1'] });

const log = syntheticOdooLog(Number(values.lines));
const env = `bench-logs-${process.pid}`;
const c = await docker.createContainer({
  name: `pulser-${env}-odoo`,
  Image: 'pulser-demo/odoo:17.0.1',
  Entrypoint: ['cat'],
  Cmd: ['/odoo.log'],
  Labels: { [LABEL.managedBy]: 'pulser', [LABEL.env]: env, [LABEL.service]: 'odoo' },
});
const dir = await mkdtemp(path.join(tmpdir(), 'pulser-bench-logs-'));
const drivers = createDrivers(new Map<string, Host>([['local', { kind: 'local', docker: { socket: defaultDockerSocket() } }]]));
try {
  const tar = pack();
  tar.entry({ name: 'odoo.log' }, log.text);
  tar.finalize();
  await c.putArchive(tar as unknown as NodeJS.ReadableStream, { path: '/' });
  await c.start();
  await c.wait();
  const file = path.join(dir, 'odoo.log');
  await writeFile(file, log.text);
  const desired = { name: env, hostName: 'local' } as DesiredEnv;
  const q = parseLogQuery({ errors: true, n: '50' }, new Date());
  const expected = log.errors.slice(-50).map((e) => e.header);

  const pulserMs: number[] = [];
  const naiveMs: number[] = [];
  const grepMs: number[] = [];
  let correct = true;
  for (let i = 0; i < runs; i++) {
    let t0 = now();
    const res = await readEnvLogs(drivers, desired, q);
    pulserMs.push(now() - t0);
    const got = res.records.map((r) => `${r.time!.slice(0, 10)} ${r.time!.slice(11, 19)},${r.time!.slice(20, 23)} ${r.pid} ${r.level} ${r.db ?? '?'} ${r.logger}: ${r.message}`);
    correct &&= JSON.stringify(got) === JSON.stringify(expected) && res.records.every((r, k) => r.lines.length === log.errors.at(-50 + k)!.traceback.length);

    t0 = now();
    const stream = await drivers.docker('local').logStream(c.id);
    const last: string[] = [];
    await forEachDockerLogLine(stream as AsyncIterable<Buffer>, (line) => {
      if (line.includes(' ERROR ') || line.includes(' CRITICAL ')) {
        last.push(line);
        if (last.length > 50) last.shift();
      }
    });
    naiveMs.push(now() - t0);

    t0 = now();
    await run('sh', ['-c', `grep -E ' (ERROR|CRITICAL) ' "$1" | tail -n 50 >/dev/null`, 'sh', file]);
    grepMs.push(now() - t0);
  }
  const p = median(pulserMs);
  const naive = median(naiveMs);
  const r = {
    id: 'L1',
    title: `logs --errors -n 50 over ${log.lines} lines (${(log.text.length / 1e6).toFixed(1)} MB, ${log.errors.length} errors), median of ${runs}`,
    lines: [
      ['pulser (engine → records)', fmtMs(p)],
      ['grep | tail on disk', fmtMs(median(grepMs))],
      ['correct (last 50 + tracebacks)', correct ? 'yes' : 'NO'],
      ['load average (1 min)', load1()],
    ] as [string, string][],
    baseline: `${fmtMs(naive)} (same engine stream, naive line scan without parsing or tracebacks)`,
    ratio: p / naive,
    targets: [{ label: 'pulser --errors -n 50', value: p, limit: 2000, show: fmtMs }],
    notes: ['most of either figure is the engine reading its json-file log; the ratio is what parsing records and tracebacks adds'],
  };
  printSection(r);
  console.log(`\n${summaryLine([r])}`);
} finally {
  await c.remove({ force: true });
  await drivers.close();
  await rm(dir, { recursive: true, force: true });
}
