// The scheduler on its own: a controllable engine stands in for the real one, so the test decides
// when each pass ends and how. Covers coalescing, the concurrency limit, reloads, removal,
// retries with backoff, graceful stop and idle, and the bounds of the backoff delay.
import t, { type Test } from 'tap';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ReconcileLoop, type LoopOptions } from '../../src/core/loop.ts';
import { backoffDelay, DEFAULT_BACKOFF } from '../../src/core/backoff.ts';
import type { Engine, PassOptions } from '../../src/core/engine.ts';
import type { DesiredEnv, EnvLoad, SpecSnapshot } from '../../src/spec/model.ts';
import type { PassOutcome, PassRecord } from '../../src/core/record.ts';
import { PulserError, type ErrorCode, type ErrorRecord } from '../../src/errors.ts';
import { createLogger } from '../../src/core/log.ts';

// ------------------------------------------------------------------ helpers ---

/**
 * The one place where this file turns a partial object into a full type: a DesiredEnv holding
 * only what the loop reads (name, file, specHash, spec.sync.interval), and the fake engine,
 * which has the three methods the loop calls but not the private members of the class.
 */
function stub<T>(partial: object): T {
  return partial as T;
}

interface EnvDef {
  hash?: string;
  interval?: string;
  /** an invalid spec; the text goes into its error */
  invalid?: string;
}

function envLoad(name: string, def: EnvDef): EnvLoad {
  const file = `environments/${name}.yaml`;
  if (def.invalid !== undefined) return { name, file, ok: false, errors: [new PulserError('PULSER_E_SPEC_INVALID', def.invalid)] };
  const desired = stub<DesiredEnv>({ name, file, specHash: def.hash ?? 'sha256:1', spec: { sync: { auto: true, interval: def.interval ?? '1h', prune: false } } });
  return { name, file, ok: true, desired };
}

function snapshot(envs: Record<string, EnvDef>): SpecSnapshot {
  return {
    root: '/nonexistent',
    hosts: new Map(),
    hostErrors: [],
    envs: new Map(Object.entries(envs).map(([name, def]) => [name, envLoad(name, def)])),
    secretValues: new Set(),
  };
}

/** What a pass ends with: an outcome and the classes of its errors, or a crash. */
interface Result {
  outcome?: PassOutcome;
  errors?: ErrorCode[];
  crash?: boolean;
}

interface Call {
  env: string;
  trigger: string;
  at: number;
  done: boolean;
  release(result?: Result): void;
}

function record(load: EnvLoad, opts: PassOptions, r: Result): PassRecord {
  const errors: ErrorRecord[] = (r.errors ?? []).map((code) => new PulserError(code, `test error ${code}`).toJSON());
  return {
    passId: `p-${load.name}`,
    env: load.name,
    file: load.file,
    trigger: opts.trigger,
    commit: 'uncommitted',
    startedAt: new Date().toISOString(),
    mode: opts.mode,
    outcome: r.outcome ?? 'in-sync',
    desiredYaml: null,
    specHash: load.ok ? load.desired.specHash : null,
    usingLastGood: false,
    observed: {},
    plan: { changes: [], findings: [] },
    apply: [],
    driftBefore: 0,
    driftAfter: 0,
    driftByReconciler: {},
    errors,
  };
}

/** Stands in for Engine: records every pass and ends it when the test says so. */
class FakeEngine {
  readonly calls: Call[] = [];
  readonly forgotten: string[] = [];
  inFlight = 0;
  maxInFlight = 0;
  /** set when two passes of one environment ever overlapped */
  overlap: string | null = null;
  private readonly runningEnvs = new Set<string>();
  /** when set, a pass ends at once with what it returns; null (or no auto) leaves it to the test */
  auto: ((env: string, nth: number) => Result | null) | null = null;

  runPass(load: EnvLoad, opts: PassOptions): Promise<PassRecord> {
    if (this.runningEnvs.has(load.name)) this.overlap = load.name;
    this.runningEnvs.add(load.name);
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    return new Promise<PassRecord>((resolve, reject) => {
      const call: Call = {
        env: load.name,
        trigger: opts.trigger,
        at: performance.now(),
        done: false,
        release: (r: Result = {}) => {
          if (call.done) throw new Error(`pass of ${load.name} released twice`);
          call.done = true;
          this.inFlight--;
          this.runningEnvs.delete(load.name);
          if (r.crash) reject(new Error('engine crashed'));
          else resolve(record(load, opts, r));
        },
      };
      this.calls.push(call);
      const nth = this.callsOf(load.name).length;
      const r = this.auto?.(load.name, nth) ?? null;
      if (r) queueMicrotask(() => call.release(r));
    });
  }

