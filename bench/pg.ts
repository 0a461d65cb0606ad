// The PostgreSQL side of the backup benchmarks: the test cluster's address, a pgbench database of a
// given scale (made, sized, dropped with Debian's client programs) and the spec of an environment
// that backs it up, so P5 and S2 measure the same kind of database the same way.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { PG_BIN } from '../reconcilers/backups/commands.ts';
import { now } from './lib.ts';

export const run = promisify(execFile);
export const PG = { host: process.env.PGHOST ?? '127.0.0.1', port: process.env.PGPORT ?? '5432', user: process.env.PGUSER ?? 'postgres' };
export const pgArgs = ['--no-password', `--host=${PG.host}`, `--port=${PG.port}`, `--username=${PG.user}`];
export const LONG = { timeout: 3_600_000, maxBuffer: 1 << 26 };

export async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = now();
  await fn();
  return now() - t0;
}

export const mib = (bytes: number) => `${(bytes / 1048576).toFixed(0)} MiB`;

/** Creates `database` with `pgbench -i -s scale` (then `extraSql`); returns its size and how long pgbench took. */
export async function createPgbenchDb(database: string, scale: number, extraSql?: string): Promise<{ bytes: number; initMs: number }> {
  await run(`${PG_BIN}/createdb`, [...pgArgs, database], LONG);
  const initMs = await timed(() => run(`${PG_BIN}/pgbench`, [`--host=${PG.host}`, `--port=${PG.port}`, `--username=${PG.user}`, '-i', '-q', '-s', String(scale), database], LONG));
  if (extraSql) await run(`${PG_BIN}/psql`, [...pgArgs, '-q', '-c', extraSql, database], LONG);
  const { stdout } = await run(`${PG_BIN}/psql`, [...pgArgs, '-At', '-c', `SELECT pg_database_size('${database}')`, 'postgres'], LONG);
  return { bytes: Number(stdout.trim()), initMs };
}

export async function dropPgbenchDb(database: string): Promise<void> {
  await run(`${PG_BIN}/dropdb`, [...pgArgs, '--if-exists', '--force', database], LONG).catch(() => undefined);
}

/** environments/<env>.yaml of an environment backing up `database` (database only) to `destination`. */
export function backupEnvYaml(env: string, database: string, port: number, destination: string): string {
  return [`name: ${env}`, 'tier: staging', 'host: local', 'sync: { auto: false }', 'odoo:', '  image: pulser-demo/odoo:17.0.1', `  port: ${port}`, 'database:', `  name: ${database}`, `  host: ${PG.host}`, `  port: ${PG.port}`, `  user: ${PG.user}`, 'backup:', '  schedule: "0 3 * * *"', '  filestore: false', `  destination: ${destination}`, ''].join('\n');
}
