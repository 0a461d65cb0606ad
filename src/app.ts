// The composition root: wires spec loading, drivers, engine, evidence, metrics, loop and server
// from one options object. The CLI and the tests build pulser through here.
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { loadSpecs } from './spec/load.ts';
import { SecretSource } from './spec/secrets.ts';
import type { SpecSnapshot } from './spec/model.ts';
import { createDrivers, type Drivers } from './drivers/index.ts';
import { Engine } from './core/engine.ts';
import { ReconcileLoop } from './core/loop.ts';
import { EvidenceStore } from './evidence/index.ts';
import { Metrics } from './metrics.ts';
import { buildServer } from './server.ts';
import { createLogger, type Level, type Logger } from './core/log.ts';
import { reconcilers } from '../reconcilers/index.ts';
import { pruneRemovedEnvironments } from '../reconcilers/containers/prune.ts';
import { Inventory } from './core/inventory.ts';
import { canonicalJson } from './core/canonical.ts';
import type { PassRecord } from './core/record.ts';
import { specCommit } from './drivers/git.ts';

export interface PulserOptions {
  root: string;
  evidenceDir?: string | null;
  /** where pulser keeps its own state (inventory); default `<root>/.pulser` */
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
}

export interface Pulser {
  root: string;
  engine: Engine;
  loop: ReconcileLoop;
  metrics: Metrics;
  evidence: EvidenceStore | null;
  log: Logger;
  load(): Promise<SpecSnapshot>;
  drivers(): Drivers;
  server(ready?: () => boolean): FastifyInstance;
  /** reports passes a previous run left unfinished; returns their records */
  recoverInterrupted(): Promise<PassRecord[]>;
  close(): Promise<void>;
}

export function createPulser(opts: PulserOptions): Pulser {
  const root = path.resolve(opts.root);
  const secretValues = new Set<string>();
  const secretsOf = () => secretValues;
  const log = createLogger({ secrets: secretsOf, level: opts.logLevel, json: opts.logJson, write: opts.logWrite });
  const secrets = new SecretSource({ file: opts.secretsFile, root });
  const metrics = new Metrics({ processMetrics: opts.processMetrics });
  const evidence =
    opts.evidenceDir === null ? null : new EvidenceStore({ dir: opts.evidenceDir ?? path.join(root, 'evidence'), keep: opts.evidenceKeep, secrets: secretsOf, log });
  const inventory = new Inventory(opts.stateDir ?? path.join(root, '.pulser'));

  let drivers: Drivers | null = null;
  let hostsKey = '';
  let commit = 'uncommitted';
  let latest: SpecSnapshot | null = null;

  const load = async (): Promise<SpecSnapshot> => {
    const [snap, head] = await Promise.all([loadSpecs(root, { secrets }), specCommit(root)]);
    commit = head;
    latest = snap;
    for (const s of snap.secretValues) secretValues.add(s);
    const key = canonicalJson([...snap.hosts.entries()]);
    if (!drivers || key !== hostsKey) {
      await drivers?.close();
      drivers = createDrivers(snap.hosts, { timeoutMs: opts.dockerTimeoutMs });
      hostsKey = key;
    }
    for (const [name, l] of snap.envs) {
      if (l.ok) await inventory.remember(name, { host: l.desired.hostName, prune: l.desired.spec.sync.prune });
    }
    return snap;
  };
  const currentDrivers = (): Drivers => {
    if (!drivers) throw new Error('specs not loaded yet');
    return drivers;
  };

  const engine = new Engine({
    reconcilers,
    drivers: currentDrivers,
    evidence,
    metrics,
    log,
    secrets: secretsOf,
    progress: opts.progress,
    commit: async () => commit,
    peer: (env) => {
      const l = latest?.envs.get(env);
      return l?.ok ? l.desired : null;
    },
    stateDir: opts.stateDir ?? path.join(root, '.pulser'),
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

  return {
    root,
    engine,
    loop,
    metrics,
    evidence,
    log,
    load,
    drivers: currentDrivers,
    server: (ready) => buildServer({ metrics, status: engine.status, evidence, ready }),
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
    async close() {
      await loop.stop();
      await drivers?.close();
    },
  };
}
