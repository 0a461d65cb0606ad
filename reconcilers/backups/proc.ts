// Runs PostgreSQL client programs (argv arrays, a timeout, the caller's abort signal) and, for a
// database reached through a transport stream (an SSH forward), a loopback relay they connect to.
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import type { Readable } from 'node:stream';
import type { TcpConnect } from '../../src/drivers/postgres.ts';
import type { Drivers } from '../../src/drivers/index.ts';
import { PulserError, type ErrorCode } from '../../src/errors.ts';
import type { Endpoint } from './commands.ts';

export interface PgProcess {
  child: ChildProcess;
  stdout: Readable;
  /** resolves when the program exited 0; rejects with a coded error otherwise */
  done: Promise<void>;
  kill(): void;
}

const STDERR_KEEP = 4096;

/** Spawns `argv` with `env` added to a minimal environment; fails with `code` on a non-zero exit or timeout. */
export function runPg(argv: string[], env: Record<string, string>, opts: { timeoutMs: number; signal?: AbortSignal; code: ErrorCode; what: string }): PgProcess {
  const [cmd, ...args] = argv;
  const child = spawn(cmd!, args, {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C.UTF-8', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => {
    stderr = (stderr + c.toString('utf8')).slice(-STDERR_KEEP);
  });
  let why: string | null = null;
  const kill = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  const timer = setTimeout(() => {
    why = `timed out after ${opts.timeoutMs} ms`;
    kill();
  }, opts.timeoutMs);
  const onAbort = () => {
    why ??= 'cancelled';
    kill();
  };
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  if (opts.signal?.aborted) onAbort();
  const done = new Promise<void>((resolve, reject) => {
    child.once('error', (err) => reject(new PulserError(opts.code, `${opts.what}: cannot run ${cmd}: ${err.message}`, { cause: err })));
    child.once('close', (status, signal) => {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      if (status === 0 && !why) return resolve();
      const tail = stderr.trim().split('\n').slice(-5).join(' | ');
      const code: ErrorCode = why?.startsWith('timed out') ? 'PULSER_E_TIMEOUT' : opts.code;
      reject(new PulserError(code, `${opts.what}: ${why ?? (signal ? `killed by ${signal}` : `exited with status ${status}`)}${tail ? `: ${tail}` : ''}`, { details: { status, signal, stderr: tail } }));
    });
  });
  // A rejection nobody awaits yet (the caller is still streaming stdout) must not crash the process.
  done.catch(() => undefined);
  return { child, stdout: child.stdout!, done, kill };
}

export interface Relay {
  endpoint: Endpoint;
  close(): Promise<void>;
}

/**
 * A listener on 127.0.0.1 that relays each connection to `address:port` through `connect`, so
 * pg_dump and pg_restore (which only speak TCP or unix sockets) reach a database behind a transport.
 */
export async function openRelay(connect: TcpConnect, address: string, port: number): Promise<Relay> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((local) => {
    sockets.add(local);
    local.once('close', () => sockets.delete(local));
    local.pause();
    connect(address, port).then(
      (remote) => {
        if (local.destroyed) return remote.destroy();
        local.pipe(remote);
        remote.pipe(local);
        local.once('close', () => remote.destroy());
        remote.once('close', () => local.destroy());
        remote.once('error', () => local.destroy());
        local.once('error', () => remote.destroy());
        local.resume();
      },
      () => local.destroy(),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port: localPort } = server.address() as net.AddressInfo;
  return {
    endpoint: { host: '127.0.0.1', port: localPort },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** How a host's databases are reached from here: through its SSH connection, or directly (undefined). */
export function hostTransport(drivers: Drivers, host: string): TcpConnect | undefined {
  return drivers.ssh(host) ? (address, port) => drivers.tcp(host, address, port) : undefined;
}

/** The endpoint the client programs use: the database itself, or a relay through `connect`. */
export async function pgEndpoint(address: string, port: number, connect?: TcpConnect): Promise<Relay> {
  if (!connect) return { endpoint: { host: address, port }, close: async () => undefined };
  return openRelay(connect, address, port);
}