  desiredFor(load: EnvLoad): DesiredEnv | null {
    return load.ok ? load.desired : null;
  }

  forget(env: string): void {
    this.forgotten.push(env);
  }

  callsOf(env: string): Call[] {
    return this.calls.filter((c) => c.env === env);
  }

  /** the pass of env under way (exactly one is expected) */
  open(env: string): Call {
    const open = this.calls.filter((c) => c.env === env && !c.done);
    if (open.length !== 1) throw new Error(`expected one pass of ${env} under way, found ${open.length}`);
    return open[0]!;
  }
}

interface Harness {
  loop: ReconcileLoop;
  engine: FakeEngine;
  /** the snapshot the next load returns */
  next: SpecSnapshot;
  loads: number;
  removed: string[][];
  logs: string[];
}

function harness(t: Test, envs: Record<string, EnvDef>, opts: Partial<LoopOptions> = {}): Harness {
  const engine = new FakeEngine();
  const logs: string[] = [];
  const h: Harness = {
    engine,
    next: snapshot(envs),
    loads: 0,
    removed: [],
    logs,
    loop: new ReconcileLoop({
      engine: stub<Engine>(engine),
      log: createLogger({ json: true, level: 'debug', write: (l) => logs.push(l) }),
      load: async () => {
        h.loads++;
        return h.next;
      },
      root: '/nonexistent',
      onRemoved: async (names) => {
        h.removed.push(names);
      },
      ...opts,
    }),
  };
  t.teardown(async () => {
    // end whatever the test left open so stop() never waits on it
    for (const c of engine.calls) if (!c.done) c.release();
    await h.loop.stop(1000);
  });
  return h;
}

/** Waits until cond() holds, polling; fails with `what` after the deadline. */
async function until(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${ms}ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** Lets every ready promise callback and immediate run (no timers). */
async function ticks(n = 20): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
}

function settled(p: Promise<unknown>): () => boolean {
  let done = false;
  void p.then(
    () => (done = true),
    () => (done = true),
  );
  return () => done;
}

// ---------------------------------------------------------------- backoff ---

t.test('backoffDelay: base·2^attempt, capped, with jitter in [0.5, 1.5)', async (t) => {
  const policy = { baseMs: 100, maxMs: 1000 };
  const low = () => 0;
  const mid = () => 0.5;
  const high = () => 0.999999;
  t.equal(backoffDelay(0, policy, mid), 100, 'attempt 0 is the base');
  t.equal(backoffDelay(1, policy, mid), 200);
  t.equal(backoffDelay(2, policy, mid), 400);
  t.equal(backoffDelay(3, policy, mid), 800);
  t.equal(backoffDelay(4, policy, mid), 1000, 'capped at maxMs');
  t.equal(backoffDelay(50, policy, mid), 1000);
  t.equal(backoffDelay(5000, policy, mid), 1000, '2^5000 is Infinity, still capped');
  t.equal(backoffDelay(-3, policy, mid), 100, 'a negative attempt counts as 0');

  t.equal(backoffDelay(0, policy, low), 50, 'lowest jitter halves');
  t.equal(backoffDelay(0, policy, high), 150, 'highest jitter rounds to at most 1.5×');
  t.equal(backoffDelay(10, policy, low), 500);
  t.equal(backoffDelay(10, policy, high), 1500, 'jitter applies after the cap');

  const outside: string[] = [];
  for (let attempt = 0; attempt < 12; attempt++) {
    const raw = Math.min(policy.maxMs, policy.baseMs * 2 ** attempt);
    for (const r of [0, 0.1, 0.25, 0.5, 0.75, 0.9, 0.999999]) {
      const d = backoffDelay(attempt, policy, () => r);
      if (!(d >= raw * 0.5 && d <= raw * 1.5 && Number.isInteger(d))) outside.push(`attempt ${attempt}, random ${r}: ${d}`);
    }
  }
  t.same(outside, [], 'every delay is whole milliseconds within [0.5, 1.5] × min(max, base·2^attempt)');
  // monotonic in attempt for a fixed random, up to the cap
  let previous = 0;
  for (let attempt = 0; attempt < 8; attempt++) {
    const d = backoffDelay(attempt, policy, () => 0.3);
    t.ok(d >= previous, `attempt ${attempt} waits no less than the one before`);
    previous = d;
  }
  t.same(DEFAULT_BACKOFF, { baseMs: 2000, maxMs: 300_000 });
  t.equal(backoffDelay(0, undefined, mid), 2000, 'default policy');
  t.equal(backoffDelay(30, undefined, high), 450_000, 'default cap with highest jitter');
  const d = backoffDelay(3);
  t.ok(d >= 8000 && d < 24000, `Math.random by default: ${d}`);
});

