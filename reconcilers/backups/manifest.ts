// The manifest: what a backup holds and how to check it. A folder is a pulser backup only when it
// holds a manifest of this format; nothing else in a destination is ever touched.
import { PulserError, type ErrorCode } from '../../src/errors.ts';

export const MANIFEST_FORMAT = 'pulser-backup/1';
export const MANIFEST_FILE = 'manifest.json';
export const DUMP_FILE = 'db.dump';
export const FILESTORE_FILE = 'filestore.tar';
export const DRILL_FILE = 'drill.json';

export interface StoredFile {
  name: string;
  bytes: number;
  sha256: string;
}

export interface Manifest {
  format: typeof MANIFEST_FORMAT;
  id: string;
  env: string;
  /** `scheduled`, `pre-change` (named by the change it protects) or `manual` */
  kind: 'scheduled' | 'pre-change' | 'manual';
  reason: string;
  database: string;
  /** commit of the spec repository when the backup was taken */
  commit: string;
  /** when the dump's snapshot was taken (ISO 8601) */
  at: string;
  odooVersion: string | null;
  modules: string[];
  /** exact row counts of the largest tables, in the dump's snapshot (`schema.table`) */
  rowCounts: Record<string, number>;
  databaseBytes: number;
  files: { dump: StoredFile; filestore: StoredFile | null };
  durationsMs: { dump: number; filestore: number; total: number };
  /** `pg_dump (PostgreSQL) 15.x` */
  pgDump: string;
}

export interface DrillRecord {
  backupId: string;
  at: string;
  ok: boolean;
  durationMs: number;
  error?: { code: ErrorCode; message: string };
  mismatches?: { table: string; manifest: number; restored: number | null }[];
}

/** Parses a manifest; null when the text is not a pulser manifest at all. */
export function parseManifest(text: string, where: string): Manifest | null {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    return null;
  }
  const m = data as Partial<Manifest> | null;
  if (!m || typeof m !== 'object' || m.format !== MANIFEST_FORMAT) return null;
  if (typeof m.id !== 'string' || typeof m.env !== 'string' || typeof m.at !== 'string' || !m.files?.dump?.sha256) {
    throw new PulserError('PULSER_E_BACKUP_CORRUPT', `${where}: the manifest is incomplete`);
  }
  return m as Manifest;
}
