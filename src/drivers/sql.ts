// Read-only SQL for run templates, behind a small interface so another PostgreSQL client can take
// its place: `pg` over the host's `tcp` seam (an SSH forward for remote hosts), every statement in
// a READ ONLY transaction that is rolled back, with a statement timeout.
import pg from 'pg';
import type { Duplex } from 'node:stream';
import { PulserError } from '../errors.ts';
import type { Drivers } from './index.ts';

export interface SqlResult {
  fields: string[];
  rows: Record<string, unknown>[];
}

export interface ReadOnlySql {
  query(sql: string, params: readonly unknown[]): Promise<SqlResult>;
  close(): Promise<void>;
}

export interface SqlTarget {
  host: string;
  address: string;
  port: number;
  database: string;
  user: string;
  password?: string;
  timeoutMs: number;
}

/** pg connects its stream itself; the seam hands over one that is already connected. */
function preconnected(stream: Duplex): Duplex {
  const s = stream as Duplex & { connect: () => Duplex; setNoDelay?: unknown; setKeepAlive?: unknown };
  s.connect = () => {
    process.nextTick(() => s.emit('connect'));
    return s;
  };
  for (const m of ['setNoDelay', 'setKeepAlive', 'ref', 'unref'] as const) {
    if (typeof (s as unknown as Record<string, unknown>)[m] !== 'function') (s as unknown as Record<string, unknown>)[m] = () => s;
  }
  return s;
}

export async function openReadOnlySql(drivers: Drivers, t: SqlTarget): Promise<ReadOnlySql> {
  const stream = await drivers.tcp(t.host, t.address, t.port);
  const client = new pg.Client({
    stream: () => preconnected(stream),
    host: t.address,
    port: t.port,
    database: t.database,
    user: t.user,
    password: t.password,
    connectionTimeoutMillis: t.timeoutMs,
    statement_timeout: t.timeoutMs,
    query_timeout: t.timeoutMs + 1_000,
    application_name: 'pulser-run',
  });
  try {
    await client.connect();
  } catch (err) {
    stream.destroy();
    throw new PulserError('PULSER_E_TEMPLATE_FAILED', `cannot connect to PostgreSQL ${t.address}:${t.port}/${t.database} from host ${t.host}: ${(err as Error).message}`, { cause: err });
  }
  return {
    async query(sql, params) {
      await client.query('BEGIN READ ONLY');
      try {
        const res = await client.query({ text: sql, values: [...params] });
        return { fields: res.fields.map((f) => f.name), rows: res.rows as Record<string, unknown>[] };
      } finally {
        await client.query('ROLLBACK').catch(() => undefined);
      }
    },
    async close() {
      await client.end().catch(() => undefined);
      stream.destroy();
    },
  };
}