// ---------------------------------------------------------------- passes ---

t.test('one pass per environment at a time; triggers during a pass coalesce into exactly one more', async (t) => {
  const h = harness(t, { a: {} });
  await h.loop.start(false);
  await until(() => h.engine.calls.length === 1, 'the startup pass');
  t.equal(h.engine.calls[0]!.trigger, 'startup');

  for (let i = 0; i < 10; i++) h.loop.trigger('a', `hint ${i}`);
  await ticks();
  t.equal(h.engine.calls.length, 1, 'no second pass while the first runs');

  h.engine.open('a').release();
  await until(() => h.engine.calls.length === 2, 'the owed pass');
  t.equal(h.engine.calls[1]!.trigger, 'hint 0', 'the owed pass carries the first reason');

  h.engine.open('a').release();
  await h.loop.idle();
  await ticks();
  t.equal(h.engine.calls.length, 2, 'ten triggers made exactly one more pass, not zero, not ten');
  t.equal(h.engine.overlap, null, 'never two passes of one environment at once');
  t.equal(h.engine.maxInFlight, 1);

  // a trigger with nothing running starts a pass; triggers after it coalesce again
  h.loop.trigger('a', 'manual');
  await until(() => h.engine.calls.length === 3, 'a fresh pass');
  h.loop.trigger('a', 'again');
  h.loop.trigger('a', 'and again');
  h.engine.open('a').release();
  await until(() => h.engine.calls.length === 4, 'one owed pass');
  h.engine.open('a').release();
  await h.loop.idle();
  t.same(
    h.engine.calls.map((c) => c.trigger),
    ['startup', 'hint 0', 'manual', 'again'],
  );
  t.equal(h.engine.overlap, null);
});

t.test('a trigger for an environment already queued is not queued twice', async (t) => {
  const h = harness(t, { a: {}, b: {} }, { concurrency: 1 });
  await h.loop.start(false);
  await until(() => h.engine.calls.length === 1, 'the first startup pass');
  t.equal(h.engine.calls[0]!.env, 'a', 'environments start in snapshot order');
  for (let i = 0; i < 5; i++) h.loop.trigger('b', `hint ${i}`);
  h.loop.trigger('a', 'during a');
  await ticks();
  t.equal(h.engine.calls.length, 1, 'b waits for the slot');

  h.engine.open('a').release();
  await until(() => h.engine.calls.length === 2, 'b');
  t.equal(h.engine.calls[1]!.env, 'b');
  t.equal(h.engine.calls[1]!.trigger, 'startup', 'b runs once, with the reason it was queued with');
  h.engine.open('b').release();
  await until(() => h.engine.calls.length === 3, 'the pass a owes');
  t.equal(h.engine.calls[2]!.env, 'a');
  t.equal(h.engine.calls[2]!.trigger, 'during a');
  h.engine.open('a').release();
  await h.loop.idle();
  t.same(
    h.engine.calls.map((c) => `${c.env}:${c.trigger}`),
    ['a:startup', 'b:startup', 'a:during a'],
    'b ran exactly once although it was triggered six times',
  );
  t.equal(h.engine.maxInFlight, 1);
});

