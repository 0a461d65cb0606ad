// A local backup destination: `<path>/<env>/<id>/` holding the dump, the filestore tar, the
// manifest and the last drill record. A backup is written under `<id>.partial/`, every file
// fsynced, the manifest written last, then the folder renamed: a folder without `.partial` and
// with a manifest is complete. Files are streamed through sha256, never held in memory.
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createHash } from 'node:crypto';
import { PulserError } from '../../src/errors.ts';
import { fsyncDir, isErrno, writeFileAtomic } from '../../src/evidence/durable.ts';
import { DRILL_FILE, MANIFEST_FILE, parseManifest, type DrillRecord, type Manifest, type StoredFile } from './manifest.ts';
import { parseBackupId } from './commands.ts';

export interface BackupEntry {
  manifest: Manifest;
  drill: DrillRecord | null;
  dir: string;
  /** bytes of the backup's files */
  bytes: number;
}

const PARTIAL = '.partial';

/** Turns a file-system failure into a coded error (a full disk is its own code). */
export function storageError(err: unknown, what: string): PulserError {
  if (err instanceof PulserError) return err;
  if (isErrno(err, 'ENOSPC') || isErrno(err, 'EDQUOT')) return new PulserError('PULSER_E_BACKUP_NO_SPACE', `${what}: no space left on the backup destination`, { cause: err });
  const code = (err as NodeJS.ErrnoException).code ?? 'error';
  return new PulserError('PULSER_E_BACKUP_DESTINATION', `${what}: ${code} ${(err as Error).message}`, { cause: err });
}

/** Counts and hashes bytes as they pass. */
export class HashTap extends Transform {
  readonly hash = createHash('sha256');
  bytes = 0;
  constructor(private readonly onBytes?: (total: number) => void) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null, data?: Buffer) => void): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    this.onBytes?.(this.bytes);
    cb(null, chunk);
  }
}

/** How long a backup stream may deliver no byte before it is given up (a peer gone silent). */
export const STALL_MS = 10 * 60_000;

/**
 * Streams `source` into a new file, hashing on the way, and fsyncs it before resolving. It
 * settles on the first of: the source's end (success), an error on either side, the source
 * closing before its end, or `stallMs` without a byte; on failure both streams are destroyed.
 */
