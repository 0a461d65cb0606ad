// Backup destinations. A backup is a folder `<root>/<env>/<id>/` holding the dump, the filestore
// tar, the manifest and the last drill record; it is written under `<id>.partial/`, every file
// fsynced, the manifest written last, then the folder renamed: a folder without `.partial` and
// with a manifest is complete. Files are streamed through sha256, never held in memory. This file
// has the contract every destination keeps and the local one; store-sftp.ts has the SFTP one.
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { createHash } from 'node:crypto';
import { PulserError } from '../../src/errors.ts';
import { fsyncDir, isErrno, writeFileAtomic } from '../../src/evidence/durable.ts';
import { DRILL_FILE, MANIFEST_FILE, parseManifest, type DrillRecord, type Manifest, type StoredFile } from './manifest.ts';
import { parseBackupId } from './commands.ts';

export interface BackupEntry {
  manifest: Manifest;
  drill: DrillRecord | null;
  /** where the backup is: a local folder, or `host:/folder` on an SFTP destination */
  dir: string;
  /** bytes of the backup's files */
  bytes: number;
}

/** A backup being written: files go in one by one, then commit() makes it complete, atomically. */
export interface PartialBackup {
  /** Streams `source` into the backup's file `name`, hashing on the way, and makes it durable. */
  write(name: string, source: Readable, onBytes?: (total: number) => void): Promise<StoredFile>;
  /** Writes the manifest and renames the folder into place; returns where the backup now is. */
  commit(manifest: Manifest): Promise<string>;
  /** Removes whatever was written; does nothing after commit. */
  abort(): Promise<void>;
}

/** A backup's files as local paths pg_restore and tar can read; release() removes any temporary copy. */
export interface BackupFiles {
  dump: string;
  filestore: string | null;
  /** checks the files against the manifest (PULSER_E_BACKUP_CORRUPT); may run alongside a restore */
  verify(): Promise<void>;
  release(): Promise<void>;
}

/** What the backups reconciler, drills, restores and staging refreshes need of a destination. */
export interface BackupStore {
  /** the destination, for messages: a folder, or `host:/folder` */
  readonly where: string;
  /** Complete backups of an environment, newest first. Folders without a pulser manifest are ignored. */
  list(env: string): Promise<BackupEntry[]>;
  /** One complete backup by id (PULSER_E_BACKUP_NOT_FOUND otherwise). */
  get(id: string): Promise<BackupEntry>;
  /** Starts a backup; leftovers of an interrupted attempt at the same id are cleared first. */
  begin(env: string, id: string): Promise<PartialBackup>;
  /** Removes folders left by interrupted backups; returns their names. */
  removePartials(env: string): Promise<string[]>;
  /** Deletes a backup; only a folder holding a pulser manifest for that id is ever removed. */
  remove(id: string): Promise<void>;
  recordDrill(entry: BackupEntry, drill: DrillRecord): Promise<void>;
  /** Checks every file of a backup against its manifest (size and sha256). */
  verify(entry: BackupEntry): Promise<void>;
  /** The backup's files where this machine's programs can read them. */
  open(entry: BackupEntry, progress?: (message: string) => void): Promise<BackupFiles>;
}

export const PARTIAL = '.partial';

/** Turns a file-system failure into a coded error (a full disk is its own code). */
export function storageError(err: unknown, what: string): PulserError {
  if (err instanceof PulserError) return err;
  if (isErrno(err, 'ENOSPC') || isErrno(err, 'EDQUOT')) return new PulserError('PULSER_E_BACKUP_NO_SPACE', `${what}: no space left on the backup destination`, { cause: err });
  const code = (err as NodeJS.ErrnoException).code ?? 'error';
  return new PulserError('PULSER_E_BACKUP_DESTINATION', `${what}: ${code} ${(err as Error).message}`, { cause: err });
}

/** How long a backup stream may deliver no byte before it is given up (a peer gone silent). */
export const STALL_MS = 10 * 60_000;

/**
 * Streams `source` into `out`, hashing on the way. It settles on the first of: `out` finished
 * after the source's end (success), an error on either side, the source closing before its end,
 * or `stallMs` without a byte; on failure both streams are destroyed. Errors of the source are
 * the backup's (PULSER_E_BACKUP_FAILED); those of `out` are the destination's, passed on as they are.
 */