t.test('the concurrency limit is respected exactly, and every environment runs', async (t) => {
  const names = ['e1', 'e2', 'e3', 'e4', 'e5'];
  const h = harness(t, Object.fromEntries(names.map((n) => [n, {}])), { concurrency: 2 });
  await h.loop.start(false);
  await until(() => h.engine.calls.length === 2, 'two passes');
  await ticks();
  t.equal(h.engine.inFlight, 2, 'two at once');
  t.same(
    h.engine.calls.map((c) => c.env),
    ['e1', 'e2'],
  );

  // end them one at a time, out of order: each end lets exactly one more start
  h.engine.open('e2').release();
  await until(() => h.engine.calls.length === 3, 'e3');
  await ticks();
  t.equal(h.engine.inFlight, 2);
  h.engine.open('e1').release();
  await until(() => h.engine.calls.length === 4, 'e4');
  await ticks();
  t.equal(h.engine.inFlight, 2);
  h.engine.open('e3').release();
  h.engine.open('e4').release();
  await until(() => h.engine.calls.length === 5, 'e5');
  await ticks();
  t.equal(h.engine.inFlight, 1, 'only e5 is left');
  h.engine.open('e5').release();
  await h.loop.idle();

  t.same(
    h.engine.calls.map((c) => c.env),
    names,
    'all five ran, in order, once each',
  );
  t.equal(h.engine.maxInFlight, 2, 'never more than two in flight');

  // the same with passes that end by themselves
  const h2 = harness(t, Object.fromEntries(names.map((n) => [n, {}])), { concurrency: 2 });
  h2.engine.auto = () => ({ outcome: 'applied' });
  await h2.loop.start(false);
  await h2.loop.idle();
  t.equal(h2.engine.calls.length, 5);
  t.equal(h2.engine.maxInFlight, 2);

  const h3 = harness(t, Object.fromEntries(names.map((n) => [n, {}])), { concurrency: 0 });
  await h3.loop.start(false);
  await until(() => h3.engine.calls.length === 1, 'one pass');
  await ticks();
  t.equal(h3.engine.inFlight, 1, 'a limit below one still runs one at a time');
});

t.test('a reload runs only the environments whose desired state or validity changed', async (t) => {
  const h = harness(t, { a: { hash: 'h1' }, b: { hash: 'h1' }, c: { hash: 'h1' } });
  h.engine.auto = () => ({});
  await h.loop.start(false);
  await h.loop.idle();
  t.same(
    h.engine.calls.map((c) => `${c.env}:${c.trigger}`),
    ['a:startup', 'b:startup', 'c:startup'],
  );
  t.same(h.removed, [[]], 'the removal hook runs once at startup with nothing removed');
  t.equal(h.loop.current, h.next);

  await h.loop.reload('file change');
  await h.loop.idle();
  t.equal(h.engine.calls.length, 3, 'an unchanged snapshot runs nothing');

  h.next = snapshot({ a: { hash: 'h1' }, b: { hash: 'h2' }, c: { hash: 'h1' }, d: { hash: 'h1' } });
  await h.loop.reload('file change');
  await h.loop.idle();
  t.same(
    h.engine.calls.slice(3).map((c) => `${c.env}:${c.trigger}`),
    ['b:file change', 'd:new environment'],
    'only the changed and the new environment ran',
  );

  h.next = snapshot({ a: { invalid: 'odoo.workers: must be integer' }, b: { hash: 'h2' }, c: { hash: 'h1' }, d: { hash: 'h1' } });
  await h.loop.reload('file change');
  await h.loop.idle();
  t.same(
    h.engine.calls.slice(5).map((c) => `${c.env}:${c.trigger}`),
    ['a:file change'],
    'becoming invalid is a change',
  );
  await h.loop.reload('file change');
  await h.loop.idle();
  t.equal(h.engine.calls.length, 6, 'the same errors again are not');
  h.next = snapshot({ a: { invalid: 'odoo.port: must be integer' }, b: { hash: 'h2' }, c: { hash: 'h1' }, d: { hash: 'h1' } });
  await h.loop.reload('file change');
  await h.loop.idle();
  t.equal(h.engine.calls.length, 7, 'different errors are');
  h.next = snapshot({ a: { hash: 'h1' }, b: { hash: 'h2' }, c: { hash: 'h1' }, d: { hash: 'h1' } });
  await h.loop.reload('file change');
  await h.loop.idle();
  t.same(
    h.engine.calls.slice(7).map((c) => `${c.env}:${c.trigger}`),
    ['a:file change'],
    'becoming valid again (even with the old hash) is a change',
  );
  t.same(h.engine.forgotten, [], 'nothing was forgotten');
  t.equal(h.engine.overlap, null);
});

