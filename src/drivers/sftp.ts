// Files on a remote host through the SSH connection's SFTP session (a backup destination on
// another machine). Every request has a timeout and fails with a coded error that keeps the SFTP
// status; uploads and downloads keep several requests in flight, so a link's latency does not
// cap the rate at one chunk per round trip.
import { Writable } from 'node:stream';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import type { SFTPWrapper, Stats } from 'ssh2';
import { PulserError } from '../errors.ts';

/** SFTP status codes (draft-ietf-secsh-filexfer-02) that callers tell apart. */
export const SFTP_STATUS = { NO_SUCH_FILE: 2, PERMISSION_DENIED: 3, FAILURE: 4, OP_UNSUPPORTED: 8 } as const;

/** What RemoteFiles needs of the connection that owns the session. */
export interface SftpChannel {
  /** the connection's SFTP session, opened (again) when needed */
  session(): Promise<SFTPWrapper>;
  /** bounds one request; a request that never answers drops the connection */
  timed<T>(what: string, p: Promise<T>): Promise<T>;
  /** ends the connection: every request still in flight fails */
  drop(): void;
  /** `host NAME (user@address:port)`, for messages */
  where(): string;
}

/** The SFTP status of a failed request, when it was one. */
export function sftpStatus(err: unknown): number | undefined {
  if (err instanceof PulserError) return (err.details as { sftpStatus?: number } | undefined)?.sftpStatus;
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

/** Writes an upload keeps in flight (each as large as the chunk its source delivered). */
const IN_FLIGHT = 16;
/** Reads a download keeps in flight, and their size. */
const READS_IN_FLIGHT = 32;
const READ_CHUNK = 128 * 1024;

export class RemoteFiles {
  constructor(private readonly ch: SftpChannel) {}

  /** The coded error of a failed request; a session that ended under it is a lost connection. */
  fail(op: string, p: string, err: unknown): PulserError {
    if (err instanceof PulserError) return err;
    // ssh2 fails every request still waiting with this message when the session ends.
    if ((err as Error).message === 'No response from server') {
      return new PulserError('PULSER_E_SSH_UNREACHABLE', `${this.ch.where()}: the connection ended before SFTP ${op} ${p} was answered`, { cause: err });
    }
    const status = sftpStatus(err);
    return new PulserError('PULSER_E_SSH_CHANNEL', `${this.ch.where()}: SFTP ${op} ${p}: ${(err as Error).message}`, { cause: err, details: { sftpStatus: status, path: p } });
  }

  /** Runs one SFTP request with the session, its timeout and a coded error. */
  private async call<T>(op: string, p: string, run: (sftp: SFTPWrapper, cb: (err: Error | null | undefined, v: T) => void) => void): Promise<T> {
    const sftp = await this.ch.session();
    try {
      return await this.ch.timed(`SFTP ${op} ${p}`, new Promise<T>((resolve, reject) => run(sftp, (err, v) => (err ? reject(err) : resolve(v)))));
    } catch (err) {
      throw this.fail(op, p, err);
    }
  }

  /** The entry's attributes, or null when nothing is there. */
  async stat(p: string): Promise<Stats | null> {
    try {
      return await this.call<Stats>('stat', p, (s, cb) => s.stat(p, cb));
    } catch (err) {
      if (sftpStatus(err) === SFTP_STATUS.NO_SUCH_FILE) return null;
      throw err;
    }
  }

  /** Names in a folder (no `.` or `..`), or null when the folder does not exist. */
  async readdir(p: string): Promise<string[] | null> {
    try {
      const list = await this.call<{ filename: string }[]>('readdir', p, (s, cb) => s.readdir(p, cb));
      return list.map((e) => e.filename).filter((n) => n !== '.' && n !== '..');
    } catch (err) {
      if (sftpStatus(err) === SFTP_STATUS.NO_SUCH_FILE) return null;
      throw err;
    }
  }

  /** `mkdir -p`: every missing folder of an absolute path. */
  async mkdirs(p: string, mode = 0o750): Promise<void> {
    const st = await this.stat(p);
    if (st?.isDirectory()) return;
    if (st) throw new PulserError('PULSER_E_SSH_CHANNEL', `${this.ch.where()}: ${p} exists and is not a folder`, { details: { sftpStatus: SFTP_STATUS.FAILURE, path: p } });
    const parent = path.posix.dirname(p);
    if (parent !== p) await this.mkdirs(parent, mode);
    try {
      await this.call<void>('mkdir', p, (s, cb) => s.mkdir(p, { mode }, (err) => cb(err, undefined)));
    } catch (err) {
      // Made by someone else meanwhile is as good as made here.
      if (!(await this.stat(p))?.isDirectory()) throw err;
    }
  }

  /** A small file (a manifest), or null when it does not exist. */
  async readFile(p: string): Promise<Buffer | null> {
    try {
      return await this.call<Buffer>('read', p, (s, cb) => s.readFile(p, cb));
    } catch (err) {
      if (sftpStatus(err) === SFTP_STATUS.NO_SUCH_FILE) return null;
      throw err;
    }
  }

  /** Writes a small file under a temporary name, fsyncs it and renames it over `p`. */
  async writeFileAtomic(p: string, data: string | Buffer): Promise<void> {
    const tmp = `${p}.tmp-${randomBytes(4).toString('hex')}`;
    const out = await this.createWriteStream(tmp);
    try {
      await new Promise<void>((resolve, reject) => {
        out.once('error', reject);
        out.end(typeof data === 'string' ? Buffer.from(data) : data, () => resolve());
      });
      await this.rename(tmp, p);
    } catch (err) {
      out.destroy();
      await this.unlink(tmp).catch(() => undefined);
      throw this.fail('write', p, err);
    }
  }

  /** POSIX rename (OpenSSH's extension): replaces a file, moves a folder whole. */
  async rename(from: string, to: string): Promise<void> {
    await this.call<void>('rename', `${from} → ${to}`, (s, cb) => s.ext_openssh_rename(from, to, (err) => cb(err, undefined)));
  }

  async unlink(p: string): Promise<void> {
    await this.call<void>('remove', p, (s, cb) => s.unlink(p, (err) => cb(err, undefined)));
  }

  /** `rm -rf`: a folder and everything under it; nothing there is not an error. */
  async removeTree(p: string): Promise<void> {
    const st = await this.stat(p);
    if (!st) return;
    if (!st.isDirectory()) return this.unlink(p);
    for (const name of (await this.readdir(p)) ?? []) await this.removeTree(path.posix.join(p, name));
    await this.call<void>('rmdir', p, (s, cb) => s.rmdir(p, (err) => cb(err, undefined)));
  }

  /**
   * A new file (refused when one exists) as a Writable that keeps several writes in flight. Its
   * 'finish' means every byte was acknowledged and the file was fsynced and closed.
   */
  async createWriteStream(p: string): Promise<Writable> {
    const sftp = await this.ch.session();
    const handle = await this.call<Buffer>('open', p, (s, cb) => s.open(p, 'wx', 0o640, cb));
    return new SftpUpload(sftp, handle, p, this);
  }

  /** fsync (OpenSSH's extension); a server without it leaves durability to its own flush. */
  async fsync(sftp: SFTPWrapper, handle: Buffer, p: string): Promise<void> {
    try {
      await this.ch.timed(`SFTP fsync ${p}`, new Promise<void>((resolve, reject) => sftp.ext_openssh_fsync(handle, (err) => (err ? reject(err) : resolve()))));
    } catch (err) {
      if (/not supported/i.test((err as Error).message)) return;
      throw this.fail('fsync', p, err);
    }
  }

  async closeHandle(sftp: SFTPWrapper, handle: Buffer, p: string): Promise<void> {
    await this.ch.timed(`SFTP close ${p}`, new Promise<void>((resolve, reject) => sftp.close(handle, (err) => (err ? reject(err) : resolve())))).catch((err: unknown) => {
      throw this.fail('close', p, err);
    });
  }

  /**
   * Copies a remote file to a new local file with parallel reads. A transfer that makes no
   * progress for `stallMs` drops the connection, which fails it.
   */
  async download(remote: string, local: string, onBytes?: (total: number) => void, stallMs = 10 * 60_000): Promise<void> {
    const sftp = await this.ch.session();
    let timer: NodeJS.Timeout | undefined;
    let stalled = false;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        stalled = true;
        this.ch.drop();
      }, stallMs);
    };
    arm();
    try {
      await new Promise<void>((resolve, reject) =>
        sftp.fastGet(
          remote,
          local,
          {
            concurrency: READS_IN_FLIGHT,
            chunkSize: READ_CHUNK,
            step: (total) => {
              arm();
              onBytes?.(total);
            },
          },
          (err) => (err ? reject(err) : resolve()),
        ),
      );
    } catch (err) {
      if (stalled) throw new PulserError('PULSER_E_TIMEOUT', `${this.ch.where()}: no data for ${Math.round(stallMs / 1000)} s while copying ${remote}`, { cause: err });
      throw this.fail('read', remote, err);
    } finally {
      clearTimeout(timer);
    }
  }
}

