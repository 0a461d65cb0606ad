// Key/value files under ops/kv: one value per file, written by people and by Odoo dispatches,
// read by `${kv:KEY}` references. Keys become file names, so they are validated like untrusted input.
import { randomBytes } from 'node:crypto';
import { lstat, mkdir, open, readFile, realpath, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { PulserError } from '../errors.ts';

export const KV_DIR = 'ops/kv';
export const KV_FILE_SUFFIX = '.txt';
export const KV_KEY_MIN_LENGTH = 1;
export const KV_KEY_MAX_LENGTH = 128;
/** Measured in UTF-8 bytes of the trimmed value. */
export const KV_VALUE_MAX_BYTES = 4096;
/** Files larger than this are refused before being read: no legitimate value comes close. */
const KV_FILE_MAX_BYTES = 64 * 1024;

const KEY_CHAR = /^[A-Za-z0-9._-]$/;

// Control, line-breaking and bidi/zero-width characters could garble or disguise a message.
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]/gu;

/** Text from outside (keys, spec strings) made safe to embed in a one-line message. */
export function printable(text: string): string {
  return text.replace(UNPRINTABLE, (ch) => '\\u' + (ch.codePointAt(0) ?? 0).toString(16).padStart(4, '0'));
}

function describeChar(ch: string): string {
  const cp = ch.codePointAt(0) ?? 0;
  const hex = 'U+' + cp.toString(16).toUpperCase().padStart(4, '0');
  if (cp === 0) return `a NUL character (${hex})`;
  if (cp < 0x20 || cp === 0x7f || (cp >= 0x80 && cp < 0xa0)) return `a control character (${hex})`;
  if (ch === ' ') return 'a space';
  if (ch === '/' || ch === '\\') return `"${ch}" (keys are file names, not paths)`;
  if (cp > 0x7e) return `the non-ASCII character "${printable(ch)}" (${hex})`;
  return `"${ch}"`;
}

/** Why `key` cannot be a kv key (`contains "/" …`), or null when it is fine. */
export function kvKeyProblem(key: string): string | null {
  if (typeof key !== 'string' || key.length < KV_KEY_MIN_LENGTH) return 'is empty';
  if (key.length > KV_KEY_MAX_LENGTH) return `is ${key.length} characters long (at most ${KV_KEY_MAX_LENGTH})`;
  for (const ch of key) {
    if (!KEY_CHAR.test(ch)) return `contains ${describeChar(ch)}; only A-Z a-z 0-9 . _ - are allowed`;
  }
  if (key.includes('..')) return 'contains ".."';
  if (key.startsWith('.')) return 'must not start with "."';
  if (key.startsWith('-')) return 'must not start with "-"';
  return null;
}

/** Returns why `key` cannot be a kv key, or null when it is fine. */
export function validateKvKey(key: string): PulserError | null {
  const why = kvKeyProblem(key);
  return why === null ? null : new PulserError('PULSER_E_KV_KEY_INVALID', `kv key "${printable(key)}" ${why}`, { details: { key, problem: why } });
}

// Line and paragraph separators count as line breaks: editors and Odoo fields render them so.
const VALUE_FORBIDDEN = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/u;

/** Why a value cannot be stored (checked trimmed), or null. Never echoes the value: it may be anything. */
export function kvValueProblem(value: string): string | null {
  if (typeof value !== 'string') return 'is not a string';
  const v = value.trim();
  const bytes = Buffer.byteLength(v, 'utf8');
  if (bytes > KV_VALUE_MAX_BYTES) return `is ${bytes} bytes long (at most ${KV_VALUE_MAX_BYTES})`;
  if (v.includes('\0')) return 'contains a NUL character';
  if (/[\r\n\u2028\u2029]/u.test(v)) return 'spans several lines (a value is a single line)';
  const m = VALUE_FORBIDDEN.exec(v);
  if (m) return `contains ${describeChar(m[0])}`;
  return null;
}