t.test('reloads that arrive during a reload coalesce into one more load', async (t) => {
  const engine = new FakeEngine();
  engine.auto = () => ({});
  let open!: () => void;
  const gate = new Promise<void>((r) => (open = r));
  let loads = 0;
  const loop = new ReconcileLoop({
    engine: stub<Engine>(engine),
    log: createLogger({ write: () => {} }),
    load: async () => {
      loads++;
      if (loads === 1) await gate;
      return snapshot({ a: {} });
    },
    root: '/nonexistent',
  });
  t.teardown(() => loop.stop(1000));
  const first = loop.reload('one');
  const others = [loop.reload('two'), loop.reload('three'), loop.reload('four')];
  await ticks();
  t.equal(loads, 1, 'one load at a time');
  open();
  await Promise.all([first, ...others]);
  t.equal(loads, 2, 'three reloads during the first made exactly one more load');
  await loop.idle();
  t.equal(engine.calls.length, 1, 'and the environment ran once');
});

t.test('a removed environment is forgotten and its timer cleared', async (t) => {
  // `clock` runs every 20ms and serves as a clock that slows down together with the timers
  const h = harness(t, { a: { interval: '100ms' }, clock: { interval: '20ms' } });
  h.engine.auto = () => ({});
  await h.loop.start(false);
  await until(() => h.engine.callsOf('a').length === 1 && h.engine.callsOf('clock').length === 1, 'the startup passes');

  // remove a while its 100ms interval timer is pending, then bring it back with a long interval:
  // if the old timer survived, it would fire and run an extra `interval` pass of the new a
  h.next = snapshot({ clock: { interval: '20ms' } });
  await h.loop.reload('file change');
  t.same(h.engine.forgotten, ['a'], 'engine.forget(a)');
  t.same(h.removed.at(-1), ['a'], 'the removal hook is told');
  h.next = snapshot({ a: { interval: '1h' }, clock: { interval: '20ms' } });
  await h.loop.reload('file change');
  await until(() => h.engine.callsOf('a').length === 2, 'a, back');
  t.equal(h.engine.callsOf('a')[1]!.trigger, 'new environment');

  const from = h.engine.callsOf('clock').length;
  await until(() => h.engine.callsOf('clock').length >= from + 15, 'clock passes spanning more than 300ms');
  t.same(
    h.engine.callsOf('a').map((c) => c.trigger),
    ['startup', 'new environment'],
    'no pass from the timer of the removed environment',
  );
  t.ok(
    h.engine.callsOf('clock').slice(1).every((c) => c.trigger === 'interval'),
    'the clock ran on its interval',
  );

  // removed while its pass runs: the pass ends, and neither the owed pass nor a timer follows
  h.engine.auto = (env) => (env === 'a' ? null : {});
  h.loop.trigger('a', 'manual');
  await until(() => h.engine.callsOf('a').length === 3, 'a pass of a');
  h.loop.trigger('a', 'owed');
  h.next = snapshot({ clock: { interval: '20ms' } });
  await h.loop.reload('file change');
  t.same(h.engine.forgotten, ['a', 'a']);
  h.engine.open('a').release();
  const at = h.engine.callsOf('clock').length;
  await until(() => h.engine.callsOf('clock').length >= at + 10, 'more clock passes');
  t.equal(h.engine.callsOf('a').length, 3, 'the owed pass of a removed environment is dropped');
  h.loop.trigger('a', 'manual');
  await ticks();
  t.equal(h.engine.callsOf('a').length, 3, 'a trigger for an environment not in the snapshot runs nothing');
});

t.test('after a pass the next one waits for the interval', async (t) => {
  const h = harness(t, { a: { interval: '30ms' } });
  h.engine.auto = () => ({ outcome: 'in-sync' });
  await h.loop.start(false);
  await until(() => h.engine.calls.length >= 4, 'interval passes');
  const calls = h.engine.calls.slice(0, 4);
  t.same(
    calls.map((c) => c.trigger),
    ['startup', 'interval', 'interval', 'interval'],
  );
  for (let i = 1; i < calls.length; i++) t.ok(calls[i]!.at - calls[i - 1]!.at >= 28, `gap ${i} is at least the interval`);
});

