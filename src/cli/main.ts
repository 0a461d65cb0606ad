// The `pulser` command line. Library code throws coded errors; only this entry point turns them
// into messages and exit codes (0 ok, 1 failure, 2 usage, 3 drift found with --detailed-exitcode).
import { parseArgs } from 'node:util';
import path from 'node:path';
import type { Pulser } from '../app.ts';
import type { Level } from '../core/log.ts';
import { asPulserError, PulserError } from '../errors.ts';
import { renderApply, renderPlan, renderStatus, renderValidation } from './render.ts';
import { createProgress, type Progress } from './progress.ts';
import type { EnvLoad, SpecSnapshot } from '../spec/model.ts';
import type { PassRecord } from '../core/record.ts';
import type { EnvStatus } from '../core/status.ts';
import { VERSION } from '../version.ts';
import type { GitOpsFlags } from './gitops.ts';
import { BACKUP_USAGE, GITOPS_CLI_OPTIONS, GITOPS_USAGE } from './options.ts';

export const EXIT = { ok: 0, failure: 1, usage: 2, drift: 3 } as const;

const USAGE = `pulser ${VERSION} — GitOps reconciler for self-hosted Odoo

Usage: pulser <command> [options]

Commands:
  validate                 check every spec in environments/ (and ops/kv references); an unset
                           secret is a notice (--require-secrets: an error)
  plan [env]               show what would change (--detailed-exitcode: exit 3 when drift;
                           --untrusted: plan a checkout nobody reviewed, as a pull request is)
  apply [env]              apply the plan now, also for sync.auto=false or stalled environments
  reconcile --once         one pass over every environment, then exit
  reconcile --watch        run continuously: file watch, intervals, HTTP server (default)
  status                   in-sync state, drift, running image and last pass of every environment
  render alerts|dashboard  Prometheus alerting rules / Grafana dashboard from the alerts sections
  logs <env> [service]     the last records of an environment's Odoo log (\`pulser logs --help\`)
  run <env> <template> …   a template of ops/templates.yaml (\`pulser run --list\`, \`pulser run --help\`)
  deps <module…>           install order of modules and their dependencies (\`pulser deps --help\`)
  demo                     build the demo images if missing, then \`reconcile --watch\` on environments/
${BACKUP_USAGE}  version                  print the version
${GITOPS_USAGE}
Options:
  --dir DIR                the GitOps root holding environments/ and ops/kv/ (default: current folder)
  --evidence-dir DIR       where evidence packs go (default: DIR/evidence)
  --evidence-keep N        evidence packs kept per environment (default: 200)
  --secrets-file FILE      secrets file outside git (default: $PULSER_SECRETS_FILE)
  --listen HOST:PORT       HTTP server of reconcile --watch (default: 127.0.0.1:9470)
  --mail-listen HOST:PORT  SMTP mail catcher of reconcile --watch (default: 127.0.0.1:2525; \`off\`)
  --concurrency N          environments reconciled in parallel (default: 4)
  --server URL             status: ask a running pulser instead of observing directly
  --json                   machine-readable output
  --to ENV                 restore: the environment restored into
  --force-production       restore: allow restoring over a production environment
  --no-wait                apply, backup, restore: fail with PULSER_E_LEASE_HELD instead of waiting
                           while another process (named) is changing the environment
  --untrusted              plan: secrets stay references, and only what --trusted-dir declares
                           is contacted (without it, nothing is)
  --trusted-dir DIR        plan --untrusted: a checkout of the tracked branch, loaded with its secrets
  --log-level LEVEL        debug | info | warn | error (default: info; warn for validate, plan, status)
  -h, --help               this help
`;

interface Flags extends GitOpsFlags {
  dir: string;
  'evidence-dir'?: string;
  'evidence-keep'?: string;
  'secrets-file'?: string;
  listen: string;
  'mail-listen': string;
  concurrency: string;
  server?: string;
  json: boolean;
  once: boolean;
  watch: boolean;
  'detailed-exitcode': boolean;
  'log-level'?: string;
  help: boolean;
  to?: string;
  'force-production': boolean;
  untrusted: boolean;
  'trusted-dir'?: string;
  'no-wait': boolean;
  'require-secrets': boolean;
  /** `pulser apply staging`: how this process is named in the leases it holds (not an option) */
  commandLine?: string;
}

