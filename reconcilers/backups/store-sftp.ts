// A backup destination on another host, over the SFTP session of that host's SSH connection (its
// pinned host key, its key): the same folder layout and `.partial` protocol as a local folder.
// Files are fsynced through OpenSSH's fsync extension; SFTP has no way to fsync a folder, so a
// rename is as durable as the remote file system makes it. Restores read a local copy, taken
// once into $TMPDIR and checked against the manifest before anything reads it.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import type { Drivers, RemoteFiles } from '../../src/drivers/index.ts';
import { SFTP_STATUS, sftpStatus } from '../../src/drivers/sftp.ts';
import { PulserError } from '../../src/errors.ts';
import { isErrno } from '../../src/evidence/durable.ts';
import type { BackupDestination } from '../../src/spec/types.gen.ts';
import type { StoredFile } from './manifest.ts';
import { byteMeter, formatBytes } from './take.ts';
import { FolderBackupStore, LocalBackupStore, pumpHashed, verifyFiles, type BackupFiles, type BackupFs, type BackupStore } from './store.ts';

/** Below this many free bytes, a failed write is taken to be a full destination. */
const FULL_BELOW_BYTES = 4 * 1024 * 1024;

export class SftpBackupFs implements BackupFs {
  constructor(
    private readonly host: string,
    private readonly files: () => RemoteFiles,
    private readonly statvfs: (p: string) => Promise<{ availableBytes: number }>,
  ) {}

  show(p: string): string {
    return `${this.host}:${p}`;
  }

  join(...parts: string[]): string {
    return path.posix.join(...parts);
  }

  readdir(dir: string): Promise<string[] | null> {
    return this.files().readdir(dir);
  }

  async readText(file: string): Promise<string | null> {
    return (await this.files().readFile(file))?.toString('utf8') ?? null;
  }

  writeText(file: string, text: string): Promise<void> {
    return this.files().writeFileAtomic(file, text);
  }

  mkdirs(dir: string): Promise<void> {
    return this.files().mkdirs(dir);
  }

  async exists(p: string): Promise<boolean> {
    return (await this.files().stat(p)) !== null;
  }

  rename(from: string, to: string): Promise<void> {
    return this.files().rename(from, to);
  }

  removeTree(p: string): Promise<void> {
    return this.files().removeTree(p);
  }

  async writeFile(file: string, source: Readable, onBytes?: (total: number) => void): Promise<StoredFile> {
    let out: Writable;
    try {
      out = await this.files().createWriteStream(file);
    } catch (err) {
      source.destroy();
      throw err;
    }
    return pumpHashed(source, out, path.posix.basename(file), onBytes);
  }

  async syncDir(): Promise<void> {
    // SFTP offers no fsync of a folder.
  }

  async failure(err: unknown, what: string, dir: string): Promise<PulserError> {
    // The backup's own failures (pg_dump, the engine, a stall) and a lost connection keep their codes.
    if (err instanceof PulserError && err.code !== 'PULSER_E_SSH_CHANNEL') return err;
    const status = sftpStatus(err);
    const message = (err as Error).message;
    // OpenSSH reports ENOSPC as a plain failure: the free space of the destination tells.
    if (status === SFTP_STATUS.FAILURE || status === undefined) {
      const free = await this.statvfs(dir).then(
        (s) => s.availableBytes,
        () => null,
      );
      if (free !== null && free < FULL_BELOW_BYTES) {
        return new PulserError('PULSER_E_BACKUP_NO_SPACE', `${what}: no space left on the backup destination ${this.show(dir)} (${formatBytes(free)} free)`, { cause: err });
      }
    }
    const why = status === SFTP_STATUS.PERMISSION_DENIED ? 'permission denied' : status === SFTP_STATUS.NO_SUCH_FILE ? 'no such file or folder' : message;
    return new PulserError('PULSER_E_BACKUP_DESTINATION', `${what} on ${this.show(dir)}: ${why}`, { cause: err, details: { sftpStatus: status } });
  }

  async open(entry: Parameters<BackupFs['open']>[0], dir: string, progress: (message: string) => void = () => undefined): Promise<BackupFiles> {
    const local = await mkdtemp(path.join(tmpdir(), `pulser-restore-${entry.manifest.id}-`));
    const release = () => rm(local, { recursive: true, force: true });
    const { dump, filestore } = entry.manifest.files;
    try {
      for (const f of filestore ? [dump, filestore] : [dump]) {
        progress(`copying ${f.name} of ${entry.manifest.id} from ${this.show(dir)} (${formatBytes(f.bytes)})`);
        await this.files()
          .download(this.join(dir, f.name), path.join(local, f.name), byteMeter(`${f.name}:`, progress))
          .catch((err: unknown) => {
            if (isErrno(err, 'ENOSPC')) throw new PulserError('PULSER_E_RESTORE_FAILED', `copying ${entry.manifest.id} into ${local}: no space left on this machine (point TMPDIR at a larger folder)`, { cause: err });
            if (sftpStatus(err) === SFTP_STATUS.NO_SUCH_FILE) throw new PulserError('PULSER_E_BACKUP_CORRUPT', `backup ${entry.manifest.id}: ${f.name} is missing on ${this.show(dir)}`, { cause: err });
            throw err;
          });
      }
    } catch (err) {
      await release();
      throw err;
    }
    return {
      dump: path.join(local, dump.name),
      filestore: filestore ? path.join(local, filestore.name) : null,
      verify: () => verifyFiles(entry, local),
      release,
    };
  }
}

/** A folder on an SFTP host. */
export class SftpBackupStore extends FolderBackupStore {
  constructor(host: string, root: string, drivers: Pick<Drivers, 'ssh'>) {
    const conn = () => {
      const c = drivers.ssh(host);
      if (!c) throw new PulserError('PULSER_E_BACKUP_DESTINATION', `backup destination host ${host} is not reached over SSH`);
      return c;
    };
    super(
      root,
      new SftpBackupFs(
        host,
        () => conn().files(),
        (p) => conn().statvfs(p),
      ),
    );
  }
}

/** The store of a `backup.destination`. */
export function storeFor(dest: BackupDestination, drivers: Pick<Drivers, 'ssh'>): BackupStore {
  if (dest.type === 'sftp') {
    if (!dest.host) throw new PulserError('PULSER_E_BACKUP_POLICY', 'backup.destination: an sftp destination names its host');
    return new SftpBackupStore(dest.host, dest.path, drivers);
  }
  return new LocalBackupStore(dest.path);
}