export async function pumpHashed(source: Readable, out: Writable, name: string, onBytes?: (total: number) => void, stallMs = STALL_MS): Promise<StoredFile> {
  const hash = createHash('sha256');
  let bytes = 0;
  // Pumped by hand rather than with pipeline(): it settles on the first error of either side
  // without waiting for a torn-down socket or child pipe to report that it closed.
  await new Promise<void>((resolve, reject) => {
    let settled = false;
    let ended = false;
    let stall: NodeJS.Timeout | undefined;
    const arm = () => {
      clearTimeout(stall);
      stall = setTimeout(() => fail(new PulserError('PULSER_E_TIMEOUT', `no data for ${Math.round(stallMs / 1000)} s while writing ${name}`)), stallMs);
    };
    const settle = () => {
      settled = true;
      clearTimeout(stall);
      source.off('data', onData);
      source.off('close', onSourceClose);
      out.off('drain', onDrain);
      out.off('close', onOutClose);
    };
    const fail = (err: Error) => {
      if (settled) return;
      settle();
      source.destroy();
      out.destroy();
      reject(err);
    };
    const onData = (chunk: Buffer) => {
      arm();
      hash.update(chunk);
      bytes += chunk.length;
      onBytes?.(bytes);
      if (!out.write(chunk)) source.pause();
    };
    const onDrain = () => source.resume();
    const onSourceClose = () => {
      if (!ended) fail(new PulserError('PULSER_E_BACKUP_FAILED', `the data of ${name} stopped before its end`));
    };
    const onOutClose = () => fail(new Error(`${name} was closed before it was finished`));
    source.on('data', onData);
    out.on('drain', onDrain);
    // Errors of the source are the backup's (pg_dump, the engine); those of the file the destination's.
    source.once('error', (err: Error) => fail(err instanceof PulserError ? err : new PulserError('PULSER_E_BACKUP_FAILED', `reading the data of ${name}: ${err.message}`, { cause: err })));
    out.once('error', fail);
    source.on('close', onSourceClose);
    out.on('close', onOutClose);
    source.once('end', () => {
      ended = true;
      out.end();
    });
    out.once('finish', () => {
      if (settled) return;
      settle();
      resolve();
    });
    arm();
  });
  return { name, bytes, sha256: hash.digest('hex') };
}

/** pumpHashed into a new local file, fsynced before it resolves. */
export async function writeHashed(source: Readable, file: string, onBytes?: (total: number) => void, stallMs = STALL_MS): Promise<StoredFile> {
  const out = createWriteStream(file, { flags: 'wx', highWaterMark: 1 << 20 });
  const stored = await pumpHashed(source, out, path.basename(file), onBytes, stallMs);
  // fsync applies to the file, whichever descriptor asks for it.
  const fh = await open(file, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
  return stored;
}

/** sha256 and size of a file, streamed. */
export async function hashFile(file: string): Promise<{ bytes: number; sha256: string }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) {
    hash.update(chunk);
    bytes += chunk.length;
  }
  return { bytes, sha256: hash.digest('hex') };
}

/**
 * The file operations a destination offers, on absolute paths of its own file system. The
 * layout, the `.partial` protocol and the manifest checks are FolderBackupStore's, shared by all.
 */
export interface BackupFs {
  /** a path as people should see it (`host:/folder` for a remote one) */
  show(p: string): string;
  join(...parts: string[]): string;
  /** names in a folder, or null when it does not exist */
  readdir(dir: string): Promise<string[] | null>;
  /** a small file's text, or null when it does not exist */
  readText(file: string): Promise<string | null>;
  /** replaces a small file atomically and durably */
  writeText(file: string, text: string): Promise<void>;
  mkdirs(dir: string): Promise<void>;
  exists(p: string): Promise<boolean>;
  rename(from: string, to: string): Promise<void>;
  removeTree(p: string): Promise<void>;
  /** streams into a new file, hashing on the way; durable when it resolves */
  writeFile(file: string, source: Readable, onBytes?: (total: number) => void): Promise<StoredFile>;
  /** makes a folder's renames durable, where the destination can */
  syncDir(dir: string): Promise<void>;
  /** a coded error for a failed operation on `dir` (a full destination is its own code) */
  failure(err: unknown, what: string, dir: string): Promise<PulserError>;
  /** the files of the backup in folder `dir` as local paths */
  open(entry: BackupEntry, dir: string, progress?: (message: string) => void): Promise<BackupFiles>;
}

