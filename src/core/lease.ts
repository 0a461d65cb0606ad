// Environment leases: one writer per environment across processes. Before a run changes an
// environment (a daemon pass, `pulser apply`, `pulser backup`, `pulser restore`), it holds the
// environment's lease: a file in the state folder naming its holder (pid, host, command, since),
// created exclusively. A holder that died on this machine is detected and its lease taken over,
// and the take-over is reported; a live holder is waited for, or named in a coded error.
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PulserError } from '../errors.ts';

export interface LeaseHolder {
  pid: number;
  host: string;
  command: string;
  since: string;
}

export interface AcquireOptions {
  /** false: fail at once with PULSER_E_LEASE_HELD when another process holds it */
  wait: boolean;
  /** told about the holder while waiting (a progress line) */
  onWait?: (holder: LeaseHolder) => void;
  /** told when a dead holder's lease is taken over */
  onTakeover?: (dead: LeaseHolder) => void;
  signal?: AbortSignal;
  /** how long to wait before giving up (default: 10 minutes) */
  timeoutMs?: number;
}

export interface Lease {
  readonly env: string;
  release(): Promise<void>;
}

const SAFE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const POLL_MS = 200;
const TAKEOVER_STALE_MS = 10_000;

export function describeHolder(h: LeaseHolder): string {
  return `pid ${h.pid} on ${h.host} (${h.command}, since ${h.since})`;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
  });

export class Leases {
  private readonly dir: string;
  private readonly self: LeaseHolder;

  constructor(stateDir: string, command: string) {
    this.dir = path.join(stateDir, 'leases');
    this.self = { pid: process.pid, host: os.hostname(), command, since: '' };
  }

  private file(env: string): string {
    if (!SAFE.test(env)) throw new PulserError('PULSER_E_ENV_UNKNOWN', `no lease for an environment named ${JSON.stringify(env.slice(0, 64))}`);
    return path.join(this.dir, `${env}.lock`);
  }

  /** The current holder of an environment's lease, or null. */
  async holder(env: string): Promise<LeaseHolder | null> {
    try {
      const v = JSON.parse(await readFile(this.file(env), 'utf8')) as LeaseHolder;
      return typeof v.pid === 'number' && typeof v.host === 'string' ? v : null;
    } catch {
      return null;
    }
  }

  async acquire(env: string, opts: AcquireOptions): Promise<Lease> {
    const file = this.file(env);
    await mkdir(this.dir, { recursive: true });
    const deadline = Date.now() + (opts.timeoutMs ?? 10 * 60_000);
    let told = '';
    for (;;) {
      const me: LeaseHolder = { ...this.self, since: new Date().toISOString() };
      try {
        await writeFile(file, JSON.stringify(me) + '\n', { flag: 'wx', mode: 0o644 });
        return { env, release: () => this.release(file, me) };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new PulserError('PULSER_E_LEASE_HELD', `the lease of ${env} cannot be written at ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`, { cause: err });
      }
      const holder = await this.holder(env);
      if (!holder) {
        // Being written this very moment, or damaged: a damaged one older than a moment is stale.
        const age = await stat(file).then((s) => Date.now() - s.mtimeMs, () => 0);
        if (age > TAKEOVER_STALE_MS) await this.takeOver(file, null);
      } else if (holder.host === this.self.host && holder.pid === this.self.pid) {
        throw new PulserError('PULSER_E_INTERNAL', `this process already holds the lease of ${env}`);
      } else if (holder.host === this.self.host && !alive(holder.pid)) {
        if (await this.takeOver(file, holder)) opts.onTakeover?.(holder);
        continue;
      } else {
        if (!opts.wait) throw new PulserError('PULSER_E_LEASE_HELD', `${env} is being changed by ${describeHolder(holder)}`, { details: { env, holder } });
        const key = JSON.stringify(holder);
        if (key !== told) {
          opts.onWait?.(holder);
          told = key;
        }
      }
      if (opts.signal?.aborted) throw new PulserError('PULSER_E_LEASE_HELD', `stopped waiting for the lease of ${env}`);
      if (Date.now() > deadline) throw new PulserError('PULSER_E_LEASE_HELD', `${env} is still being changed by ${holder ? describeHolder(holder) : 'another process'}: gave up waiting`, { details: { env, holder } });
      await sleep(POLL_MS, opts.signal);
    }
  }

  /**
   * Removes a dead holder's lease, under a short take-over guard so that two processes finding the
   * same dead holder cannot remove a lease the other has just taken. True when it was removed.
   */
  private async takeOver(file: string, dead: LeaseHolder | null): Promise<boolean> {
    const guard = `${file}.takeover`;
    try {
      await writeFile(guard, String(process.pid), { flag: 'wx' });
    } catch {
      const age = await stat(guard).then((s) => Date.now() - s.mtimeMs, () => 0);
      if (age > TAKEOVER_STALE_MS) await rm(guard, { force: true });
      return false;
    }
    try {
      const now = await readFile(file, 'utf8').catch(() => null);
      const still = now !== null && (dead === null || now.trim() === JSON.stringify(dead));
      if (still) await rm(file, { force: true });
      return still;
    } finally {
      await rm(guard, { force: true });
    }
  }

  private async release(file: string, me: LeaseHolder): Promise<void> {
    // Only our own lease: one taken over after we were presumed dead is not ours any more.
    const now = await readFile(file, 'utf8').catch(() => null);
    if (now !== null && now.trim() === JSON.stringify(me)) await rm(file, { force: true });
  }
}
