// File-system steps that must survive a power cut: evidence is only worth something if what it
// claims was written is really on disk when pulser says so.
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { dirname } from 'node:path';

export function randomSuffix(bytes = 4): string {
  return randomBytes(bytes).toString('hex');
}

/** fsync of a folder makes a rename or a new entry in it durable. */
export async function fsyncDir(dir: string): Promise<void> {
  let handle: FileHandle;
  try {
    handle = await open(dir, 'r');
  } catch (err) {
    // Some file systems refuse to open a folder for reading; the data files are synced anyway.
    if (isErrno(err, 'EISDIR') || isErrno(err, 'EPERM') || isErrno(err, 'EACCES')) return;
    throw err;
  }
  try {
    await handle.sync();
  } catch (err) {
    if (!isErrno(err, 'EINVAL') && !isErrno(err, 'EBADF')) throw err;
  } finally {
    await handle.close();
  }
}

/** Creates a new file (never overwrites); with `sync`, its content is on disk before returning. */
export async function writeNewFile(path: string, data: string | Uint8Array, opts: { sync: boolean } = { sync: true }): Promise<void> {
  const handle = await open(path, 'wx', 0o640);
  try {
    await handle.writeFile(data);
    if (opts.sync) await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Replaces `path` so a reader sees either the old or the new content, never a mix. */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const temp = `${path}.tmp-${randomSuffix()}`;
  try {
    await writeNewFile(temp, data);
    await rename(temp, path);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
  await fsyncDir(dirname(path));
}

/** Appends one line and syncs it, so a crash right after leaves the line on disk. */
export async function appendLineSynced(path: string, line: string): Promise<void> {
  const handle = await open(path, 'a', 0o640);
  let created = false;
  try {
    created = (await handle.stat()).size === 0;
    await handle.appendFile(line.endsWith('\n') ? line : line + '\n', 'utf8');
    await handle.sync();
  } finally {
    await handle.close();
  }
  if (created) await fsyncDir(dirname(path));
}

export function isErrno(err: unknown, code: string): boolean {
  return err instanceof Error && (err as NodeJS.ErrnoException).code === code;
}
