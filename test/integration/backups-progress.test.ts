// What a person sees of `pulser backup` and `pulser restore`: run under a pseudo-terminal
// (util-linux `script`), a live line with bytes and a rate rewritten in place, cut to the terminal's
// width, and a screen that ends with the result alone; through pipes, plain lines and no escape codes.
import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { World, suffix, freePort } from '../helpers/world.ts';
import { PgPools } from '../../src/drivers/postgres.ts';
import { createOdooDb, dropDb, envYaml, PG, rowCounts } from '../helpers/odoo-db.ts';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const bin = path.join(repo, 'bin', 'pulser.js');
const sfx = suffix();
// Two environments, one watched on a terminal and one through pipes, so both runs go side by side.
const tty = { env: `prg-${sfx}`, db: `prg_${sfx}` };
const pipe = { env: `prp-${sfx}`, db: `prp_${sfx}` };
const COLUMNS = 60;
const pools = new PgPools();
const dest = await mkdtemp(path.join(tmpdir(), 'pulser-progress-'));
const w = await World.create();
t.teardown(async () => {
  await w.cleanup();
  for (const e of [tty, pipe]) await dropDb(pools, e.db);
  await pools.close();
  await rm(dest, { recursive: true, force: true });
});

// The database only (no container), so the commands' own work is all there is to watch.
for (const e of [tty, pipe]) {
  await createOdooDb(pools, e.db, 20_000);
  await w.writeFile(`environments/${e.env}.yaml`, envYaml({ name: e.env, tier: 'staging', port: await freePort(), database: e.db, extra: `backup:\n  schedule: "0 3 * * *"\n  filestore: false\n  destination: { type: local, path: ${dest} }\n` }));
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function childEnv(): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = { ...process.env };
  for (const k of ['PULSER_DIR', 'PULSER_LISTEN', 'PULSER_CONCURRENCY', 'PULSER_LOG_LEVEL', 'PULSER_SECRETS_FILE']) delete e[k];
  // tap's per-process coverage hook makes each CLI start-up half as long again; these runs are
  // about what the CLI does and prints.
  delete e.NODE_OPTIONS;
  return e;
}

