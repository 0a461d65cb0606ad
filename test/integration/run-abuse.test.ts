// The shell proxy under abuse: injection attempts either reach the process as literal argv
// (proven by what the process wrote down) or are refused with a coded error; a template past its
// timeout is killed inside the container; SQL runs read-only; every run is recorded.
import t from 'tap';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { World, suffix, freePort } from '../helpers/world.ts';
import { main } from '../../src/cli/main.ts';
import { runTemplate, type RunRecord } from '../../src/run/execute.ts';
import { loadTemplates } from '../../src/run/templates.ts';

const w = await World.create();
t.teardown(() => w.cleanup());

const stag = `ra-${suffix()}`;
const prod = `rp-${suffix()}`;
const db = `db_${stag.replace(/-/g, '_')}`;
const pgPort = Number(process.env.PGPORT ?? 5432);
for (const [name, tier] of [
  [stag, 'staging'],
  [prod, 'production'],
] as const) {
  await w.kv(`${name}.image_tag`, '17.0.1');
  await w.writeFile(
    `environments/${name}.yaml`,
    [
      `name: ${name}`,
      `tier: ${tier}`,
      'host: local',
      'sync: { auto: true, interval: 1h }',
      'odoo:',
      `  image: pulser-demo/odoo:\${kv:${name}.image_tag}`,
      `  port: ${await freePort()}`,
      '  health: { path: /web/health, interval: 200ms, timeout: 1s, retries: 25 }',
      'database:',
      `  name: ${name === stag ? db : `db_${name.replace(/-/g, '_')}`}`,
      '  host: 127.0.0.1',
      `  port: ${pgPort}`,
      '  user: postgres',
      '  password: ${secret:TEST_DB_PASSWORD}',
      '',
    ].join('\n'),
  );
}
await w.writeFile(
  'ops/templates.yaml',
  `templates:
  record-args:
    description: writes its argv, one per line, to /tmp/argv.txt in the container
    kind: exec
    command: [sh, -c, 'printf "%s\\n" "$@" > /tmp/argv.txt', record, "{{a}}", "{{b}}"]
    params:
      a: { type: string, pattern: ".{0,200}" }
      b: { type: integer, minimum: 1, maximum: 10, default: 1 }
    tiers: [production, staging]
  read-file:
    description: prints a file below /etc/odoo
    kind: exec
    command: [cat, "/etc/odoo/{{file}}"]
    params:
      file: { type: string, pattern: "(?!.*\\\\.\\\\.)[A-Za-z0-9_./-]{1,64}" }
    tiers: [staging]
  slow:
    description: sleeps
    kind: exec
    command: [sleep, "{{seconds}}"]
    params:
      seconds: { type: integer, minimum: 1, maximum: 600 }
    tiers: [staging]
    timeout: 2s
  echo-sql:
    description: returns its parameter
    kind: sql
    sql: SELECT $1::text AS value
    sqlParams: ["{{text}}"]
    params:
      text: { type: string, pattern: ".{0,100}" }
    tiers: [staging]
  write-sql:
    description: tries to write (the transaction is read-only)
    kind: sql
    sql: CREATE TABLE pulser_should_not_exist (id int)
    tiers: [staging]
  database-size:
    description: size of the database
    kind: sql
    sql: SELECT pg_database_size($1) > 0 AS has_size
    sqlParams: ["{{db}}"]
    tiers: [staging]
`,
);

const admin = new pg.Client({ connectionString: process.env.PULSER_TEST_PG_URL });
await admin.connect();
await admin.query(`CREATE DATABASE ${db}`);
t.teardown(async () => {
  await admin.query(`DROP DATABASE IF EXISTS ${db}`);
  await admin.end();
});

const p = w.start();
const snap = await p.load();
const templates = await loadTemplates(w.root);
t.test('both environments converge', async (t) => {
  for (const load of snap.envs.values()) {
    const rec = await p.engine.runPass(load, { mode: 'apply', trigger: 'test', fresh: true });
    t.equal(rec.outcome, 'applied', `${rec.env}: ${JSON.stringify(rec.errors)}`);
  }
});

const runs: RunRecord[] = [];
/** Most attempts go straight to the runner; a few go through the CLI to cover it end to end. */
async function run(env: string, template: string, ...args: string[]): Promise<RunRecord> {
  const load = snap.envs.get(env);
  const rec = await runTemplate(
    { drivers: p.drivers(), templates, desired: load ? p.engine.desiredFor(load) : null, recordDir: path.join(w.root, 'evidence', 'runs'), secrets: () => snap.secretValues },
    { env, template, args, as: 'alice' },
  );
  runs.push(rec);
  return rec;
}

async function runCli(env: string, template: string, ...args: string[]): Promise<{ code: number; rec: RunRecord }> {
  const out: string[] = [];
  const io = { out: (s: string) => out.push(s), err: { write: () => true } as unknown as NodeJS.WritableStream, isTTY: false };
  const code = await main(['run', env, template, '--dir', w.root, '--json', '--as', 'alice', '--', ...args], io);
  const rec = JSON.parse(out.join('\n')) as RunRecord;
  runs.push(rec);
  return { code, rec };
}

