// The reconcile loop: triggers (file watch, per-environment interval, retries, hints from outside)
// become passes. One pass per environment at a time; triggers arriving during a pass coalesce
// into exactly one more; environments run in parallel up to a limit; SIGTERM drains cleanly.
import { watch, type FSWatcher } from 'chokidar';
import path from 'node:path';
import type { Engine } from './engine.ts';
import type { Logger } from './log.ts';
import type { SpecSnapshot, EnvLoad } from '../spec/model.ts';
import type { PassRecord } from './record.ts';
import { parseDuration } from './duration.ts';
import { backoffDelay, DEFAULT_BACKOFF, type BackoffPolicy } from './backoff.ts';

export interface LoopOptions {
  engine: Pick<Engine, 'runPass' | 'desiredFor' | 'forget'>;
  log: Logger;
  load: () => Promise<SpecSnapshot>;
  root: string;
  concurrency?: number;
  debounceMs?: number;
  backoff?: BackoffPolicy;
  /** requeue delay for `waiting` outcomes (drift remains, health not yet green) */
  waitingDelayMs?: number;
  /** called once per reload with the environments that disappeared from git */
  onRemoved?: (envs: string[], snapshot: SpecSnapshot) => Promise<void>;
  onPass?: (rec: PassRecord) => void;
}

interface EnvState {
  running: Promise<void> | null;
  queued: boolean;
  /** reason of the one extra pass owed to triggers that arrived during a pass */
  pending: string | null;
  timer: NodeJS.Timeout | null;
  failures: number;
}

export class ReconcileLoop {
  private snapshot: SpecSnapshot | null = null;
  private readonly states = new Map<string, EnvState>();
  private readonly queue: { env: string; trigger: string }[] = [];
  private active = 0;
  private watcher: FSWatcher | null = null;
  private debounce: NodeJS.Timeout | null = null;
  private stopping = false;
  private reloading: Promise<void> | null = null;
  private reloadAgain = false;
  private readonly concurrency: number;

  constructor(private readonly opts: LoopOptions) {
    this.concurrency = Math.max(1, opts.concurrency ?? 4);
  }

  get current(): SpecSnapshot | null {
    return this.snapshot;
  }

  /** Loads the specs, runs every environment once, and (with watch) keeps going. */
  async start(watchFiles: boolean): Promise<void> {
    await this.reload('startup');
    if (watchFiles) {
      const dirs = [path.join(this.opts.root, 'environments'), path.join(this.opts.root, 'ops', 'kv')];
      this.watcher = watch(dirs, {
        ignoreInitial: true,
        ignored: (p, stats) => stats?.isFile() === true && !/\.(ya?ml|txt)$/.test(p),
        awaitWriteFinish: false,
      });
      this.watcher.on('all', (event, file) => this.onFileEvent(event, file));
      this.watcher.on('error', (err) => this.opts.log.warn(`file watch error: ${String(err)}`));
      // Edits made right after start must not be missed: ready means the watch is in place.
      await new Promise<void>((resolve) => this.watcher!.once('ready', () => resolve()));
    }
  }

  private onFileEvent(event: string, file: string): void {
    this.opts.log.debug(`file ${event}: ${path.relative(this.opts.root, file)}`);
    if (this.debounce) clearTimeout(this.debounce);
    this.debounce = setTimeout(() => {
      this.debounce = null;
      this.reload('file change').catch((err: unknown) => this.opts.log.error(`reload after a file change failed: ${String(err)}`));
    }, this.opts.debounceMs ?? 250);
  }

  /** Re-reads the specs and triggers every environment whose desired state or validity changed. */
  async reload(trigger: string): Promise<void> {
    if (this.reloading) {
      this.reloadAgain = true;
      return this.reloading;
    }
    this.reloading = (async () => {
      do {
        this.reloadAgain = false;
        const previous = this.snapshot;
        const next = await this.opts.load();
        this.snapshot = next;
        for (const [name, load] of next.envs) {
          const before = previous?.envs.get(name);
          if (!before || fingerprint(before) !== fingerprint(load)) this.trigger(name, before ? trigger : trigger === 'startup' ? 'startup' : 'new environment');
        }
        const removed = previous ? [...previous.envs.keys()].filter((n) => !next.envs.has(n)) : [];
        for (const name of removed) this.drop(name);
        if (this.opts.onRemoved && (removed.length > 0 || !previous)) await this.opts.onRemoved(removed, next);
      } while (this.reloadAgain && !this.stopping);
    })().finally(() => (this.reloading = null));
    return this.reloading;
  }