function parse(argv: string[]): { command: string; args: string[]; flags: Flags } {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        dir: { type: 'string', default: process.env.PULSER_DIR ?? '.' },
        'evidence-dir': { type: 'string' },
        'evidence-keep': { type: 'string', default: process.env.PULSER_EVIDENCE_KEEP },
        'secrets-file': { type: 'string' },
        listen: { type: 'string', default: process.env.PULSER_LISTEN ?? '127.0.0.1:9470' },
        'mail-listen': { type: 'string', default: process.env.PULSER_MAIL_LISTEN ?? '127.0.0.1:2525' },
        concurrency: { type: 'string', default: process.env.PULSER_CONCURRENCY ?? '4' },
        server: { type: 'string' },
        json: { type: 'boolean', default: false },
        once: { type: 'boolean', default: false },
        watch: { type: 'boolean', default: false },
        'detailed-exitcode': { type: 'boolean', default: false },
        'log-level': { type: 'string', default: process.env.PULSER_LOG_LEVEL },
        help: { type: 'boolean', short: 'h', default: false },
        ...GITOPS_CLI_OPTIONS,
        to: { type: 'string' },
        'force-production': { type: 'boolean', default: false },
        untrusted: { type: 'boolean', default: false },
        'no-wait': { type: 'boolean', default: false },
        'require-secrets': { type: 'boolean', default: false },
        'trusted-dir': { type: 'string' },
      },
    });
  } catch (err) {
    throw new PulserError('PULSER_E_USAGE', (err as Error).message);
  }
  const [command = 'help', ...args] = parsed.positionals;
  const flags = parsed.values as Flags;
  flags.commandLine = ['pulser', command, ...args].join(' ').slice(0, 200);
  return { command, args, flags };
}

function parseListen(text: string, flag = '--listen'): { host: string; port: number } {
  const m = /^(.+):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port < 0 || port > 65535) throw new PulserError('PULSER_E_USAGE', `${flag} must be HOST:PORT, got ${JSON.stringify(text)}`);
  return { host: m[1]!, port };
}

/** PULSER_MAIL_MAX_MESSAGES / PULSER_MAIL_MAX_BYTES (kept per environment), PULSER_MAIL_MAX_MESSAGE_BYTES. */
function mailLimits(): { retention?: { maxMessages?: number; maxBytes?: number }; maxMessageBytes?: number } {
  const read = (name: string): number | undefined => {
    const v = process.env[name];
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < 1) throw new PulserError('PULSER_E_USAGE', `${name} must be a positive integer, got ${JSON.stringify(v)}`);
    return n;
  };
  const [maxMessages, maxBytes, maxMessageBytes] = ['PULSER_MAIL_MAX_MESSAGES', 'PULSER_MAIL_MAX_BYTES', 'PULSER_MAIL_MAX_MESSAGE_BYTES'].map(read);
  return {
    retention: { ...(maxMessages ? { maxMessages } : {}), ...(maxBytes ? { maxBytes } : {}) },
    ...(maxMessageBytes ? { maxMessageBytes } : {}),
  };
}

function parseConcurrency(text: string): number {
  return parseCount('--concurrency', text, 256);
}

function parseCount(flag: string, text: string, max = 1_000_000): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > max) throw new PulserError('PULSER_E_USAGE', `${flag} must be an integer from 1 to ${max}, got ${JSON.stringify(text)}`);
  return n;
}

export interface Io {
  out: (text: string) => void;
  err: NodeJS.WritableStream & { isTTY?: boolean };
  isTTY: boolean;
  /** the live progress line on `err`, one per invocation */
  progress?: Progress;
}

const defaultIo: Io = {
  out: (t) => process.stdout.write(t.endsWith('\n') ? t : t + '\n'),
  err: process.stderr,
  isTTY: Boolean(process.stdout.isTTY),
};