async function containerOf(env: string) {
  const [c] = await w.containersOf(env);
  return w.docker.getContainer(c!.Id);
}

async function inContainer(env: string, argv: string[]): Promise<string> {
  const exec = await (await containerOf(env)).exec({ Cmd: argv, AttachStdout: true, AttachStderr: true });
  const stream = await exec.start({ hijack: true, stdin: false });
  const chunks: Buffer[] = [];
  await new Promise<void>((resolve) => {
    w.docker.modem.demuxStream(stream, { write: (b: Buffer) => chunks.push(b) } as unknown as NodeJS.WritableStream, { write: (b: Buffer) => chunks.push(b) } as unknown as NodeJS.WritableStream);
    stream.on('end', () => resolve());
  });
  return Buffer.concat(chunks).toString();
}

async function argvWritten(env: string): Promise<string[]> {
  const text = await inContainer(env, ['cat', '/tmp/argv.txt']);
  return text.split('\n').slice(0, -1);
}

const literals: [string, string][] = [
  ['semicolon', '; touch /tmp/pwned'],
  ['command substitution', '$(touch /tmp/pwned)'],
  ['backticks', '`touch /tmp/pwned`'],
  ['quotes', `' "; touch /tmp/pwned #`],
  ['glob', '*'],
  ['option-like', '-rf /'],
  ['pipe and redirect', '| tee /tmp/pwned > /tmp/pwned'],
  ['path traversal as data', '../../etc/passwd'],
];

for (const [i, [what, value]] of literals.entries()) {
  t.test(`${what} reaches the process as one literal argument`, async (t) => {
    const rec = i === 0 ? (await runCli(stag, 'record-args', `a=${value}`, 'b=7')).rec : await run(stag, 'record-args', `a=${value}`, 'b=7');
    t.equal(rec.outcome, 'succeeded', JSON.stringify(rec.error));
    t.same(await argvWritten(stag), [value, '7'], 'the process saw exactly the value');
    t.same(rec.command!.slice(-2), [value, '7'], 'the record shows what ran');
  });
}

t.test('nothing any of those values said was executed', async (t) => {
  t.equal((await inContainer(stag, ['sh', '-c', 'test -e /tmp/pwned && echo yes || echo no'])).trim(), 'no');
});

const refusals: [string, string, string[], string, string | RegExp][] = [
  ['a newline', 'record-args', ['a=x\ntouch /tmp/pwned'], 'PULSER_E_TEMPLATE_PARAM', /control character/],
  ['a NUL byte', 'record-args', ['a=x\u0000y'], 'PULSER_E_TEMPLATE_PARAM', /control character/],
  ['an escape character', 'record-args', ['a=\u001b[2J'], 'PULSER_E_TEMPLATE_PARAM', /control character/],
  ['.. in a path', 'read-file', ['file=../../etc/passwd'], 'PULSER_E_TEMPLATE_PARAM', /must match/],
  ['an unknown template', 'rm-rf', [], 'PULSER_E_TEMPLATE_UNKNOWN', /no template "rm-rf"/],
  ['an integer out of range', 'record-args', ['a=x', 'b=11'], 'PULSER_E_TEMPLATE_PARAM', /at most 10/],
  ['a negative integer', 'record-args', ['a=x', 'b=-1'], 'PULSER_E_TEMPLATE_PARAM', /at least 1/],
  ['a non-integer', 'record-args', ['a=x', 'b=1;reboot'], 'PULSER_E_TEMPLATE_PARAM', /must be an integer/],
  ['an unknown parameter', 'record-args', ['a=x', 'c=1'], 'PULSER_E_TEMPLATE_PARAM', /unknown parameter "c"/],
  ['a prototype key', 'record-args', ['a=x', '__proto__=1'], 'PULSER_E_TEMPLATE_PARAM', /unknown parameter "__proto__"/],
  ['a parameter given twice', 'record-args', ['a=x', 'b=1', 'b=2'], 'PULSER_E_TEMPLATE_PARAM', /given twice/],
  ['an argument without =', 'record-args', ['touch'], 'PULSER_E_TEMPLATE_PARAM', /not name=value/],
  ['a missing required parameter', 'record-args', [], 'PULSER_E_TEMPLATE_PARAM', /a is required/],
  ['a value too long', 'record-args', [`a=${'x'.repeat(300)}`], 'PULSER_E_TEMPLATE_PARAM', /must match|longer/],
];

t.test('refusals', async (t) => {
  await inContainer(stag, ['rm', '-f', '/tmp/argv.txt']);
  for (const [what, template, args, code, message] of refusals) {
    const rec = await run(stag, template, ...args);
    t.equal(rec.outcome, 'refused', what);
    t.equal(rec.error?.code, code, what);
    t.match(rec.error?.message, message, what);
    t.equal(rec.command, null, `${what}: no command was built`);
  }
  const cli = await runCli(stag, 'record-args', 'b=99', 'a=x');
  t.equal(cli.code, 1, 'the CLI exits 1 on a refusal');
  t.equal(cli.rec.error?.code, 'PULSER_E_TEMPLATE_PARAM');
  t.equal((await inContainer(stag, ['sh', '-c', 'test -e /tmp/argv.txt && echo ran || echo nothing'])).trim(), 'nothing', 'none of them ran anything');
});