/**
 * An upload that acknowledges a write to its producer while fewer than IN_FLIGHT requests are
 * outstanding; the first failed request fails the stream. The handle is always closed.
 */
class SftpUpload extends Writable {
  private pos = 0;
  private inFlight = 0;
  private failed: Error | null = null;
  private waiting: ((err?: Error | null) => void) | null = null;
  private draining: ((err?: Error | null) => void) | null = null;
  private open = true;
  /** a session that closed answers nothing more: its handle is gone with it */
  private sessionClosed = false;
  private readonly onSessionClose = () => {
    this.sessionClosed = true;
  };

  constructor(
    private readonly sftp: SFTPWrapper,
    private readonly handle: Buffer,
    private readonly file: string,
    private readonly files: RemoteFiles,
  ) {
    super({ highWaterMark: 1 << 20 });
    sftp.once('end', this.onSessionClose);
    sftp.once('close', this.onSessionClose);
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    // A request sent on an ended session would never be answered.
    if (this.sessionClosed && !this.failed) this.failed = this.files.fail('write', this.file, new Error('No response from server'));
    if (this.failed) return cb(this.failed);
    const at = this.pos;
    this.pos += chunk.length;
    this.inFlight++;
    try {
      this.sftp.write(this.handle, chunk, 0, chunk.length, at, (err) => this.acked(err ?? null));
    } catch (err) {
      this.inFlight--;
      return cb(err as Error);
    }
    if (this.inFlight < IN_FLIGHT) cb();
    else this.waiting = cb;
  }

  private acked(err: Error | null): void {
    this.inFlight--;
    if (err && !this.failed) this.failed = this.files.fail('write', this.file, err);
    const w = this.waiting;
    if (w && (this.failed || this.inFlight < IN_FLIGHT)) {
      this.waiting = null;
      w(this.failed);
    }
    const d = this.draining;
    if (d && this.inFlight === 0) {
      this.draining = null;
      d();
    }
  }

  override _final(cb: (err?: Error | null) => void): void {
    const finish = () => {
      if (this.failed) return cb(this.failed);
      this.files
        .fsync(this.sftp, this.handle, this.file)
        .then(() => this.close())
        .then(
          () => cb(),
          (err: Error) => cb(err),
        );
    };
    if (this.inFlight === 0) finish();
    else this.draining = finish;
  }

  private async close(): Promise<void> {
    if (!this.open) return;
    this.open = false;
    this.sftp.off('end', this.onSessionClose);
    this.sftp.off('close', this.onSessionClose);
    if (this.sessionClosed) return;
    await this.files.closeHandle(this.sftp, this.handle, this.file);
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    // The failure is reported now; the handle is closed on the side, if the session still lives.
    this.close().catch(() => undefined);
    cb(err);
  }
}