// The engine (and every package it uses) loads only for the commands that need it.
async function makePulser(flags: Flags, io: Io, withEvidence: boolean, extra: { unsetSecrets?: 'notice' } = {}): Promise<Pulser> {
  const [{ createPulser }, { gitopsFrom }] = await Promise.all([import('../app.ts'), import('./gitops.ts')]);
  const progress = io.progress ?? createProgress(io.err, Boolean(io.err.isTTY));
  // Commands that only look at the world keep stderr for warnings; the ones that act log their steps.
  const level = (flags['log-level'] ?? (withEvidence ? 'info' : 'warn')) as Level;
  if (!['debug', 'info', 'warn', 'error'].includes(level)) throw new PulserError('PULSER_E_USAGE', `--log-level must be debug, info, warn or error`);
  return createPulser({
    ...gitopsFrom(flags),
    evidenceDir: withEvidence ? (flags['evidence-dir'] ?? undefined) : null,
    evidenceKeep: flags['evidence-keep'] === undefined ? undefined : parseCount('--evidence-keep', flags['evidence-keep']),
    secretsFile: flags['secrets-file'],
    concurrency: parseConcurrency(flags.concurrency),
    progress: (env, msg) => progress.update(env, msg),
    logLevel: level,
    logWrite: (line) => progress.log(line),
    command: flags.commandLine,
    ...extra,
    ...(flags['mail-listen'] === 'off' ? {} : { catcher: { ...parseListen(flags['mail-listen'], '--mail-listen'), ...mailLimits() } }),
  });
}

function selectEnvs(snap: SpecSnapshot, env: string | undefined): EnvLoad[] {
  if (env === undefined) return [...snap.envs.values()].sort((a, b) => a.name.localeCompare(b.name));
  const load = snap.envs.get(env);
  if (!load) {
    const known = [...snap.envs.keys()].sort().join(', ') || 'none';
    throw new PulserError('PULSER_E_ENV_UNKNOWN', `no environment ${JSON.stringify(env)} in environments/ (known: ${known})`);
  }
  return [load];
}

async function runPasses(p: Pulser, loads: EnvLoad[], mode: 'plan' | 'apply', trigger: string, waitForLease = true): Promise<PassRecord[]> {
  const out: PassRecord[] = [];
  for (const load of loads) out.push(await p.engine.runPass(load, { mode, trigger, force: mode === 'apply', fresh: true, waitForLease }));
  return out;
}

async function cmdValidate(flags: Flags, io: Io): Promise<number> {
  // Structure and references need no secret value (a CI check has none): an unset one is a notice.
  const p = await makePulser(flags, io, false, flags['require-secrets'] ? {} : { unsetSecrets: 'notice' });
  const snap = await p.load().finally(() => p.close());
  const { text, ok } = renderValidation(snap);
  if (flags.json) {
    io.out(
      JSON.stringify(
        {
          ok,
          hostErrors: snap.hostErrors.map((e) => e.toJSON()),
          notices: (snap.notices ?? []).map((e) => e.toJSON()),
          environments: [...snap.envs.values()].map((l) => (l.ok ? { env: l.name, file: l.file, ok: true, specHash: l.desired.specHash } : { env: l.name, file: l.file, ok: false, errors: l.errors.map((e) => e.toJSON()) })),
        },
        null,
        2,
      ),
    );
  } else io.out(text);
  return ok ? EXIT.ok : EXIT.failure;
}

/** `pulser plan --untrusted`: what CI on a fork runs; see src/gitops/untrusted-plan.ts. */
async function cmdPlanUntrusted(args: string[], flags: Flags, io: Io): Promise<number> {
  const root = path.resolve(flags.dir);
  const trustedDir = flags['trusted-dir'] === undefined ? null : path.resolve(flags['trusted-dir']);
  const [{ createLogger }, { loadSpecs }, { installationDigestKey, SecretSource }, { specCommit }, { planUntrusted }, { reconcilers }] = await Promise.all([
    import('../core/log.ts'),
    import('../spec/load.ts'),
    import('../spec/secrets.ts'),
    import('../drivers/git.ts'),
    import('../gitops/untrusted-plan.ts'),
    import('../../reconcilers/index.ts'),
  ]);
  // Digests match the live containers' only with the installation's key, kept beside the tracked checkout.
  const base = new SecretSource({ file: flags['secrets-file'] });
  const secrets = trustedDir ? base.withDigestKey(installationDigestKey(path.join(trustedDir, '.pulser'))) : base;
  const tracked = trustedDir ? await loadSpecs(trustedDir, { secrets }) : null;
  const progress = io.progress ?? createProgress(io.err, Boolean(io.err.isTTY));
  const log = createLogger({ secrets: () => tracked?.secretValues ?? [], level: (flags['log-level'] ?? 'warn') as Level, write: (line) => progress.log(line) });
  const { records } = await planUntrusted(root, {
    tracked,
    secrets,
    reconcilers,
    log,
    knownSecrets: () => tracked?.secretValues ?? [],
    trigger: 'cli plan --untrusted',
    commit: await specCommit(root),
    only: args[0] === undefined ? undefined : [args[0]],
  });
  if (flags.json) io.out(JSON.stringify(records.map(planJson), null, 2));
  else io.out(records.map((r) => renderPlan(r, io.isTTY)).join('\n\n'));
  // Declining to contact something is what --untrusted asks for, not a failure.
  const failed = records.some((r) => (r.outcome === 'failed' || r.outcome === 'invalid') && (r.errors.length === 0 || r.errors.some((e) => e.code !== 'PULSER_E_NOT_OBSERVED')));
  if (failed) return EXIT.failure;
  if (flags['detailed-exitcode'] && records.some((r) => r.plan.changes.length > 0)) return EXIT.drift;
  return EXIT.ok;
}