t.test('a template not allowed on the tier is refused (production gets fewer)', async (t) => {
  const rec = await run(prod, 'read-file', 'file=odoo.conf');
  t.equal(rec.outcome, 'refused');
  t.equal(rec.error?.code, 'PULSER_E_TEMPLATE_TIER');
  t.equal(rec.tier, 'production');
  const ok = (await runCli(prod, 'record-args', 'a=fine')).rec;
  t.equal(ok.outcome, 'succeeded', 'an allowed template runs there');
});

t.test('an unknown environment and a bad --as are refused', async (t) => {
  const rec = await run(`nope-${suffix()}`, 'record-args', 'a=x');
  t.equal(rec.error?.code, 'PULSER_E_ENV_UNKNOWN');
  const out: string[] = [];
  const io = { out: (s: string) => out.push(s), err: { write: () => true } as unknown as NodeJS.WritableStream, isTTY: false };
  t.equal(await main(['run', stag, 'record-args', 'a=x', '--dir', w.root, '--json', '--as', 'bob; rm -rf /'], io), 1);
  const bad = JSON.parse(out.join('\n')) as RunRecord;
  t.equal(bad.outcome, 'refused');
  t.equal(bad.error?.code, 'PULSER_E_USAGE');
});

t.test('a template past its timeout is killed inside the container', async (t) => {
  const rec = await run(stag, 'slow', 'seconds=120');
  t.equal(rec.outcome, 'timed-out');
  t.equal(rec.error?.code, 'PULSER_E_TEMPLATE_TIMEOUT');
  t.ok(rec.durationMs! < 10_000, `returned after ${rec.durationMs} ms`);
  const ps = await inContainer(stag, ['ps', '-o', 'args']);
  t.notMatch(ps, /sleep 120/, 'the process is gone');
});

t.test('SQL: parameters are data, and the transaction is read-only', async (t) => {
  const injected = "x'; DROP DATABASE postgres; --";
  const echo = await run(stag, 'echo-sql', `text=${injected}`);
  t.equal(echo.outcome, 'succeeded', JSON.stringify(echo.error));
  t.equal(echo.output, `value\n${injected}`);
  const size = await run(stag, 'database-size');
  t.equal(size.output, 'has_size\ntrue');
  t.same(size.sqlParams, [db]);
  const write = await run(stag, 'write-sql');
  t.equal(write.outcome, 'failed');
  t.match(write.error?.message, /read-only transaction/);
  const check = new pg.Client({ connectionString: process.env.PULSER_TEST_PG_URL!.replace(/\/postgres$/, `/${db}`) });
  await check.connect();
  const { rows } = await check.query("SELECT count(*)::int AS n FROM pg_tables WHERE tablename = 'pulser_should_not_exist'");
  await check.end();
  t.equal(rows[0].n, 0, 'no table was created');
});

t.test('every run, refused or not, is recorded with who, what, output, exit code and duration', async (t) => {
  const dir = path.join(w.root, 'evidence', 'runs');
  const files = (await readdir(dir)).filter((f) => f.endsWith('.json'));
  t.equal(files.length, runs.length + 1, 'one record per run (and the bad --as one)');
  const first = runs[0]!;
  const stored = JSON.parse(await readFile(path.join(dir, `${first.runId}.json`), 'utf8')) as RunRecord;
  t.equal(stored.who.as, 'alice');
  t.ok(stored.who.user.length > 0);
  t.equal(stored.template, 'record-args');
  t.same(stored.params, { a: literals[0]![1], b: '7' });
  t.equal(stored.exitCode, 0);
  t.type(stored.durationMs, 'number');
  t.equal(stored.outcome, 'succeeded');
  const all = await Promise.all(files.map(async (f) => JSON.parse(await readFile(path.join(dir, f), 'utf8')) as RunRecord));
  t.notOk(all.some((r) => r.outcome === 'running'), 'no run left open');
  t.notOk(JSON.stringify(all).includes(process.env.TEST_DB_PASSWORD!), 'no secret in any record');
});

t.teardown(() => p.close());

t.test('the shipped ops/templates.yaml is valid and has at least 10 templates', async (t) => {
  const shipped = await loadTemplates(path.resolve(import.meta.dirname, '..', '..'));
  t.ok(shipped.size >= 10, `${shipped.size} templates`);
  const prodAllowed = [...shipped.values()].filter((x) => x.tiers.includes('production')).length;
  const stagingAllowed = [...shipped.values()].filter((x) => x.tiers.includes('staging')).length;
  t.ok(prodAllowed < stagingAllowed, 'production allows fewer templates');
});