  private state(env: string): EnvState {
    let s = this.states.get(env);
    if (!s) {
      s = { running: null, queued: false, pending: null, timer: null, failures: 0 };
      this.states.set(env, s);
    }
    return s;
  }

  /** Asks for a pass of one environment. Never runs two passes of one environment at once. */
  trigger(env: string, reason: string): void {
    if (this.stopping) return;
    const s = this.state(env);
    if (s.running) {
      s.pending ??= reason;
      return;
    }
    if (s.queued) return;
    s.queued = true;
    this.queue.push({ env, trigger: reason });
    this.pump();
  }

  private pump(): void {
    while (this.active < this.concurrency && this.queue.length > 0 && !this.stopping) {
      const { env, trigger } = this.queue.shift()!;
      const s = this.state(env);
      s.queued = false;
      const load = this.snapshot?.envs.get(env);
      if (!load) continue;
      this.active++;
      s.running = this.runOne(load, trigger, s).finally(() => {
        this.active--;
        s.running = null;
        const owed = s.pending;
        s.pending = null;
        if (owed && this.snapshot?.envs.has(env)) this.trigger(env, owed);
        this.pump();
      });
    }
  }

  private async runOne(load: EnvLoad, trigger: string, s: EnvState): Promise<void> {
    if (s.timer) clearTimeout(s.timer);
    s.timer = null;
    let rec: PassRecord | null = null;
    try {
      rec = await this.opts.engine.runPass(load, { mode: 'apply', trigger });
      this.opts.onPass?.(rec);
    } catch (err) {
      this.opts.log.error(`pass of ${load.name} crashed: ${String(err)}`);
    }
    if (!this.stopping && this.states.get(load.name) === s) this.scheduleNext(load, rec, s);
  }

  /** After a pass: retry with backoff, requeue, or wait for the environment's interval. */
  private scheduleNext(load: EnvLoad, rec: PassRecord | null, s: EnvState): void {
    const desired = this.opts.engine.desiredFor(load);
    let delay = desired ? parseDuration(desired.spec.sync.interval) : 5 * 60_000;
    let why = 'interval';
    const classes = new Set(rec?.errors.map((e) => e.class) ?? ['transient']);
    if ((rec === null || rec.outcome === 'failed') && !classes.has('terminal')) {
      if (classes.has('transient') || classes.size === 0) {
        delay = Math.min(delay, backoffDelay(s.failures, this.opts.backoff ?? DEFAULT_BACKOFF));
        why = 'retry';
      } else {
        delay = Math.min(delay, this.opts.waitingDelayMs ?? 2_000);
        why = 'requeue';
      }
      s.failures++;
    } else {
      s.failures = 0;
    }
    s.timer = setTimeout(() => {
      s.timer = null;
      this.trigger(load.name, why);
    }, delay);
    s.timer.unref?.();
  }

  private drop(env: string): void {
    const s = this.states.get(env);
    if (s?.timer) clearTimeout(s.timer);
    this.states.delete(env);
    this.opts.engine.forget(env);
  }

  /** Resolves once nothing is queued or running (used by --once and by tests). */
  async idle(): Promise<void> {
    for (;;) {
      if (this.reloading) await this.reloading;
      const running = [...this.states.values()].map((s) => s.running).filter((p): p is Promise<void> => p !== null);
      if (running.length === 0 && this.queue.length === 0 && !this.reloading && !this.debounce) return;
      await Promise.all(running);
      if (running.length === 0) await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Graceful stop: no new passes; passes under way finish (or the timeout passes). */
  async stop(timeoutMs = 60_000): Promise<void> {
    this.stopping = true;
    if (this.debounce) clearTimeout(this.debounce);
    for (const s of this.states.values()) if (s.timer) clearTimeout(s.timer);
    this.queue.length = 0;
    await this.watcher?.close();
    const running = [...this.states.values()].map((s) => s.running).filter((p): p is Promise<void> => p !== null);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(running), new Promise((r) => (timer = setTimeout(r, timeoutMs)))]);
    clearTimeout(timer);
  }
}

function fingerprint(load: EnvLoad): string {
  return load.ok ? `ok:${load.desired.specHash}` : `invalid:${load.errors.map((e) => e.toString()).join('|')}`;
}