async function cmdPlanOrApply(mode: 'plan' | 'apply', args: string[], flags: Flags, io: Io): Promise<number> {
  if (args.length > 1) throw new PulserError('PULSER_E_USAGE', `${mode} takes at most one environment`);
  if (flags.untrusted && mode !== 'plan') throw new PulserError('PULSER_E_USAGE', '--untrusted is an option of plan only: an untrusted spec is never applied');
  if (flags['trusted-dir'] !== undefined && !flags.untrusted) throw new PulserError('PULSER_E_USAGE', '--trusted-dir goes with plan --untrusted');
  if (flags.untrusted) return cmdPlanUntrusted(args, flags, io);
  const p = await makePulser(flags, io, mode === 'apply');
  try {
    if (mode === 'apply') await p.recoverInterrupted();
    const snap = await p.load();
    const recs = await runPasses(p, selectEnvs(snap, args[0]), mode, `cli ${mode}`, !flags['no-wait']);
    if (flags.json) io.out(JSON.stringify(mode === 'plan' ? recs.map(planJson) : recs, null, 2));
    else io.out(recs.map((r) => (mode === 'plan' ? renderPlan(r, io.isTTY) : renderApply(r, io.isTTY))).join('\n\n'));
    const failed = recs.some((r) => r.outcome === 'failed' || r.outcome === 'invalid');
    if (failed) return EXIT.failure;
    if (mode === 'plan' && flags['detailed-exitcode'] && recs.some((r) => r.plan.changes.length > 0)) return EXIT.drift;
    return EXIT.ok;
  } finally {
    await p.close();
  }
}

function planJson(r: PassRecord) {
  return { env: r.env, file: r.file, outcome: r.outcome, specHash: r.specHash, changes: r.plan.changes, findings: r.plan.findings, errors: r.errors };
}

async function cmdStatus(flags: Flags, io: Io): Promise<number> {
  let envs: EnvStatus[];
  if (flags.server) {
    const res = await fetch(new URL('/api/status', flags.server), { signal: AbortSignal.timeout(10_000) });
    if (!res.ok) throw new PulserError('PULSER_E_USAGE', `${flags.server} answered HTTP ${res.status}`);
    envs = ((await res.json()) as { environments: EnvStatus[] }).environments;
  } else {
    const { EvidenceStore } = await import('../evidence/index.ts');
    const p = await makePulser(flags, io, false);
    try {
      const snap = await p.load();
      await runPasses(p, selectEnvs(snap, undefined), 'plan', 'cli status');
      envs = p.engine.status.all();
      // Status observes with plan passes (no evidence) and reads the last recorded pass of each.
      const store = new EvidenceStore({ dir: flags['evidence-dir'] ?? path.join(p.root, 'evidence'), secrets: () => [] });
      for (const s of envs) {
        const last = await store.latest(s.env).catch(() => null);
        if (last) s.lastPass = { passId: last.passId, trigger: last.trigger, mode: last.mode, outcome: last.outcome ?? 'failed', startedAt: last.startedAt, endedAt: last.endedAt, durationMs: last.durationMs, commit: last.commit };
      }
    } finally {
      await p.close();
    }
  }
  if (flags.json) io.out(JSON.stringify({ environments: envs }, null, 2));
  else io.out(envs.length ? renderStatus(envs) : 'no environments');
  return envs.every((s) => s.inSync) ? EXIT.ok : EXIT.failure;
}