t.test('failed passes: transient errors retry with backoff, terminal errors wait for the interval', async (t) => {
  const backoff = { baseMs: 20, maxMs: 80 };
  const h = harness(
    t,
    { flaky: { interval: '1h' }, broken: { interval: '1h' }, waiting: { interval: '1h' }, crashy: { interval: '1h' }, clock: { interval: '20ms' } },
    { backoff, waitingDelayMs: 15 },
  );
  h.engine.auto = (env, nth) => {
    if (env === 'flaky') return nth <= 3 ? { outcome: 'failed', errors: ['PULSER_E_DOCKER_UNREACHABLE'] } : { outcome: 'applied' };
    if (env === 'broken') return { outcome: 'failed', errors: ['PULSER_E_DOCKER_API', 'PULSER_E_HEALTH_CHECK_FAILED'] };
    if (env === 'waiting') return nth <= 2 ? { outcome: 'failed', errors: ['PULSER_E_DRIFT_REMAINS'] } : { outcome: 'applied' };
    if (env === 'crashy') return nth <= 2 ? { crash: true } : { outcome: 'applied' };
    return {};
  };
  await h.loop.start(false);
  await until(() => h.engine.callsOf('flaky').length === 4, 'three retries of flaky');
  await until(() => h.engine.callsOf('waiting').length === 3, 'two requeues of waiting');
  await until(() => h.engine.callsOf('crashy').length === 3, 'two retries of crashy');

  const flaky = h.engine.callsOf('flaky');
  t.same(
    flaky.map((c) => c.trigger),
    ['startup', 'retry', 'retry', 'retry'],
  );
  // attempt n waits at least 0.5 × min(max, base·2^n); timers may fire up to 1ms early
  for (let i = 1; i < flaky.length; i++) {
    const floor = 0.5 * Math.min(backoff.maxMs, backoff.baseMs * 2 ** (i - 1));
    const gap = flaky[i]!.at - flaky[i - 1]!.at;
    t.ok(gap >= floor - 2, `retry ${i} waited ${gap.toFixed(1)}ms (backoff floor ${floor}ms)`);
  }
  t.same(
    h.engine.callsOf('waiting').map((c) => c.trigger),
    ['startup', 'requeue', 'requeue'],
    'waiting errors are requeued',
  );
  t.same(
    h.engine.callsOf('crashy').map((c) => c.trigger),
    ['startup', 'retry', 'retry'],
    'a pass that crashed is retried like a transient failure',
  );

  // let the clock run well past every backoff delay (the cap with jitter is 120ms)
  const at = h.engine.callsOf('clock').length;
  await until(() => h.engine.callsOf('clock').length >= at + 15, 'clock passes spanning more than 300ms');
  t.equal(h.engine.callsOf('broken').length, 1, 'a terminal error (even next to a transient one) is not retried before the interval');
  t.equal(h.engine.callsOf('flaky').length, 4, 'a success ends the retries');
  t.equal(h.engine.callsOf('waiting').length, 3);
  t.equal(h.engine.callsOf('crashy').length, 3);
  t.ok(
    h.logs.some((l) => /pass of crashy crashed: Error: engine crashed/.test(l)),
    'the crash is logged',
  );

  // a trigger still runs the terminally failed environment at once
  h.loop.trigger('broken', 'manual');
  await until(() => h.engine.callsOf('broken').length === 2, 'a manual pass');
});

t.test('the retry delay never exceeds the interval', async (t) => {
  const h = harness(t, { a: { interval: '25ms' } }, { backoff: { baseMs: 60_000, maxMs: 600_000 } });
  h.engine.auto = (_env, nth) => (nth <= 2 ? { outcome: 'failed', errors: ['PULSER_E_TIMEOUT'] } : {});
  await h.loop.start(false);
  await until(() => h.engine.calls.length === 3, 'two retries within the interval');
  t.same(
    h.engine.calls.map((c) => c.trigger),
    ['startup', 'retry', 'retry'],
  );
});