export async function writeHashed(source: Readable, file: string, onBytes?: (total: number) => void, stallMs = STALL_MS): Promise<StoredFile> {
  const hash = createHash('sha256');
  let bytes = 0;
  const out = createWriteStream(file, { flags: 'wx', highWaterMark: 1 << 20 });
  // Pumped by hand rather than with pipeline(): it settles on the first error of either side
  // without waiting for a torn-down socket or child pipe to report that it closed.
  await new Promise<void>((resolve, reject) => {
    let settled = false;
    let ended = false;
    let stall: NodeJS.Timeout | undefined;
    const arm = () => {
      clearTimeout(stall);
      stall = setTimeout(() => fail(new PulserError('PULSER_E_TIMEOUT', `no data for ${Math.round(stallMs / 1000)} s while writing ${path.basename(file)}`)), stallMs);
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
      if (!ended) fail(new PulserError('PULSER_E_BACKUP_FAILED', `the data of ${path.basename(file)} stopped before its end`));
    };
    const onOutClose = () => fail(new Error(`${path.basename(file)} was closed before it was finished`));
    source.on('data', onData);
    out.on('drain', onDrain);
    // Errors of the source are the backup's (pg_dump, the engine); those of the file the destination's.
    source.once('error', (err: Error) => fail(err instanceof PulserError ? err : new PulserError('PULSER_E_BACKUP_FAILED', `reading the data of ${path.basename(file)}: ${err.message}`, { cause: err })));
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
  // fsync applies to the file, whichever descriptor asks for it.
  const fh = await open(file, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
  return { name: path.basename(file), bytes, sha256: hash.digest('hex') };
}

/** sha256 and size of a file, streamed. */
export async function hashFile(file: string): Promise<{ bytes: number; sha256: string }> {
  const tap = new HashTap();
  await pipeline(createReadStream(file, { highWaterMark: 1 << 20 }), tap, async (src: AsyncIterable<Buffer>) => {
    for await (const _ of src) void _;
  });
  return { bytes: tap.bytes, sha256: tap.hash.digest('hex') };
}

export class PartialBackup {
  private done = false;
  constructor(
    readonly dir: string,
    private readonly finalDir: string,
  ) {}

  file(name: string): string {
    return path.join(this.dir, name);
  }

  /** Writes the manifest, fsyncs, and renames the folder into place. */
  async commit(manifest: Manifest): Promise<string> {
    await writeFileAtomic(this.file(MANIFEST_FILE), JSON.stringify(manifest, null, 2) + '\n');
    await fsyncDir(this.dir);
    await rename(this.dir, this.finalDir);
    await fsyncDir(path.dirname(this.finalDir));
    this.done = true;
    return this.finalDir;
  }

  /** Removes whatever was written; safe to call after commit (does nothing then). */
  async abort(): Promise<void> {
    if (this.done) return;
    this.done = true;
    await rm(this.dir, { recursive: true, force: true });
  }
}

export class LocalBackupStore {
  constructor(readonly root: string) {}

  envDir(env: string): string {
    return path.join(this.root, env);
  }

  /** Complete backups of an environment, newest first. Folders without a pulser manifest are ignored. */
  async list(env: string): Promise<BackupEntry[]> {
    let names: string[];
    try {
      names = await readdir(this.envDir(env));
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return [];
      throw storageError(err, `listing backups of ${env} in ${this.root}`);
    }
    const out: BackupEntry[] = [];
    for (const name of names) {
      if (name.endsWith(PARTIAL) || parseBackupId(name)?.env !== env) continue;
      const entry = await this.read(env, name);
      if (entry) out.push(entry);
    }
    return out.sort((a, b) => Date.parse(b.manifest.at) - Date.parse(a.manifest.at) || (a.manifest.id < b.manifest.id ? 1 : -1));
  }

  private async read(env: string, id: string): Promise<BackupEntry | null> {
    const dir = path.join(this.envDir(env), id);
    let text: string;
    try {
      text = await readFile(path.join(dir, MANIFEST_FILE), 'utf8');
    } catch (err) {
      if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) return null;
      throw storageError(err, `reading backup ${id}`);
    }
    const manifest = parseManifest(text, `${dir}/${MANIFEST_FILE}`);
    if (!manifest || manifest.id !== id || manifest.env !== env) return null;
    let drill: DrillRecord | null = null;
    try {
      drill = JSON.parse(await readFile(path.join(dir, DRILL_FILE), 'utf8')) as DrillRecord;
    } catch {
      drill = null;
    }
    const bytes = manifest.files.dump.bytes + (manifest.files.filestore?.bytes ?? 0);
    return { manifest, drill, dir, bytes };
  }

  /** One complete backup by id (`<env>-<timestamp>`). */
  async get(id: string): Promise<BackupEntry> {
    const parsed = parseBackupId(id);
    const entry = parsed ? await this.read(parsed.env, id) : null;
    if (!entry) throw new PulserError('PULSER_E_BACKUP_NOT_FOUND', `no complete backup ${JSON.stringify(id)} in ${this.root}`);
    return entry;
  }

  /** Starts a backup folder; leftovers of an interrupted attempt at the same id are cleared first. */
  async begin(env: string, id: string): Promise<PartialBackup> {
    const finalDir = path.join(this.envDir(env), id);
    const dir = finalDir + PARTIAL;
    try {
      await mkdir(this.envDir(env), { recursive: true });
      const exists = await stat(finalDir).then(
        () => true,
        () => false,
      );
      if (exists) throw new PulserError('PULSER_E_BACKUP_FAILED', `backup ${id} already exists in ${this.root}`);
      await rm(dir, { recursive: true, force: true });
      await mkdir(dir);
    } catch (err) {
      throw storageError(err, `preparing backup ${id}`);
    }
    return new PartialBackup(dir, finalDir);
  }

  /** Folders left by interrupted backups (`<id>.partial`); removed by the next backup. */
  async removePartials(env: string): Promise<string[]> {
    const names = await readdir(this.envDir(env)).catch(() => [] as string[]);
    const partials = names.filter((n) => n.endsWith(PARTIAL) && parseBackupId(n.slice(0, -PARTIAL.length))?.env === env);
    for (const n of partials) await rm(path.join(this.envDir(env), n), { recursive: true, force: true });
    return partials;
  }

  /** Deletes a backup; only a folder holding a pulser manifest for that id is ever removed. */
  async remove(id: string): Promise<void> {
    const entry = await this.get(id);
    // Renamed first so that a crash mid-delete leaves a `.partial` leftover, never a half backup.
    const doomed = entry.dir + PARTIAL;
    await rename(entry.dir, doomed);
    await rm(doomed, { recursive: true, force: true });
    await fsyncDir(path.dirname(entry.dir));
  }

  async recordDrill(entry: BackupEntry, drill: DrillRecord): Promise<void> {
    await writeFileAtomic(path.join(entry.dir, DRILL_FILE), JSON.stringify(drill, null, 2) + '\n');
  }

  /** Checks every file of a backup against its manifest (size and sha256). */
  async verify(entry: BackupEntry): Promise<void> {
    const files = [entry.manifest.files.dump, ...(entry.manifest.files.filestore ? [entry.manifest.files.filestore] : [])];
    for (const f of files) {
      let got: { bytes: number; sha256: string };
      try {
        got = await hashFile(path.join(entry.dir, f.name));
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
}
