// Start-up of the command line, as shipped: bin/pulser.js runs the compiled dist/, which is what the
// sources build; `pulser version` and `pulser status --server` load none of the npm packages the
// engine needs (no fastify, dockerode, ssh2, pg); the daemon runs without a TypeScript loader; and
// `npm start` stops when npm itself gets SIGTERM, as a supervisor or `kill <npm pid>` sends it.
import t from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { World, freePort, httpGet, suffix } from '../helpers/world.ts';
import { VERSION } from '../../src/version.ts';

t.setTimeout(300_000);

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const bin = path.join(repo, 'bin', 'pulser.js');

// A module resolution hook that writes every URL a process resolves to a file: what it loaded.
const tracer = await mkdtemp(path.join(tmpdir(), 'pulser-startup-'));
await writeFile(
  path.join(tracer, 'hooks.mjs'),
  `import { appendFileSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  if (process.env.PULSER_TEST_LOADS) appendFileSync(process.env.PULSER_TEST_LOADS, r.url + '\\n');
  return r;
}
`,
);
await writeFile(path.join(tracer, 'register.mjs'), `import { register } from 'node:module';\nregister('./hooks.mjs', import.meta.url);\n`);
t.teardown(() => rm(tracer, { recursive: true, force: true }));

const w = await World.create();
t.teardown(() => w.cleanup());

function childEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, TEST_DB_PASSWORD: process.env.TEST_DB_PASSWORD ?? 'test-db-password-1', ...extra };
  for (const k of ['PULSER_DIR', 'PULSER_LISTEN', 'PULSER_MAIL_LISTEN', 'PULSER_CONCURRENCY', 'PULSER_LOG_LEVEL', 'PULSER_SECRETS_FILE']) if (!(k in extra)) delete env[k];
  return env;
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * The child's exit and output. Its output pipes close when every process holding them has exited,
 * which a process left behind never does: after the exit, they get 5 s to close.
 */
function collect(child: ChildProcess): Promise<Run> {
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => {
      let timer: NodeJS.Timeout | undefined;
      void Promise.race([closed, new Promise<void>((r) => (timer = setTimeout(r, 5000)))]).then(() => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr });
      });
    });
  });
}

let traces = 0;