t.test('stop() waits for the passes under way and refuses new triggers', async (t) => {
  const h = harness(t, { a: {}, b: {} });
  await h.loop.start(false);
  await until(() => h.engine.calls.length === 2, 'both startup passes');
  h.loop.trigger('a', 'owed before stop');

  const stopping = h.loop.stop();
  const stopped = settled(stopping);
  await ticks();
  t.notOk(stopped(), 'stop waits while passes run');
  h.loop.trigger('a', 'after stop');
  h.loop.trigger('b', 'after stop');
  await h.loop.reload('file change');

  h.engine.open('a').release();
  await ticks();
  t.notOk(stopped(), 'still waiting for b');
  h.engine.open('b').release();
  await stopping;
  t.ok(stopped());
  await ticks();
  t.equal(h.engine.calls.length, 2, 'no pass started after stop, not even the owed one');
  h.loop.trigger('a', 'later');
  await ticks();
  t.equal(h.engine.calls.length, 2, 'triggers after stop are ignored');
  await h.loop.idle();
});

t.test('stop() gives up waiting after its timeout', async (t) => {
  const h = harness(t, { a: {} });
  await h.loop.start(false);
  await until(() => h.engine.calls.length === 1, 'a pass');
  const started = performance.now();
  await h.loop.stop(50);
  const waited = performance.now() - started;
  t.ok(waited >= 45 && waited < 10_000, `returned after ${waited.toFixed(0)}ms with the pass still running`);
  t.notOk(h.engine.calls[0]!.done);
  h.engine.open('a').release();
});

t.test('idle() resolves once nothing is queued or running, owed passes included', async (t) => {
  const h = harness(t, { a: {}, b: {} }, { concurrency: 1 });
  await h.loop.start(false);
  await until(() => h.engine.calls.length === 1, 'a');
  const idle = settled(h.loop.idle());
  h.loop.trigger('a', 'owed');
  await ticks();
  t.notOk(idle(), 'a runs');
  h.engine.open('a').release();
  await until(() => h.engine.calls.length === 2, 'b');
  await ticks();
  t.notOk(idle(), 'b runs');
  h.engine.open('b').release();
  await until(() => h.engine.calls.length === 3, 'the owed pass of a');
  await ticks();
  t.notOk(idle(), 'the owed pass of a runs');
  h.engine.open('a').release();
  await until(idle, 'idle');
  t.equal(h.engine.inFlight, 0);
  await h.loop.idle();
  t.pass('idle() on an idle loop returns');
});

t.test('a reload from the file watch that fails is logged, and the watch keeps working', async (t) => {
  const root = await mkdtemp(path.join(tmpdir(), 'pulser-loop-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  await mkdir(path.join(root, 'environments'));
  await mkdir(path.join(root, 'ops', 'kv'), { recursive: true });
  const engine = new FakeEngine();
  engine.auto = () => ({});
  const logs: string[] = [];
  let next = snapshot({ a: { hash: 'h1' } });
  let loads = 0;
  let failing = true;
  const loop = new ReconcileLoop({
    engine: stub<Engine>(engine),
    log: createLogger({ json: true, level: 'debug', write: (l) => logs.push(l) }),
    load: async () => {
      loads++;
      if (loads > 1 && failing) throw new Error('disk on fire');
      return next;
    },
    root,
    debounceMs: 100,
  });
  t.teardown(() => loop.stop(1000));
  await loop.start(true);
  await loop.idle();
  t.equal(engine.calls.length, 1);

  // The watcher may need a moment before it reports changes, and chokidar drops a change that
  // follows another one to the same file within 50ms: write until the expected effect shows.
  let n = 0;
  const touch = () => writeFile(path.join(root, 'ops', 'kv', 'a.image_tag.txt'), `17.0.${n++}\n`);
  async function touchUntil(cond: () => boolean, what: string): Promise<void> {
    const deadline = performance.now() + 10_000;
    while (!cond()) {
      if (performance.now() > deadline) throw new Error(`no ${what} after writing for 10s`);
      await touch();
      await until(cond, what, 300).catch(() => {});
    }
  }
  await touchUntil(() => loads >= 2, 'reload');
  await until(() => logs.some((l) => /reload after a file change failed: Error: disk on fire/.test(l)), 'the error in the log');
  t.equal(engine.calls.length, 1, 'nothing ran on the failed reload');

  failing = false;
  next = snapshot({ a: { hash: 'h2' } });
  await touchUntil(() => engine.calls.length === 2, 'pass after a good reload');
  t.equal(engine.calls[1]!.trigger, 'file change', 'the next reload after the failed one works');
  await loop.idle();

  await loop.stop();
  const after = loads;
  await touch();
  await new Promise((r) => setTimeout(r, 150));
  t.equal(loads, after, 'a stopped loop watches nothing');
});