async function cmdReconcile(flags: Flags, io: Io): Promise<number> {
  if (flags.once && flags.watch) throw new PulserError('PULSER_E_USAGE', 'choose one of --once and --watch');
  const p = await makePulser(flags, io, true);
  if (flags.once) {
    try {
      await p.recoverInterrupted();
      await p.start(false);
      await p.loop.idle();
    } finally {
      await p.close();
    }
    const statuses = p.engine.status.all();
    if (flags.json) io.out(JSON.stringify({ environments: statuses }, null, 2));
    else io.out(renderStatus(statuses));
    return statuses.some((s) => s.lastPass.outcome === 'failed' || s.lastPass.outcome === 'invalid') ? EXIT.failure : EXIT.ok;
  }
  return runDaemon(p, flags);
}

export async function runDaemon(p: Pulser, flags: Flags): Promise<number> {
  const { host, port } = parseListen(flags.listen);
  let ready = false;
  const app = p.server(() => ready);
  await p.recoverInterrupted();
  // Without its catcher the daemon still reconciles; environments in mail.mode catch report it.
  await p.startMail().catch((err: unknown) => p.log.warn(asPulserError(err).message, { code: 'PULSER_E_MAIL_CATCHER' }));
  await app.listen({ host, port });
  p.log.info(`pulser ${VERSION} serving on http://${host}:${port} (metrics, status, evidence); watching ${p.root}`);
  await p.start(true);
  await p.monitor.start();
  ready = true;
  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = async (signal: string) => {
      if (stopping) return;
      stopping = true;
      ready = false;
      p.log.info(`${signal}: finishing passes under way, then stopping`);
      await p.close();
      await app.close();
      resolve(EXIT.ok);
    };
    process.once('SIGTERM', () => void stop('SIGTERM'));
    process.once('SIGINT', () => void stop('SIGINT'));
  });
}

async function cmdDemo(flags: Flags, io: Io): Promise<number> {
  const { prepareDemo } = await import('../demo/run.ts');
  await prepareDemo(path.resolve(flags.dir), (line) => io.err.write(line + '\n'));
  flags.watch = true;
  return runDaemon(await makePulser(flags, io, true), flags);
}

/** Commands with flags of their own, each in its own file. */
const OWN_COMMANDS: Record<string, (argv: string[], io: Io) => Promise<number>> = {
  logs: async (a, io) => (await import('./logs.ts')).cmdLogs(a, io),
  run: async (a, io) => (await import('./run.ts')).cmdRun(a, io),
  deps: async (a, io) => (await import('./deps.ts')).cmdDeps(a, io),
};

export async function main(argv: string[], given: Io = defaultIo): Promise<number> {
  // Every result, and every error, first clears the live progress line it would otherwise land on.
  const live = given.progress ?? createProgress(given.err, Boolean(given.err.isTTY));
  const io: Io = {
    ...given,
    progress: live,
    out: (text) => {
      live.end();
      given.out(text);
    },
  };
  try {
    const own = OWN_COMMANDS[argv[0] ?? ''];
    if (own) return await own(argv.slice(1), io);
    const { command, args, flags } = parse(argv);
    if (flags.help || command === 'help') {
      io.out(USAGE);
      return EXIT.ok;
    }
    switch (command) {
      case 'version':
        io.out(VERSION);
        return EXIT.ok;
      case 'validate':
        return await cmdValidate(flags, io);
      case 'plan':
      case 'diff':
        return await cmdPlanOrApply('plan', args, flags, io);
      case 'apply':
        return await cmdPlanOrApply('apply', args, flags, io);
      case 'status':
        return await cmdStatus(flags, io);
      case 'reconcile':
        return await cmdReconcile(flags, io);
      case 'demo':
        return await cmdDemo(flags, io);
      case 'render':
        return await (await import('./render-alerts.ts')).cmdRender(args, { root: path.resolve(flags.dir), secretsFile: flags['secrets-file'] }, io);
      case 'kv':
        return await (await import('./gitops.ts')).cmdKv(args, flags, io.out);
      case 'backup':
      case 'backups':
      case 'restore':
        return await (await import('./backups.ts')).runBackupCommand(command, await makePulser(flags, io, false), args, flags, { out: io.out });
      default:
        throw new PulserError('PULSER_E_USAGE', `unknown command ${JSON.stringify(command)}; run \`pulser help\``);
    }
  } catch (err) {
    const e = asPulserError(err);
    live.end();
    io.err.write(`pulser: ${e.code}: ${e.toString()}\n`);
    if (e.code === 'PULSER_E_INTERNAL' && err instanceof Error && err.stack) io.err.write(err.stack + '\n');
    return e.code === 'PULSER_E_USAGE' ? EXIT.usage : EXIT.failure;
  }
}