/** Runs `node bin/pulser.js args…` with the resolution hook; returns its output and what it loaded. */
function traced(args: string[]): { child: ChildProcess; done: Promise<Run & { loaded: string[] }> } {
  const log = path.join(tracer, `loads-${++traces}.txt`);
  const child = spawn(process.execPath, ['--import', pathToFileURL(path.join(tracer, 'register.mjs')).href, bin, ...args], {
    cwd: repo,
    env: childEnv({ PULSER_TEST_LOADS: log }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const done = collect(child).then(async (run) => {
    const text = await readFile(log, 'utf8').catch(() => '');
    return { ...run, loaded: [...new Set(text.split('\n').filter((u) => u.startsWith('file:')))] };
  });
  return { child, done };
}

const packagesIn = (urls: string[]) => [...new Set(urls.filter((u) => u.includes('/node_modules/')).map((u) => /\/node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(u)![1]!))].sort();
const ownFiles = (urls: string[]) => urls.filter((u) => !u.includes('/node_modules/')).map((u) => path.relative(repo, fileURLToPath(u)));

t.test('dist/ is what the current sources build', async (t) => {
  const run = await collect(spawn(process.execPath, [path.join(repo, 'scripts', 'build.mjs'), '--check'], { cwd: repo, stdio: ['ignore', 'pipe', 'pipe'] }));
  t.equal(run.code, 0, 'scripts/build.mjs --check', { stderr: run.stderr });
});

t.test('version and help load no npm package, only bin/ and dist/', async (t) => {
  const [version, help] = await Promise.all([traced(['version']).done, traced(['help']).done]);
  t.equal(version.code, 0, 'version exits 0', { stderr: version.stderr });
  t.equal(version.stdout, `${VERSION}\n`);
  t.equal(help.code, 0, 'help exits 0', { stderr: help.stderr });
  t.match(help.stdout, /^Usage: pulser <command> \[options\]$/m);
  t.match(help.stdout, /^ {2}backup <env> /m, 'the backup commands are listed');
  t.match(help.stdout, /^ {2}--git URL /m, 'the GitOps options are listed');
  for (const run of [version, help]) {
    t.same(packagesIn(run.loaded), [], 'no package from node_modules');
    const own = ownFiles(run.loaded);
    t.ok(own.includes('bin/pulser.js') && own.includes(path.join('dist', 'pulser.js')), 'bin/pulser.js and dist/pulser.js', { own });
    t.same(
      own.filter((f) => f !== 'bin/pulser.js' && !/^dist\/[^/]+\.js$/.test(f)),
      [],
      'nothing else of the repository (no TypeScript source)',
    );
  }
});

t.test('status --server asks a running daemon, which runs without a TypeScript loader', async (t) => {
  const name = `startup-${suffix()}`;
  await w.env(name, { tag: '17.0.1' });
  const listen = await freePort();
  const base = `http://127.0.0.1:${listen}`;
  const daemon = traced(['reconcile', '--watch', '--dir', w.root, '--listen', `127.0.0.1:${listen}`, '--mail-listen', 'off']);
  let exited = false;
  void daemon.done.then(() => (exited = true));
  t.teardown(() => {
    if (!exited) daemon.child.kill('SIGKILL');
  });
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (exited) throw new Error(`the daemon exited early:\n${(await daemon.done).stderr}`);
    const res = await httpGet(`${base}/api/status`);
    const envs = res?.status === 200 ? (JSON.parse(res.body) as { environments: { env: string; inSync: boolean }[] }).environments : [];
    if (envs.some((e) => e.env === name && e.inSync)) break;
    if (Date.now() > deadline) throw new Error(`${name} not in sync after 120 s`);
    await new Promise((r) => setTimeout(r, 100));
  }

  const [text, json] = await Promise.all([traced(['status', '--server', base]).done, traced(['status', '--server', base, '--json']).done]);
  t.equal(text.code, 0, 'status --server exits 0 (every environment in sync)', { stderr: text.stderr });
  t.match(text.stdout, new RegExp(`^${name}\\s+staging\\s+local\\s+valid\\s+in sync\\s+0\\s+pulser-demo/odoo:17\\.0\\.1\\s`, 'm'));
  t.equal(json.code, 0, { stderr: json.stderr });
  t.match(JSON.parse(json.stdout), { environments: [{ env: name, inSync: true, specValid: true }] });
  for (const run of [text, json]) t.same(packagesIn(run.loaded), [], 'status --server loads no package from node_modules');

  daemon.child.kill('SIGTERM');
  const d = await daemon.done;
  t.equal(d.code, 0, 'the daemon exits 0 on SIGTERM', { stderr: d.stderr.slice(-2000) });
  const packages = packagesIn(d.loaded);
  t.ok(packages.includes('fastify') && packages.includes('dockerode'), 'the daemon loads its engine', { packages });
  t.notOk(packages.includes('tsx'), 'the daemon does not load tsx', { packages });
  t.same(
    ownFiles(d.loaded).filter((f) => f !== 'bin/pulser.js' && !/^dist\/[^/]+\.js$/.test(f)),
    [],
    'the daemon runs dist/, not the TypeScript sources',
  );
});

/** Processes whose parent chain leads to `root` (by /proc), with their command lines. */
function descendants(root: number): { pid: number; cmd: string }[] {
  const parent = new Map<number, number>();
  const cmd = new Map<number, string>();
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid)) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      parent.set(pid, Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
      cmd.set(pid, readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim());
    } catch {
      // gone meanwhile
    }
  }
  const out: { pid: number; cmd: string }[] = [];
  for (const [pid] of parent) {
    for (let p = parent.get(pid); p !== undefined && p > 1; p = parent.get(p)) {
      if (p === root) {
        out.push({ pid, cmd: cmd.get(pid) ?? '' });
        break;
      }
    }
  }
  return out;
}

/** True while the process exists and is not a zombie. */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

t.test('npm start: SIGTERM to the npm process stops the pulser process too', async (t) => {
  const demo = await World.create();
  t.teardown(() => demo.cleanup());
  const listen = await freePort();
  const npm = spawn('npm', ['start'], {
    cwd: repo,
    env: childEnv({ PULSER_DIR: demo.root, PULSER_LISTEN: `127.0.0.1:${listen}`, PULSER_MAIL_LISTEN: 'off' }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const done = collect(npm);
  let exited = false;
  void done.then(() => (exited = true));
  let daemon: number | null = null;
  t.teardown(() => {
    if (!exited) npm.kill('SIGKILL');
    if (daemon !== null && running(daemon)) process.kill(daemon, 'SIGKILL');
  });

  const deadline = Date.now() + 120_000;
  while ((await httpGet(`http://127.0.0.1:${listen}/healthz`))?.status !== 200) {
    if (exited) throw new Error(`npm start exited early:\n${(await done).stderr}`);
    if (Date.now() > deadline) throw new Error('npm start: /healthz did not answer 200 within 120 s');
    await new Promise((r) => setTimeout(r, 100));
  }
  // The node process itself (not a shell that would run it).
  const pulser = descendants(npm.pid!).filter((p) => path.basename(p.cmd.split(' ')[0]!) === 'node' && p.cmd.includes('bin/pulser.js demo'));
  t.equal(pulser.length, 1, 'one pulser process under npm', { processes: descendants(npm.pid!) });
  daemon = pulser[0]?.pid ?? null;
  if (daemon === null) return;

  npm.kill('SIGTERM');
  const run = await done;
  const gone = Date.now() + 15_000;
  while (running(daemon) && Date.now() < gone) await new Promise((r) => setTimeout(r, 50));
  t.notOk(running(daemon), `the pulser process (pid ${daemon}) has stopped`, { output: run.stderr.slice(-2000) });
  t.match(run.stderr, /SIGTERM: finishing passes under way, then stopping/, 'pulser itself got the SIGTERM and stopped gracefully');
  t.equal(run.code, 0, 'npm start exits 0', { output: run.stderr.slice(-2000) });
});