function run(cmd: string, args: string[]): Promise<Run> {
  const child = spawn(cmd, args, { cwd: repo, env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** `pulser ARGS` on a pseudo-terminal COLUMNS wide; stdout and stderr both arrive as what the terminal got. */
function onTerminal(args: string[]): Promise<Run> {
  const line = [process.execPath, bin, ...args, '--dir', w.root].map(quote).join(' ');
  return run('script', ['-qfec', `stty cols ${COLUMNS} rows 24; exec ${line}`, '/dev/null']);
}

function piped(args: string[]): Promise<Run> {
  return run(process.execPath, [bin, ...args, '--dir', w.root]);
}

/** The screen a terminal shows after this output: carriage return, clear to end of line, newline. */
function screen(raw: string): string[] {
  const lines: string[] = [''];
  let col = 0;
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i]!;
    if (raw.startsWith('\x1b[K', i)) {
      lines[lines.length - 1] = lines[lines.length - 1]!.slice(0, col);
      i += 2;
    } else if (c === '\r') col = 0;
    else if (c === '\n') {
      lines.push('');
      col = 0;
    } else {
      const l = lines[lines.length - 1]!;
      lines[lines.length - 1] = l.slice(0, col) + c + l.slice(col + 1);
      col++;
    }
  }
  return lines.filter((l) => l !== '');
}

/** Each drawing of the live line: what follows a clear, unless a newline ends it (a printed line). */
function drawings(raw: string): string[] {
  return raw
    .split('\r\x1b[K')
    .slice(1)
    .flatMap((s) => {
      const m = /^([^\r\n]*)(\r?\n)?/.exec(s)!;
      return m[1] && !m[2] ? [m[1]] : [];
    });
}

function liveLine(t: Test, r: Run, bytes: RegExp): void {
  t.equal(r.code, 0, 'exit 0', { output: r.stdout, stderr: r.stderr });
  const drawn = drawings(r.stdout);
  t.ok(drawn.length >= 2, 'the live line is drawn and redrawn in place', { drawn });
  t.ok(
    drawn.some((d) => bytes.test(d)),
    'a drawing shows bytes and a rate',
    { drawn },
  );
  t.ok(
    drawn.every((d) => [...d].length <= COLUMNS - 1),
    `no drawing is wider than the terminal's ${COLUMNS} columns`,
    { drawn },
  );
  t.ok(
    drawn.some((d) => d.endsWith('…')),
    'a longer message is cut with an ellipsis',
    { drawn },
  );
  t.notMatch(r.stdout, /^progress /m, 'no plain progress lines on a terminal');
}

function plain(t: Test, r: Run, bytes: RegExp): void {
  t.equal(r.code, 0, 'exit 0', { stdout: r.stdout, stderr: r.stderr });
  t.match(r.stderr, new RegExp(`^progress ${pipe.env}: ${bytes.source}$`, 'm'), 'a plain line with bytes and a rate');
  t.notMatch(r.stdout + r.stderr, /[\r\x1b]/, 'no carriage return or escape code');
}

const ids = { tty: '', pipe: '' };

t.test('pulser backup: a live line on a terminal, the summary alone at the end; plain lines through pipes', async (t) => {
  const [onTty, piping] = await Promise.all([onTerminal(['backup', tty.env]), piped(['backup', pipe.env])]);
  t.test('on a terminal', async (t) => {
    liveLine(t, onTty, new RegExp(`^${tty.env}: dump of ${tty.db}: [0-9.]+ (B|KiB|MiB) \\([0-9.]+ (B|KiB|MiB)/s\\)$`));
    const shown = screen(onTty.stdout);
    t.equal(shown.length, 1, 'nothing but the summary is left on the screen', { shown });
    const m = new RegExp(`^backup (${tty.env}-\\d{8}T\\d{6}Z): [0-9.]+ (KiB|MiB) in [0-9.]+ s \\([0-9.]+ (B|KiB|MiB)/s\\) → `).exec(shown[0] ?? '');
    t.ok(m, 'the summary line', { shown });
    ids.tty = m?.[1] ?? '';
  });
  t.test('through pipes', async (t) => {
    plain(t, piping, new RegExp(`dump of ${pipe.db}: [0-9.]+ (B|KiB|MiB) \\([0-9.]+ (B|KiB|MiB)/s\\)`));
    const m = new RegExp(`^backup (${pipe.env}-\\d{8}T\\d{6}Z): `, 'm').exec(piping.stdout);
    t.ok(m, 'the summary line on stdout', { stdout: piping.stdout });
    ids.pipe = m?.[1] ?? '';
  });
});

t.test('pulser restore: the bytes pg_restore wrote, live, then the result alone; plain lines through pipes', async (t) => {
  for (const e of [tty, pipe]) await pools.get({ ...PG, database: e.db }).query(`DELETE FROM res_partner WHERE id > 10`);
  const [onTty, piping] = await Promise.all([onTerminal(['restore', ids.tty, '--to', tty.env]), piped(['restore', ids.pipe, '--to', pipe.env])]);
  t.test('on a terminal', async (t) => {
    liveLine(t, onTty, new RegExp(`^${tty.env}: pg_restore: [0-9.]+ (B|KiB|MiB) \\([0-9.]+ (B|KiB|MiB)/s\\)$`));
    t.same(screen(onTty.stdout).map((l) => l.replace(/[0-9.]+ s$/, 'N s')), [`restored ${ids.tty} into ${tty.env} (database ${tty.db}) in N s`]);
    t.equal((await rowCounts(pools, tty.db)).res_partner, 20_000, 'the backup is live');
  });
  t.test('through pipes', async (t) => {
    plain(t, piping, new RegExp(`pg_restore: [0-9.]+ (B|KiB|MiB) \\([0-9.]+ (B|KiB|MiB)/s\\)`));
    t.match(piping.stdout, new RegExp(`^restored ${ids.pipe} into ${pipe.env} \\(database ${pipe.db}\\) in [0-9.]+ s$`, 'm'));
    t.equal((await rowCounts(pools, pipe.db)).res_partner, 20_000, 'the backup is live');
  });
});

t.test('pulser apply on a terminal: the result never lands on the live line', async (t) => {
  const r = await onTerminal(['apply', tty.env]);
  t.equal(r.code, 0, 'exit 0', { output: r.stdout });
  const drawn = drawings(r.stdout);
  t.ok(drawn.length >= 1, 'the pass showed its progress on the live line', { drawn });
  const shown = screen(r.stdout);
  t.ok(shown.length >= 1, 'the result is on the screen', { shown });
  t.same(
    shown.filter((l) => drawn.some((d) => l.startsWith(d))),
    [],
    'no screen line starts with a progress drawing: the line was cleared before the result',
  );
});
