// The log explorer on a real container: a 200,000-line Odoo log with tracebacks, read through the
// Docker API; `--errors -n 50` gives exactly the last 50 error records with their tracebacks,
// through the library, the HTTP API and the CLI alike.
import t from 'tap';
import { pack } from 'tar-stream';
import { World, suffix } from '../helpers/world.ts';
import { syntheticOdooLog } from '../helpers/odoo-log.ts';
import { main } from '../../src/cli/main.ts';
import type { OdooLogRecord } from '../../src/logs/index.ts';

const w = await World.create();
t.teardown(() => w.cleanup());
const p = w.start();

/** An environment whose Odoo container printed `text` (labelled as pulser labels it). */
async function envWithLog(text: string): Promise<string> {
  const env = `logs-${suffix()}`;
  await w.env(env);
  const c = await w.docker.createContainer({
    name: `pulser-${env}-odoo`,
    Image: 'pulser-demo/odoo:17.0.1',
    Entrypoint: ['cat'],
    Cmd: ['/odoo.log'],
    Labels: { 'io.pulser.managed-by': 'pulser', 'io.pulser.env': env, 'io.pulser.service': 'odoo' },
  });
  const tar = pack();
  tar.entry({ name: 'odoo.log' }, text);
  tar.finalize();
  await c.putArchive(tar as unknown as NodeJS.ReadableStream, { path: '/' });
  await c.start();
  await c.wait();
  return env;
}

const log = syntheticOdooLog(200_000);
const big = await envWithLog(log.text);
// A small log printed now (Odoo's times and the engine's agree) for the other queries.
const small = syntheticOdooLog(3_000, new Date(Date.now() - 60_000));
const env = await envWithLog(small.text);

function header(r: OdooLogRecord): string {
  return `${r.time!.slice(0, 10)} ${r.time!.slice(11, 19)},${r.time!.slice(20, 23)} ${r.pid} ${r.level} ${r.db ?? '?'} ${r.logger}: ${r.message}`;
}

const want = small.errors.slice(-10);

t.test('--errors -n 50: exactly the last 50 error records, tracebacks attached', async (t) => {
  t.equal(log.lines, 200_000);
  t.ok(log.errors.length > 50, `${log.errors.length} errors in the log`);
  const res = await p.logs(big, { errors: true, n: '50' });
  const last = log.errors.slice(-50);
  t.equal(res.seen, log.lines - log.errors.length * 5, 'every line read (tracebacks are part of their records)');
  t.equal(res.records.length, 50);
  t.equal(res.matched, log.errors.length, 'every error record was recognised, and nothing else');
  t.same(res.records.map(header), last.map((e) => e.header));
  t.same(res.records.map((r) => r.lines), last.map((e) => e.traceback));
  t.ok(res.records.every((r) => r.level === 'ERROR' || r.level === 'CRITICAL'));
  t.ok(res.records.some((r) => r.level === 'CRITICAL'));
});

t.test('time window and pattern', async (t) => {
  const from = new Date(small.start.getTime() + 5_000);
  const to = new Date(small.start.getTime() + 15_000);
  const inWindow = small.errors.filter((e) => {
    const ts = Date.parse(e.header.slice(0, 23).replace(' ', 'T').replace(',', '.') + 'Z');
    return ts >= from.getTime() && ts <= to.getTime();
  });
  const res = await p.logs(env, { errors: true, since: from.toISOString(), until: to.toISOString(), n: '10000' });
  t.same(res.records.map(header), inWindow.map((e) => e.header));
  const grep = await p.logs(env, { grep: 'has no lines', n: '3' });
  t.same(grep.records.map(header), small.errors.slice(-3).map((e) => e.header), 'the pattern matches inside tracebacks');
  t.ok(inWindow.length > 3, `${inWindow.length} errors in the window`);
});

t.test('GET /api/logs/:env', async (t) => {
  const app = p.server();
  const res = await app.inject({ method: 'GET', url: `/api/logs/${env}?errors=1&n=10` });
  t.equal(res.statusCode, 200);
  const body = res.json() as { records: OdooLogRecord[]; container: { name: string } };
  t.same(body.records.map(header), want.map((e) => e.header));
  t.equal(body.container.name, `pulser-${env}-odoo`);
  const bad = await app.inject({ method: 'GET', url: `/api/logs/${env}?n=0` });
  t.equal(bad.statusCode, 400);
  t.equal(bad.json().error.code, 'PULSER_E_LOGS_QUERY');
  const unknown = await app.inject({ method: 'GET', url: `/api/logs/nope-${suffix()}` });
  t.equal(unknown.statusCode, 404);
  const svc = await app.inject({ method: 'GET', url: `/api/logs/${env}?service=db` });
  t.equal(svc.statusCode, 400, 'an unknown service is named');
  t.match(svc.json().error.message, /services: odoo/);
  await app.close();
});

t.test('pulser logs --errors -n 2 --json, and text', async (t) => {
  const out: string[] = [];
  const err: string[] = [];
  const io = { out: (s: string) => out.push(s), err: { write: (s: string) => err.push(s) } as unknown as NodeJS.WritableStream, isTTY: false };
  t.equal(await main(['logs', env, '--dir', w.root, '--errors', '-n', '2', '--json'], io), 0, err.join(''));
  const lines = out.join('\n').split('\n').map((l) => JSON.parse(l) as OdooLogRecord);
  t.same(lines.map(header), want.slice(-2).map((e) => e.header));
  out.length = 0;
  t.equal(await main(['logs', env, 'odoo', '--dir', w.root, '--errors', '-n', '1'], io), 0);
  t.equal(out.join('\n'), [want.at(-1)!.header, ...want.at(-1)!.traceback].join('\n'), 'text: the record as Odoo printed it');
  t.equal(await main(['logs', env, '--dir', w.root, '--since', 'soon'], io), 1);
  t.match(err.join(''), /PULSER_E_LOGS_QUERY/);
});
