// Commands as data for backups and restores: pg_dump/pg_restore argv, the SQL that describes a
// database for the manifest, and backup ids. Nothing here runs anything.
import type { PgTarget } from '../../src/drivers/postgres.ts';
import { absolutePath, databaseName } from '../../src/core/argv.ts';

export const PG_BIN = process.env.PULSER_PG_BIN ?? '/usr/lib/postgresql/15/bin';
export const FILESTORE_ROOT = '/var/lib/odoo/filestore';
/** tables whose exact row counts go into the manifest (the largest by size) */
export const COUNTED_TABLES = 25;

/** `production-20260324T020000Z`: sortable, printable, unique per environment and second. */
export function backupId(env: string, at: Date): string {
  return `${env}-${at.toISOString().replace(/\.\d{3}Z$/, 'Z').replace(/[-:]/g, '')}`;
}

const ID_RE = /^([a-z0-9][a-z0-9-]{0,39})-(\d{8}T\d{6}Z)$/;

/** The environment and instant an id names, or null when it is not a backup id. */
export function parseBackupId(id: string): { env: string; at: Date } | null {
  const m = ID_RE.exec(id);
  if (!m) return null;
  const s = m[2]!;
  const at = new Date(`${s.slice(0, 4)}-${s.slice(4, 6)}-${s.slice(6, 8)}T${s.slice(9, 11)}:${s.slice(11, 13)}:${s.slice(13, 15)}Z`);
  return Number.isNaN(at.getTime()) ? null : { env: m[1]!, at };
}

/** Where pulser reaches the environment's database from this machine. */
export interface Endpoint {
  host: string;
  port: number;
}

/** libpq settings passed through the environment, so no password ever appears in an argv. */
export function libpqEnv(target: PgTarget, appName: string): Record<string, string> {
  return {
    PGUSER: target.user,
    PGAPPNAME: appName,
    PGCONNECT_TIMEOUT: '10',
    ...(target.password ? { PGPASSWORD: target.password } : {}),
  };
}

/**
 * stdio buffer of pg_dump's stdout. On a pipe it is 4 KiB by default: ~2,400 writes for a 9 MiB
 * archive, each waking the reader that hashes the stream, and pg_dump stalls whenever the reader
 * is not scheduled in time. 64 KiB is the reader's read size and fits the stdout socket's buffer
 * a few times over, so a write seldom waits (1 MiB writes always wait until the reader drained them).
 */
export const DUMP_BUFFER_BYTES = 64 * 1024;

/**
 * pg_dump in custom format to stdout, inside the snapshot the manifest's counts were taken in;
 * run through coreutils' stdbuf for a larger stdout buffer (the archive's bytes are unchanged).
 * Every value is in the `--name=value` form, so none reads as another option; the database name
 * is checked besides, since libpq reads one holding `=` as a connection string.
 */
export function pgDumpArgv(at: Endpoint, database: string, snapshot?: string): string[] {
  return ['stdbuf', `--output=${DUMP_BUFFER_BYTES}`, `${PG_BIN}/pg_dump`, '--format=custom', '--no-password', `--host=${at.host}`, `--port=${at.port}`, ...(snapshot ? [`--snapshot=${snapshot}`] : []), `--dbname=${databaseName(database)}`];
}

/**
 * pg_restore of a dump file into an existing, empty database. Objects are owned by the restoring
 * role (the target environment's), since the source's roles need not exist there. Values are in
 * the `--name=value` form and the file is an absolute path, so nothing reads as another option.
 */
export function pgRestoreArgv(at: Endpoint, database: string, file: string, jobs = 2): string[] {
  return [`${PG_BIN}/pg_restore`, '--no-password', `--host=${at.host}`, `--port=${at.port}`, `--dbname=${databaseName(database)}`, '--no-owner', '--no-privileges', '--exit-on-error', `--jobs=${jobs}`, absolutePath(file, 'dump file')];
}

export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

export const SQL = {
  exportSnapshot: 'SELECT pg_export_snapshot() AS snapshot',
  /** the largest user tables, which the manifest counts exactly */
  largestTables: `SELECT n.nspname AS schema, c.relname AS name
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
    ORDER BY pg_total_relation_size(c.oid) DESC, c.relname LIMIT ${COUNTED_TABLES}`,
  /**
   * For the manifest's counts, which run beside pg_dump: one process per count (parallel workers
   * would take the cores pg_dump and its backend use) and no JIT compilation for a plain count.
   * Transaction-local, so it ends with the backup's snapshot transaction.
   */
  serialCounts: `SELECT set_config('max_parallel_workers_per_gather', '0', true), set_config('jit', 'off', true)`,
  countRows: (schema: string, table: string) => `SELECT count(*)::bigint AS n FROM ${quoteIdent(schema)}.${quoteIdent(table)}`,
  hasModuleTable: `SELECT to_regclass('public.ir_module_module') IS NOT NULL AS present`,
  odooVersion: `SELECT latest_version FROM ir_module_module WHERE name = 'base'`,
  installedModules: `SELECT name FROM ir_module_module WHERE state = 'installed' ORDER BY name`,
  databaseSize: 'SELECT pg_database_size(current_database())::bigint AS bytes',
  /** size of a database other than the connection's (a restore's progress) */
  sizeOf: 'SELECT pg_database_size($1)::bigint AS bytes',
  createDatabase: (name: string) => `CREATE DATABASE ${quoteIdent(name)} TEMPLATE template0`,
  dropDatabase: (name: string) => `DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`,
  databaseExists: 'SELECT 1 AS present FROM pg_database WHERE datname = $1',
  terminate: 'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
  rename: (from: string, to: string) => `ALTER DATABASE ${quoteIdent(from)} RENAME TO ${quoteIdent(to)}`,
  /** a database accepting no new connections while it is swapped */
  allowConnections: (name: string, allow: boolean) => `ALTER DATABASE ${quoteIdent(name)} WITH ALLOW_CONNECTIONS ${allow ? 'true' : 'false'}`,
} as const;
