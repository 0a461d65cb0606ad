// The SSH transport: one persistent ssh2 connection per host, shared by Docker API calls, commands
// and TCP forwards. Host keys are pinned; a lost connection is re-made, with backoff, by the next call.
import http from 'node:http';
import { createHash } from 'node:crypto';
import type { Duplex } from 'node:stream';
import { Client, type ClientChannel, type ConnectConfig, type SFTPWrapper } from 'ssh2';
import { PulserError } from '../errors.ts';
import { program } from '../core/argv.ts';
import { RemoteFiles } from './sftp.ts';

export interface SshTarget {
  /** host name in environments/hosts.yaml, for messages */
  host: string;
  address: string;
  port: number;
  user: string;
  /** `SHA256:…` as `ssh-keygen -lf` prints it */
  hostKey: string;
  /** the private key text, read when a connection is made (it comes from a secret) */
  privateKey: () => Promise<string>;
}

export interface SshOptions {
  /** handshake and authentication */
  connectTimeoutMs?: number;
  /** opening a channel, and each command unless it says otherwise */
  operationTimeoutMs?: number;
  keepaliveIntervalMs?: number;
  keepaliveCountMax?: number;
  /** first pause after a failed connection attempt; doubles up to backoffMaxMs */
  backoffBaseMs?: number;
  backoffMaxMs?: number;
}

export interface ExecResult {
  exitCode: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  /** output beyond maxOutputBytes was dropped */
  truncated: boolean;
  timedOut: boolean;
  durationMs: number;
}

export interface ExecOptions {
  timeoutMs?: number;
  maxOutputBytes?: number;
}

/** `SHA256:<base64 without padding>` of a raw host key, as OpenSSH prints it. */
export function sshFingerprint(key: Buffer): string {
  return 'SHA256:' + createHash('sha256').update(key).digest('base64').replace(/=+$/, '');
}