export function validateKvValue(value: string): PulserError | null {
  const why = kvValueProblem(value);
  return why === null ? null : new PulserError('PULSER_E_KV_VALUE_INVALID', `kv value ${why}`, { details: { problem: why } });
}

function kvDir(root: string): string {
  return path.join(root, KV_DIR);
}

/** Path of the file holding `key`; the key must have been validated. */
export function kvFile(root: string, key: string): string {
  return path.join(kvDir(root), key + KV_FILE_SUFFIX);
}

function isInside(parent: string, child: string): boolean {
  const rel = path.relative(parent, child);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
}

/**
 * Reads `ops/kv/<key>.txt`, trimmed. Throws a PulserError (KV_KEY_INVALID, KV_MISSING,
 * KV_VALUE_INVALID) whose `details.problem` says what is wrong without naming the key.
 */
export async function readKv(root: string, key: string): Promise<string> {
  const keyErr = validateKvKey(key);
  if (keyErr) throw keyErr;
  const rel = `${KV_DIR}/${key}${KV_FILE_SUFFIX}`;
  const file = kvFile(root, key);
  const fail = (code: 'PULSER_E_KV_MISSING' | 'PULSER_E_KV_VALUE_INVALID', problem: string, cause?: unknown) =>
    new PulserError(code, `kv key "${printable(key)}": ${problem}`, { details: { key, problem }, cause });
  const missing = () => fail('PULSER_E_KV_MISSING', `${rel} does not exist`);
  let st;
  try {
    st = await lstat(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw missing();
    throw fail('PULSER_E_KV_VALUE_INVALID', `${rel} cannot be read (${code ?? 'error'})`, err);
  }
  if (st.isSymbolicLink()) {
    // A link could expose any file of the machine through a dispatch-controlled key.
    let target: string;
    let dir: string;
    try {
      [target, dir] = await Promise.all([realpath(file), realpath(kvDir(root))]);
    } catch {
      throw missing();
    }
    if (!isInside(dir, target)) throw fail('PULSER_E_KV_VALUE_INVALID', `${rel} is a symbolic link pointing outside ${KV_DIR}`);
    st = await lstat(target);
  }
  if (!st.isFile()) throw fail('PULSER_E_KV_VALUE_INVALID', `${rel} is not a regular file`);
  if (st.size > KV_FILE_MAX_BYTES) throw fail('PULSER_E_KV_VALUE_INVALID', `${rel}: value is ${st.size} bytes long (at most ${KV_VALUE_MAX_BYTES})`);
  const buf = await readFile(file);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(buf);
  } catch {
    throw fail('PULSER_E_KV_VALUE_INVALID', `${rel} is not valid UTF-8`);
  }
  const why = kvValueProblem(text);
  if (why) throw fail('PULSER_E_KV_VALUE_INVALID', `${rel}: value ${why}`);
  return text.trim();
}

/** Writes `ops/kv/<key>.txt` atomically (temp file in the same folder, fsync, rename). */
export async function writeKv(root: string, key: string, value: string): Promise<void> {
  const err = validateKvKey(key) ?? validateKvValue(value);
  if (err) throw err;
  const dir = kvDir(root);
  await mkdir(dir, { recursive: true });
  // Dot-prefixed so that no valid key can collide with it and watchers can skip it.
  const tmp = path.join(dir, `.${key}${KV_FILE_SUFFIX}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  const fh = await open(tmp, 'wx', 0o644);
  try {
    await fh.writeFile(value.trim() + '\n', 'utf8');
    await fh.sync();
  } catch (e) {
    await fh.close().catch(() => undefined);
    await rm(tmp, { force: true });
    throw e;
  }
  await fh.close();
  try {
    await rename(tmp, kvFile(root, key));
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
  // Persist the rename itself; not every platform lets a directory be opened for fsync.
  const dh = await open(dir, 'r').catch(() => null);
  if (dh) {
    await dh.sync().catch(() => undefined);
    await dh.close();
  }
}