class FolderPartialBackup implements PartialBackup {
  private done = false;
  constructor(
    private readonly store: FolderBackupStore,
    private readonly fs: BackupFs,
    readonly dir: string,
    private readonly finalDir: string,
  ) {}

  write(name: string, source: Readable, onBytes?: (total: number) => void): Promise<StoredFile> {
    const file = this.fs.join(this.dir, name);
    return this.store.op(`writing ${this.fs.show(file)}`, () => this.fs.writeFile(file, source, onBytes));
  }

  async commit(manifest: Manifest): Promise<string> {
    await this.store.op(`finishing ${this.fs.show(this.dir)}`, async () => {
      await this.fs.writeText(this.fs.join(this.dir, MANIFEST_FILE), JSON.stringify(manifest, null, 2) + '\n');
      await this.fs.syncDir(this.dir);
      await this.fs.rename(this.dir, this.finalDir);
      await this.fs.syncDir(path.posix.dirname(this.finalDir));
    });
    this.done = true;
    return this.fs.show(this.finalDir);
  }

  async abort(): Promise<void> {
    if (this.done) return;
    this.done = true;
    // Best effort: what cannot be removed now (a lost connection) the next backup removes.
    await this.fs.removeTree(this.dir).catch(() => undefined);
  }
}

/** `<root>/<env>/<id>/` on any BackupFs. */
export class FolderBackupStore implements BackupStore {
  constructor(
    readonly root: string,
    private readonly fs: BackupFs,
  ) {}

  get where(): string {
    return this.fs.show(this.root);
  }

  envDir(env: string): string {
    return this.fs.join(this.root, env);
  }

  private folder(env: string, id: string): string {
    return this.fs.join(this.envDir(env), id);
  }

  /** Runs a file operation; its failure becomes the destination's coded error. */
  async op<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw await this.fs.failure(err, what, this.root);
    }
  }

  async list(env: string): Promise<BackupEntry[]> {
    const names = (await this.op(`listing backups of ${env} in ${this.where}`, () => this.fs.readdir(this.envDir(env)))) ?? [];
    const out: BackupEntry[] = [];
    for (const name of names) {
      if (name.endsWith(PARTIAL) || parseBackupId(name)?.env !== env) continue;
      const entry = await this.read(env, name);
      if (entry) out.push(entry);
    }
    return out.sort((a, b) => Date.parse(b.manifest.at) - Date.parse(a.manifest.at) || (a.manifest.id < b.manifest.id ? 1 : -1));
  }

  private async read(env: string, id: string): Promise<BackupEntry | null> {
    const dir = this.folder(env, id);
    const text = await this.op(`reading backup ${id}`, () => this.fs.readText(this.fs.join(dir, MANIFEST_FILE)));
    if (text === null) return null;
    const manifest = parseManifest(text, `${this.fs.show(dir)}/${MANIFEST_FILE}`);
    if (!manifest || manifest.id !== id || manifest.env !== env) return null;
    let drill: DrillRecord | null = null;
    try {
      const t = await this.fs.readText(this.fs.join(dir, DRILL_FILE));
      drill = t === null ? null : (JSON.parse(t) as DrillRecord);
    } catch {
      drill = null;
    }
    const bytes = manifest.files.dump.bytes + (manifest.files.filestore?.bytes ?? 0);
    return { manifest, drill, dir: this.fs.show(dir), bytes };
  }

  async get(id: string): Promise<BackupEntry> {
    const parsed = parseBackupId(id);
    const entry = parsed ? await this.read(parsed.env, id) : null;
    if (!entry) throw new PulserError('PULSER_E_BACKUP_NOT_FOUND', `no complete backup ${JSON.stringify(id)} in ${this.where}`);
    return entry;
  }

  async begin(env: string, id: string): Promise<PartialBackup> {
    const finalDir = this.folder(env, id);
    const dir = finalDir + PARTIAL;
    await this.op(`preparing backup ${id}`, async () => {
      await this.fs.mkdirs(this.envDir(env));
      if (await this.fs.exists(finalDir)) throw new PulserError('PULSER_E_BACKUP_FAILED', `backup ${id} already exists in ${this.where}`);
      await this.fs.removeTree(dir);
      await this.fs.mkdirs(dir);
    });
    return new FolderPartialBackup(this, this.fs, dir, finalDir);
  }

  async removePartials(env: string): Promise<string[]> {
    const names = (await this.fs.readdir(this.envDir(env)).catch(() => null)) ?? [];
    const partials = names.filter((n) => n.endsWith(PARTIAL) && parseBackupId(n.slice(0, -PARTIAL.length))?.env === env);
    for (const n of partials) await this.op(`removing ${n}`, () => this.fs.removeTree(this.fs.join(this.envDir(env), n)));
    return partials;
  }

  async remove(id: string): Promise<void> {
    const { manifest } = await this.get(id);
    const dir = this.folder(manifest.env, id);
    // Renamed first so that a crash mid-delete leaves a `.partial` leftover, never a half backup.
    await this.op(`deleting backup ${id}`, async () => {
      await this.fs.rename(dir, dir + PARTIAL);
      await this.fs.removeTree(dir + PARTIAL);
      await this.fs.syncDir(this.envDir(manifest.env));
    });
  }

  async recordDrill(entry: BackupEntry, drill: DrillRecord): Promise<void> {
    const file = this.fs.join(this.folder(entry.manifest.env, entry.manifest.id), DRILL_FILE);
    await this.op(`recording the drill of ${entry.manifest.id}`, () => this.fs.writeText(file, JSON.stringify(drill, null, 2) + '\n'));
  }

  async verify(entry: BackupEntry): Promise<void> {
    const files = await this.open(entry);
    try {
      await files.verify();
    } finally {
      await files.release();
    }
  }

  open(entry: BackupEntry, progress?: (message: string) => void): Promise<BackupFiles> {
    return this.fs.open(entry, this.folder(entry.manifest.env, entry.manifest.id), progress);
  }
}