/** One argv element as a literal word for the remote POSIX shell that runs an exec request. */
export function shellQuote(word: string): string {
  if (word.includes('\0')) throw new PulserError('PULSER_E_TEMPLATE_PARAM', 'an argument contains a NUL byte');
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** The command line an exec request carries: every element quoted, never interpreted. */
export function remoteCommand(argv: readonly string[]): string {
  if (argv.length === 0) throw new PulserError('PULSER_E_INTERNAL', 'empty argv');
  return argv.map(shellQuote).join(' ');
}

interface Live {
  client: Client;
  closed: boolean;
  /** one SFTP session per connection, for reading facts without starting processes */
  sftp?: Promise<SFTPWrapper>;
}

/** File system sizes as `statvfs` gives them, in bytes. */
export interface FsStats {
  totalBytes: number;
  freeBytes: number;
  availableBytes: number;
}

/**
 * The one definition of disk use, for host facts, metrics and alerts alike: blocks reserved for
 * root count as used, because Odoo and PostgreSQL cannot write to them either. Null when unknown.
 */
export function diskUsedRatio(fs: FsStats): number | null {
  if (!(fs.totalBytes > 0)) return null;
  return Math.round(((fs.totalBytes - fs.availableBytes) / fs.totalBytes) * 10_000) / 10_000;
}

export class SshConnection {
  readonly target: SshTarget;
  /** handshakes made so far (tests and benchmarks read it) */
  connects = 0;
  private live: Live | null = null;
  private pending: Promise<Live> | null = null;
  private failures = 0;
  private lastFailureAt = 0;
  private closing = false;
  private readonly o: Required<SshOptions>;
  private remoteFiles?: RemoteFiles;

  constructor(target: SshTarget, opts: SshOptions = {}) {
    this.target = target;
    this.o = {
      connectTimeoutMs: opts.connectTimeoutMs ?? 10_000,
      operationTimeoutMs: opts.operationTimeoutMs ?? 30_000,
      keepaliveIntervalMs: opts.keepaliveIntervalMs ?? 5_000,
      keepaliveCountMax: opts.keepaliveCountMax ?? 3,
      backoffBaseMs: opts.backoffBaseMs ?? 250,
      backoffMaxMs: opts.backoffMaxMs ?? 10_000,
    };
  }

  private where(): string {
    return `host ${this.target.host} (${this.target.user}@${this.target.address}:${this.target.port})`;
  }

  /** The live connection, made (again) when there is none. Concurrent callers share one attempt. */
  connection(): Promise<Client> {
    if (this.closing) return Promise.reject(new PulserError('PULSER_E_SSH_UNREACHABLE', `${this.where()}: the connection is closed`));
    if (this.live && !this.live.closed) return Promise.resolve(this.live.client);
    this.pending ??= this.connect().finally(() => {
      this.pending = null;
    });
    return this.pending.then((l) => l.client);
  }

  private async connect(): Promise<Live> {
    // Backoff between failed attempts, so a host that is down is not hammered by every caller.
    if (this.failures > 0) {
      const wait = Math.min(this.o.backoffMaxMs, this.o.backoffBaseMs * 2 ** (this.failures - 1));
      const left = this.lastFailureAt + wait * (0.5 + Math.random() / 2) - Date.now();
      if (left > 0) await new Promise((r) => setTimeout(r, left));
    }
    let privateKey: string;
    try {
      privateKey = await this.target.privateKey();
    } catch (err) {
      throw new PulserError('PULSER_E_SSH_AUTH', `${this.where()}: the private key is not available: ${(err as Error).message}`, { cause: err });
    }
    const client = new Client();
    const live: Live = { client, closed: false };
    let presented: string | null = null;
    const config: ConnectConfig = {
      host: this.target.address,
      port: this.target.port,
      username: this.target.user,
      privateKey,
      readyTimeout: this.o.connectTimeoutMs,
      keepaliveInterval: this.o.keepaliveIntervalMs,
      keepaliveCountMax: this.o.keepaliveCountMax,
      hostVerifier: (key: Buffer) => {
        presented = sshFingerprint(key);
        return presented === this.target.hostKey;
      },
    };
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          client.end();
          reject(new PulserError('PULSER_E_SSH_UNREACHABLE', `${this.where()}: no SSH handshake within ${this.o.connectTimeoutMs} ms`));
        }, this.o.connectTimeoutMs + 1_000);
        client.once('ready', () => {
          clearTimeout(timer);
          resolve();
        });
        client.once('error', (err: Error & { level?: string; code?: string }) => {
          clearTimeout(timer);
          reject(this.classify(err, presented));
        });
        try {
          client.connect(config);
        } catch (err) {
          clearTimeout(timer);
          reject(new PulserError('PULSER_E_SSH_AUTH', `${this.where()}: the private key cannot be used: ${(err as Error).message}`, { cause: err }));
        }
      });
    } catch (err) {
      this.failures++;
      this.lastFailureAt = Date.now();
      client.end();
      throw err;
    }
    this.failures = 0;
    this.connects++;
    const lost = () => {
      live.closed = true;
      if (this.live === live) this.live = null;
    };
    client.on('close', lost);
    client.on('end', lost);
    // After the handshake an error means the connection is gone (keepalive timeout, reset).
    client.on('error', lost);
    this.live = live;
    return live;
  }

  private classify(err: Error & { level?: string; code?: string }, presented: string | null): PulserError {
    if (presented !== null && presented !== this.target.hostKey) {
      return new PulserError('PULSER_E_SSH_HOST_KEY', `${this.where()} presented host key ${presented}, but ${this.target.hostKey} is pinned: refusing the host`, {
        cause: err,
        details: { presented, pinned: this.target.hostKey },
      });
    }
    if (err.level === 'client-authentication') {
      return new PulserError('PULSER_E_SSH_AUTH', `${this.where()} refused the key of user ${this.target.user}`, { cause: err });
    }
    return new PulserError('PULSER_E_SSH_UNREACHABLE', `${this.where()} is unreachable: ${err.code ?? ''} ${err.message}`.replace(/\s+/g, ' '), { cause: err });
  }

  /** Opens a channel with a timeout; a failure to open is a channel error, a dead link is unreachable. */
  private async channel<T extends Duplex>(what: string, open: (c: Client, cb: (err: Error | undefined, ch: T) => void) => void): Promise<T> {
    const client = await this.connection();
    return new Promise<T>((resolve, reject) => {
      let done = false;
      const timer = setTimeout(() => {
        done = true;
        // A link that swallows packets leaves the connection looking alive: drop it so the next call reconnects.
        this.drop();
        reject(new PulserError('PULSER_E_TIMEOUT', `${this.where()}: ${what} did not open within ${this.o.operationTimeoutMs} ms`));
      }, this.o.operationTimeoutMs);
      try {
        open(client, (err, ch) => {
          clearTimeout(timer);
          if (done) {
            ch?.destroy();
            return;
          }
          done = true;
          if (err) {
            const gone = !this.live || this.live.client !== client || this.live.closed;
            reject(new PulserError(gone ? 'PULSER_E_SSH_UNREACHABLE' : 'PULSER_E_SSH_CHANNEL', `${this.where()}: ${what} failed: ${err.message}`, { cause: err }));
          } else resolve(ch);
        });
      } catch (err) {
        clearTimeout(timer);
        done = true;
        this.drop();
        reject(new PulserError('PULSER_E_SSH_UNREACHABLE', `${this.where()}: ${what} failed: ${(err as Error).message}`, { cause: err }));
      }
    });
  }

  private async sftpSession(): Promise<SFTPWrapper> {
    const client = await this.connection();
    const live = this.live;
    if (live && live.client === client && live.sftp) return live.sftp;
    const p = this.withTimeout('open SFTP', new Promise<SFTPWrapper>((resolve, reject) => client.sftp((err, sftp) => (err ? reject(new PulserError('PULSER_E_SSH_CHANNEL', `${this.where()}: SFTP failed: ${err.message}`, { cause: err })) : resolve(sftp)))));
    if (live && live.client === client) {
      live.sftp = p;
      p.catch(() => {
        if (live.sftp === p) live.sftp = undefined;
      });
    }
    return p;
  }

  private withTimeout<T>(what: string, p: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    // Only the connection the request went out on is dropped, never one made since.
    const on = this.live;
    const t = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        if (this.live === on) this.drop();
        reject(new PulserError('PULSER_E_TIMEOUT', `${this.where()}: ${what} did not answer within ${this.o.operationTimeoutMs} ms`));
      }, this.o.operationTimeoutMs);
    });
    return Promise.race([p, t]).finally(() => clearTimeout(timer));
  }

  /** Files of the host over SFTP (a backup destination), sharing this connection's session. */
  files(): RemoteFiles {
    this.remoteFiles ??= new RemoteFiles({
      session: () => this.sftpSession(),
      timed: (what, p) => this.withTimeout(what, p),
      drop: () => this.drop(),
      where: () => this.where(),
    });
    return this.remoteFiles;
  }

  /** Sizes of the file system holding `path` (SFTP statvfs: no process is started on the host). */
  async statvfs(path: string): Promise<FsStats> {
    const sftp = await this.sftpSession();
    const info = await this.withTimeout(
      `statvfs ${path}`,
      new Promise<Record<'f_bsize' | 'f_frsize' | 'f_blocks' | 'f_bfree' | 'f_bavail', number | bigint>>((resolve, reject) =>
        sftp.ext_openssh_statvfs(path, (err, fs) => (err ? reject(new PulserError('PULSER_E_SSH_CHANNEL', `${this.where()}: statvfs ${path}: ${err.message}`, { cause: err })) : resolve(fs))),
      ),
    );
    const n = (v: number | bigint) => Number(v);
    const unit = n(info.f_frsize) || n(info.f_bsize);
    return { totalBytes: n(info.f_blocks) * unit, freeBytes: n(info.f_bfree) * unit, availableBytes: n(info.f_bavail) * unit };
  }

  /** A small file of the host (SFTP), e.g. /proc/meminfo. */
  async readFile(path: string): Promise<string> {
    const sftp = await this.sftpSession();
    const buf = await this.withTimeout(
      `read ${path}`,
      new Promise<Buffer>((resolve, reject) => sftp.readFile(path, (err, data) => (err ? reject(new PulserError('PULSER_E_SSH_CHANNEL', `${this.where()}: reading ${path}: ${err.message}`, { cause: err })) : resolve(data)))),
    );
    return buf.toString('utf8');
  }

  /** A stream to a unix socket on the host (the Docker socket). */
  streamLocal(socketPath: string): Promise<ClientChannel> {
    return this.channel(`forward to ${socketPath}`, (c, cb) => c.openssh_forwardOutStreamLocal(socketPath, cb));
  }

  /** A TCP stream to address:port as seen from the host. */
  forwardOut(address: string, port: number): Promise<ClientChannel> {
    return this.channel(`forward to ${address}:${port}`, (c, cb) => c.forwardOut('127.0.0.1', 0, address, port, cb));
  }

  /**
   * Runs argv on the host. Every element is quoted, so it reaches the process as one literal word.
   * On timeout the remote process is killed: it runs under `timeout -s KILL`, and the channel is
   * signalled and closed.
   */
  async exec(argv: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
    const timeoutMs = opts.timeoutMs ?? this.o.operationTimeoutMs;
    const max = opts.maxOutputBytes ?? 1_000_000;
    const seconds = Math.max(1, Math.ceil(timeoutMs / 1000));
    const command = remoteCommand(['timeout', '-s', 'KILL', String(seconds), ...program(argv)]);
    const started = performance.now();
    const ch = await this.channel<ClientChannel>(`exec ${argv[0]}`, (c, cb) => c.exec(command, cb));
    return new Promise<ExecResult>((resolve) => {
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      let size = 0;
      let truncated = false;
      let timedOut = false;
      let exitCode: number | null = null;
      let signal: string | null = null;
      const take = (into: Buffer[]) => (b: Buffer) => {
        if (size >= max) {
          truncated = true;
          return;
        }
        const room = max - size;
        if (b.length > room) truncated = true;
        const part = b.subarray(0, room);
        into.push(part);
        size += part.length;
      };
      ch.on('data', take(out));
      ch.stderr.on('data', take(err));
      ch.on('exit', (code: number | null, sig?: string) => {
        exitCode = code;
        signal = sig ?? null;
      });
      const timer = setTimeout(() => {
        timedOut = true;
        ch.signal('KILL');
        ch.close();
      }, timeoutMs + 500);
      ch.on('close', () => {
        clearTimeout(timer);
        if (exitCode === 137 || exitCode === 124) timedOut = true;
        resolve({
          exitCode,
          signal,
          stdout: Buffer.concat(out).toString('utf8'),
          stderr: Buffer.concat(err).toString('utf8'),
          truncated,
          timedOut,
          durationMs: Math.round(performance.now() - started),
        });
      });
    });
  }

  /**
   * An http.Agent whose every connection is a fresh channel to the Docker socket over this one SSH
   * connection (no keep-alive: a channel carries one request).
   */
  dockerAgent(socketPath: string): http.Agent {
    const agent = new http.Agent({ keepAlive: false });
    const self = this;
    (agent as unknown as { createConnection: unknown }).createConnection = function (_opts: unknown, cb: (err: Error | null, s?: Duplex) => void) {
      self.streamLocal(socketPath).then(
        (ch) => cb(null, asSocketLike(ch)),
        (err: Error) => cb(err),
      );
      return undefined;
    };
    return agent;
  }

  /** Ends the current connection (if any); the next call makes a new one. */
  drop(): void {
    const l = this.live;
    this.live = null;
    if (l) {
      l.closed = true;
      l.client.end();
      l.client.destroy();
    }
  }

  async close(): Promise<void> {
    this.closing = true;
    await this.pending?.catch(() => undefined);
    this.drop();
  }
}

/** http.ClientRequest calls socket methods a channel lacks; they have no meaning on a channel. */
export function asSocketLike<T extends Duplex>(ch: T): T {
  const s = ch as unknown as Record<string, unknown>;
  for (const m of ['setTimeout', 'setNoDelay', 'setKeepAlive', 'ref', 'unref']) {
    if (typeof s[m] !== 'function') s[m] = () => ch;
  }
  return ch;
}
