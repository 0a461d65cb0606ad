// The composition root: wires spec loading, drivers, engine, evidence, metrics, loop and server
// from one options object. The CLI and the tests build pulser through here.
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { loadSpecs } from './spec/load.ts';
import { installationDigestKey, SecretSource } from './spec/secrets.ts';
import type { SpecSnapshot } from './spec/model.ts';
import { createDrivers, type Drivers, type SshOptions } from './drivers/index.ts';
import type { MailCatcherRoute } from './odoo/catcher-route.ts';
import { Engine } from './core/engine.ts';
import { ReconcileLoop } from './core/loop.ts';
import { EvidenceStore } from './evidence/index.ts';
import { Metrics } from './metrics.ts';
import { buildServer } from './server.ts';
import { createLogger, type Level, type Logger } from './core/log.ts';
import { reconcilers } from '../reconcilers/index.ts';
import { pruneRemovedEnvironments } from '../reconcilers/containers/prune.ts';
import { Inventory } from './core/inventory.ts';
import { StatusStore } from './core/status-store.ts';
import { describeHolder, Leases, type Lease } from './core/lease.ts';
import { canonicalJson } from './core/canonical.ts';
import type { PassRecord } from './core/record.ts';
import { specCommit } from './drivers/git.ts';
import { Monitor, backupsFromStatus, type MonitorOptions } from './monitor/monitor.ts';
import { GitOps, type GitOpsOptions } from './gitops/index.ts';
import { createLogReader, type LogReader } from './logs/index.ts';
import type { MailCatcher, MailCatcherOptions } from './mail/catcher.ts';
import { catcherSecret } from './mail/secret.ts';

export interface PulserOptions {
  root: string;
  evidenceDir?: string | null;
  /** 'notice': an unset secret leaves the environment valid (`pulser validate` without --require-secrets) */
  unsetSecrets?: 'error' | 'notice';
  /** what this process is, as named in the leases it holds (`pulser apply staging`, `pulser reconcile`) */
  command?: string;
  /** where pulser keeps its own state (inventory, journals, keys); default `<root>/.pulser`, beside the clone with `git` */
  stateDir?: string;
  evidenceKeep?: number;
  secretsFile?: string;
  concurrency?: number;
  /** where log lines go (stderr by default); every line is masked with the secrets pulser resolved */
  logWrite?: (line: string) => void;
  logLevel?: Level;
  /** JSON lines (default: when stderr is not a terminal) */
  logJson?: boolean;
  progress?: (env: string, message: string) => void;
  processMetrics?: boolean;
  debounceMs?: number;
  dockerTimeoutMs?: number;
  /** probes, KPIs and alerts: providers and poll intervals */
  monitor?: Partial<Omit<MonitorOptions, 'drivers' | 'metrics' | 'log' | 'stateDir'>>;
  /** follow a branch of a git repository: `root` is then pulser's own working clone of it, and
   * evidence and state default to its parent folder */
  git?: GitOpsOptions;
  /** SSH timeouts, keepalive and reconnect backoff for remote hosts */
  ssh?: SshOptions;
  /** the mail catcher environments in `mail.mode: catch` send to */
  mailCatcher?: MailCatcherRoute;
  /** run pulser's own mail catcher (started by `startMail()`); absent: off */
  catcher?: Omit<MailCatcherOptions, 'dir' | 'secret' | 'log'>;
}