/** This machine's file system. */
export const localFs: BackupFs = {
  show: (p) => p,
  join: (...parts) => path.join(...parts),
  readdir: (dir) => readdir(dir).catch((err: unknown) => (isErrno(err, 'ENOENT') ? null : Promise.reject(err))),
  readText: (file) => readFile(file, 'utf8').catch((err: unknown) => (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR') ? null : Promise.reject(err))),
  writeText: (file, text) => writeFileAtomic(file, text),
  mkdirs: async (dir) => void (await mkdir(dir, { recursive: true })),
  exists: (p) =>
    stat(p).then(
      () => true,
      () => false,
    ),
  rename: (from, to) => rename(from, to),
  removeTree: (p) => rm(p, { recursive: true, force: true }),
  writeFile: (file, source, onBytes) => writeHashed(source, file, onBytes),
  syncDir: (dir) => fsyncDir(dir),
  failure: async (err, what) => storageError(err, what),
  open: async (entry, dir) => {
    const { dump, filestore } = entry.manifest.files;
    return {
      dump: path.join(dir, dump.name),
      filestore: filestore ? path.join(dir, filestore.name) : null,
      verify: () => verifyFiles(entry, dir),
      release: async () => undefined,
    };
  },
};

/** A folder on the machine pulser runs on. */
export class LocalBackupStore extends FolderBackupStore {
  constructor(root: string) {
    super(root, localFs);
  }
}

/** Checks the files of a backup, as found in the local folder `dir`, against its manifest. */
export async function verifyFiles(entry: BackupEntry, dir: string): Promise<void> {
  const files = [entry.manifest.files.dump, ...(entry.manifest.files.filestore ? [entry.manifest.files.filestore] : [])];
  for (const f of files) {
    let got: { bytes: number; sha256: string };
    try {
      got = await hashFile(path.join(dir, f.name));
    } catch (err) {
      throw new PulserError('PULSER_E_BACKUP_CORRUPT', `backup ${entry.manifest.id}: ${f.name} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`, { cause: err });
    }
    if (got.bytes !== f.bytes || got.sha256 !== f.sha256) {
      throw new PulserError('PULSER_E_BACKUP_CORRUPT', `backup ${entry.manifest.id}: ${f.name} does not match its manifest (${got.bytes} bytes, sha256 ${got.sha256.slice(0, 12)}…; expected ${f.bytes} bytes, ${f.sha256.slice(0, 12)}…)`, {
        details: { file: f.name, expected: f.sha256, actual: got.sha256 },
      });
    }
  }
}