export interface Pulser {
  root: string;
  /** pulser's own state (journals, inventory, keys): beside the clone with --git, never inside it */
  stateDir: string;
  /** holds an environment's lease for work outside a pass (`pulser backup`, `pulser restore`) */
  lease(env: string, wait: boolean): Promise<Lease>;
  engine: Engine;
  loop: ReconcileLoop;
  metrics: Metrics;
  evidence: EvidenceStore | null;
  monitor: Monitor;
  log: Logger;
  load(): Promise<SpecSnapshot>;
  drivers(): Drivers;
  /** reads an environment's container log (the log explorer) */
  logs: LogReader;
  server(ready?: () => boolean): FastifyInstance;
  /** the tracked repository, dispatches and GitHub (with `git` only) */
  gitops: GitOps | null;
  /** first sync of the git source (when tracked), then the loop: with `watch`, keeps going */
  start(watch: boolean): Promise<void>;
  /** reports passes a previous run left unfinished; returns their records */
  recoverInterrupted(): Promise<PassRecord[]>;
  /** starts the mail catcher when the options ask for one; the running catcher or null */
  startMail(): Promise<MailCatcher | null>;
  mail(): MailCatcher | null;
  close(): Promise<void>;
}

export function createPulser(opts: PulserOptions): Pulser {
  const root = path.resolve(opts.root);
  // A tracked clone holds only what is in git: pulser's own files go next to it.
  const stateHome = opts.git ? path.dirname(root) : root;
  const secretValues = new Set<string>();
  const secretsOf = () => secretValues;
  const log = createLogger({ secrets: secretsOf, level: opts.logLevel, json: opts.logJson, write: opts.logWrite });
  const stateDir = opts.stateDir ?? path.join(stateHome, '.pulser');
  const secrets = new SecretSource({ file: opts.secretsFile, root, digestKey: installationDigestKey(stateDir) });
  const metrics = new Metrics({ processMetrics: opts.processMetrics });
  let gitops: GitOps | null = null;
  const evidence =
    opts.evidenceDir === null ? null : new EvidenceStore({ dir: opts.evidenceDir ?? path.join(stateHome, 'evidence'), keep: opts.evidenceKeep, secrets: secretsOf, log });
  const inventory = new Inventory(stateDir);
  const leases = new Leases(stateDir, opts.command ?? 'pulser');
  let catcher: MailCatcher | null = null;
  // The route the mail reconciler writes into Odoo: every password it hands out is masked in logs.
  const catcherRoute: MailCatcherRoute = {
    get port() {
      return catcher!.port;
    },
    credentialsFor(env) {
      const c = catcher!.credentialsFor(env);
      secretValues.add(c.pass);
      return c;
    },
  };

  let drivers: Drivers | null = null;
  let hostsKey = '';
  let commit = 'uncommitted';
  let latest: SpecSnapshot | null = null;

  const load = async (): Promise<SpecSnapshot> => {
    // A tracked clone is never edited by hand: its commit is the one the source last applied.
    const [snap, head] = await Promise.all([loadSpecs(root, { secrets, unsetSecrets: opts.unsetSecrets }), gitops?.repo.commit ?? specCommit(root)]);
    commit = head;
    latest = snap;
    for (const s of snap.secretValues) secretValues.add(s);
    const key = canonicalJson([...snap.hosts.entries()]);
    if (!drivers || key !== hostsKey) {
      await drivers?.close();
      drivers = createDrivers(snap.hosts, {
        timeoutMs: opts.dockerTimeoutMs,
        ssh: opts.ssh,
        secret: async (name) => {
          const v = await secrets.forSpec(name);
          if (v !== undefined) secretValues.add(v);
          return v;
        },
      });
      hostsKey = key;
    }
    for (const [name, l] of snap.envs) {
      if (l.ok) await inventory.remember(name, { host: l.desired.hostName, prune: l.desired.spec.sync.prune });
    }
    monitor.update(snap);
    return snap;
  };
  const currentDrivers = (): Drivers => {
    if (!drivers) throw new Error('specs not loaded yet');
    return drivers;
  };
  // The engine's status is read lazily: the monitor only asks once it runs, after the engine exists.
  const monitor = new Monitor({ backups: backupsFromStatus(() => engine.status), ...opts.monitor, drivers: currentDrivers, metrics, log, stateDir });

  const engine = new Engine({
    reconcilers,
    drivers: currentDrivers,
    evidence,
    metrics,
    log,
    secrets: secretsOf,
    progress: opts.progress,
    commit: async () => commit,
    observer: opts.git ? { applyStarted: (r) => gitops?.deployments.applyStarted(r), passRecorded: (r) => gitops?.deployments.passRecorded(r) } : undefined,
    mailCatcher: () => opts.mailCatcher ?? (catcher ? catcherRoute : null),
    peer: (env) => {
      const l = latest?.envs.get(env);
      return l?.ok ? l.desired : null;
    },
    stateDir,
    statusStore: new StatusStore(stateDir),
    leases,
  });
  const loop = new ReconcileLoop({
    engine,
    log,
    load,
    root,
    concurrency: opts.concurrency,
    debounceMs: opts.debounceMs,
    onRemoved: async (_removed, snap) => {
      await pruneRemovedEnvironments({ snapshot: snap, drivers: currentDrivers(), inventory, evidence, log, secrets: secretsOf });
    },
  });

  if (opts.git) {
    gitops = new GitOps(opts.git, {
      dir: root,
      log,
      metrics,
      secrets,
      maskSecret: (v) => secretValues.add(v),
      knownSecrets: secretsOf,
      reconcilers,
      onCommit: (_r, trigger) => void loop.reload(trigger).catch((err: unknown) => log.error(`reload after ${trigger} failed: ${String(err)}`)),
      tierOf: (env) => {
        const l = loop.current?.envs.get(env);
        return l?.ok ? l.desired.tier : undefined;
      },
      dockerTimeoutMs: opts.dockerTimeoutMs,
      tracked: () => loop.current ?? null,
    });
  }
  const intake = gitops?.routeDeps();
  const routes = () => ({
    secret: async (source: 'odoo' | 'github') => intake?.secret(source),
    dispatch: intake?.dispatch ?? null,
    github: intake?.github ?? null,
    metrics,
    log,
  });
  const logs = createLogReader({ snapshot: async () => loop.current ?? (await load()), desiredFor: (l) => engine.desiredFor(l), drivers: currentDrivers });

  return {
    root,
    stateDir,
    lease: (env, wait) =>
      leases.acquire(env, {
        wait,
        onWait: (h) => opts.progress?.(env, `waiting for ${describeHolder(h)} to finish with ${env}`),
        onTakeover: (h) => log.warn(`took over the lease of ${env} from ${describeHolder(h)}, which had died`, { env }),
      }),
    gitops,
    async start(watch) {
      if (gitops) await gitops.start();
      await loop.start(watch && !gitops);
    },
    engine,
    loop,
    metrics,
    evidence,
    monitor,
    log,
    load,
    drivers: currentDrivers,
    logs,
    server: (ready) => buildServer({ metrics, status: engine.status, evidence, ready, monitor, gitops: routes(), logs, mail: () => catcher?.store ?? null }),
    async recoverInterrupted() {
      if (!evidence) return [];
      const recs = await evidence.recoverInterrupted();
      for (const r of recs) {
        log.warn(`pass ${r.passId} of ${r.env} was cut short (${r.apply.filter((a) => a.outcome).length}/${r.plan.changes.length} changes finished); the next pass completes it`, {
          code: 'PULSER_E_PASS_INTERRUPTED',
        });
        engine.noteInterrupted(r);
      }
      return recs;
    },
    async startMail() {
      if (!opts.catcher || catcher) return catcher;
      const secret = await catcherSecret(stateDir, secrets);
      secretValues.add(secret);
      // Loaded here: smtp-server and mailparser would add half a second to every start-up, and
      // most commands never start the catcher.
      const { MailCatcher } = await import('./mail/catcher.ts');
      const started = new MailCatcher({ ...opts.catcher, dir: path.join(stateDir, 'mail'), secret, log: log.child({ component: 'mail-catcher' }) });
      await started.listen();
      catcher = started;
      return catcher;
    },
    mail: () => catcher,
    async close() {
      await monitor.stop();
      await gitops?.stop();
      await loop.stop();
      await drivers?.close();
      await catcher?.close();
      catcher = null;
    },
  };
}
