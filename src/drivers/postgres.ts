// PostgreSQL access for reconcilers and commands: one small pool per database target, a connect
// timeout and a statement timeout on every query, and pg's errors turned into coded ones.
// Remote databases are reached through a stream the host transport opens (an SSH port forward);
// local ones over plain TCP.
import net from 'node:net';
import { Duplex } from 'node:stream';
import pg from 'pg';
import { PulserError } from '../errors.ts';

/** Opens a byte stream to `address:port` as seen from a host (net.connect locally, a forward over SSH). */
export type TcpConnect = (address: string, port: number) => Promise<Duplex>;

export interface PgTarget {
  /** where pulser connects: as seen from the host the database belongs to */
  address: string;
  port: number;
  user: string;
  password?: string;
  database: string;
}

export interface PgOptions {
  /** how to reach `address:port` (default: plain TCP from this machine) */
  connect?: TcpConnect;
  connectTimeoutMs?: number;
  /** applied to every statement unless the query names its own */
  statementTimeoutMs?: number;
  /** pool size per target */
  max?: number;
  idleTimeoutMs?: number;
}

export interface QueryOptions {
  timeoutMs?: number;
}

/** What reconcilers get: queries and transactions, never the pool itself. */
export interface Db {
  readonly target: Readonly<Omit<PgTarget, 'password'>>;
  query<R extends Record<string, unknown> = Record<string, unknown>>(sql: string, params?: readonly unknown[], opts?: QueryOptions): Promise<R[]>;
  /** Runs `fn` in one transaction on one connection; rolls back when it throws. */
  transaction<T>(fn: (q: Db['query']) => Promise<T>, opts?: QueryOptions): Promise<T>;
}

const CLIENT_SLACK_MS = 2_000;
const DEFAULTS = { connectTimeoutMs: 10_000, statementTimeoutMs: 30_000, max: 4, idleTimeoutMs: 10_000 };

/**
 * A Duplex that pg can `connect(port, host)`: it asks the transport for the real stream and relays
 * bytes both ways, emitting 'connect' once the stream is open.
 */
class ForwardedSocket extends Duplex {
  private inner: Duplex | null = null;
  private readonly pending: Array<{ chunk: Buffer; cb: (err?: Error | null) => void }> = [];

  constructor(private readonly open: TcpConnect) {
    super();
  }

  connect(port: number, host: string): this {
    this.open(host, port).then(
      (inner) => {
        if (this.destroyed) {
          inner.destroy();
          return;
        }
        this.inner = inner;
        inner.on('data', (chunk: Buffer) => {
          if (!this.push(chunk)) inner.pause();
        });
        inner.on('end', () => this.push(null));
        inner.on('error', (err) => this.destroy(err));
        inner.on('close', () => this.destroy());
        for (const p of this.pending.splice(0)) inner.write(p.chunk, p.cb);
        this.emit('connect');
      },
      (err: Error) => this.destroy(err),
    );
    return this;
  }

  setNoDelay(): this {
    return this;
  }

  setKeepAlive(): this {
    return this;
  }

  // pg-pool refs idle clients' sockets so they do not keep the process alive.
  ref(): this {
    (this.inner as Partial<net.Socket> | null)?.ref?.();
    return this;
  }

  unref(): this {
    (this.inner as Partial<net.Socket> | null)?.unref?.();
    return this;
  }

  override _read(): void {
    this.inner?.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.inner) this.inner.write(chunk, cb);
    else this.pending.push({ chunk, cb });
  }

  override _final(cb: (err?: Error | null) => void): void {
    if (this.inner) this.inner.end(cb);
    else cb();
  }

  override _destroy(err: Error | null, cb: (err: Error | null) => void): void {
    this.inner?.destroy();
    cb(err);
  }
}

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EPIPE']);

/** pg's errors, by SQLSTATE or socket code, as coded pulser errors. */
export function pgError(err: unknown, target: Readonly<Omit<PgTarget, 'password'>>, sql?: string): PulserError {
  if (err instanceof PulserError) return err;
  const e = err as { code?: string; message?: string };
  const where = `${target.user}@${target.address}:${target.port}/${target.database}`;
  const message = e.message ?? String(err);
  const details = { sqlstate: e.code, ...(sql ? { statement: sql.replace(/\s+/g, ' ').slice(0, 200) } : {}) };
  if (e.code === '28P01' || e.code === '28000') return new PulserError('PULSER_E_DB_AUTH', `database ${where}: ${message}`, { details, cause: err });
  if (e.code === '3D000') return new PulserError('PULSER_E_DB_MISSING', `database ${where} does not exist`, { details, cause: err });
  if (e.code === '57014' || /Query read timeout/.test(message)) return new PulserError('PULSER_E_TIMEOUT', `database ${where}: statement timed out`, { details, cause: err });
  if (e.code === '57P03' || e.code === '53300' || (e.code !== undefined && NETWORK_CODES.has(e.code)) || /timeout|terminated|Connection terminated/i.test(message)) {
    return new PulserError('PULSER_E_DB_UNREACHABLE', `database ${where}: ${message}`, { details, cause: err });
  }
  return new PulserError('PULSER_E_DB_QUERY', `database ${where}: ${message}`, { details, cause: err });
}

function describe(t: PgTarget): Readonly<Omit<PgTarget, 'password'>> {
  return Object.freeze({ address: t.address, port: t.port, user: t.user, database: t.database });
}

class PooledDb implements Db {
  readonly target: Readonly<Omit<PgTarget, 'password'>>;
  readonly pool: pg.Pool;
  private readonly statementTimeoutMs: number;

  constructor(target: PgTarget, opts: PgOptions) {
    this.target = describe(target);
    this.statementTimeoutMs = opts.statementTimeoutMs ?? DEFAULTS.statementTimeoutMs;
    const connect = opts.connect;
    this.pool = new pg.Pool({
      host: target.address,
      port: target.port,
      user: target.user,
      password: target.password,
      database: target.database,
      max: opts.max ?? DEFAULTS.max,
      idleTimeoutMillis: opts.idleTimeoutMs ?? DEFAULTS.idleTimeoutMs,
      connectionTimeoutMillis: opts.connectTimeoutMs ?? DEFAULTS.connectTimeoutMs,
      application_name: 'pulser',
      // The server cancels a statement cleanly; the client-side timeout only catches a server gone silent.
      statement_timeout: this.statementTimeoutMs,
      ...(connect ? { stream: () => new ForwardedSocket(connect) } : {}),
    });
    // An idle client losing its server must not crash the process; the next query reconnects.
    this.pool.on('error', () => undefined);
  }

  async query<R extends Record<string, unknown>>(sql: string, params: readonly unknown[] = [], opts: QueryOptions = {}): Promise<R[]> {
    if (opts.timeoutMs === undefined) {
      try {
        const res = await this.pool.query<R>({ text: sql, values: [...params], query_timeout: this.statementTimeoutMs + CLIENT_SLACK_MS } as pg.QueryConfig);
        return res.rows;
      } catch (err) {
        throw pgError(err, this.target, sql);
      }
    }
    // A timeout of its own: set on one connection for this statement, then put back.
    const timeoutMs = opts.timeoutMs;
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw pgError(err, this.target);
    }
    let broken: Error | undefined;
    try {
      await client.query(`SET statement_timeout = ${Math.max(1, Math.floor(timeoutMs))}`);
      const res = await client.query<R>({ text: sql, values: [...params], query_timeout: timeoutMs + CLIENT_SLACK_MS } as pg.QueryConfig);
      return res.rows;
    } catch (err) {
      throw pgError(err, this.target, sql);
    } finally {
      await client.query(`SET statement_timeout = ${this.statementTimeoutMs}`).catch((e: Error) => {
        broken = e;
      });
      client.release(broken);
    }
  }

  async transaction<T>(fn: (q: Db['query']) => Promise<T>, opts: QueryOptions = {}): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw pgError(err, this.target);
    }
    const timeout = opts.timeoutMs ?? this.statementTimeoutMs;
    if (opts.timeoutMs !== undefined) await client.query({ text: `SET statement_timeout = ${Math.max(1, Math.floor(timeout))}`, query_timeout: CLIENT_SLACK_MS * 5 } as pg.QueryConfig).catch(() => undefined);
    const q: Db['query'] = async <R extends Record<string, unknown>>(sql: string, params: readonly unknown[] = [], o: QueryOptions = {}) => {
      try {
        const res = await client.query<R>({ text: sql, values: [...params], query_timeout: (o.timeoutMs ?? timeout) + CLIENT_SLACK_MS } as pg.QueryConfig);
        return res.rows;
      } catch (err) {
        throw pgError(err, this.target, sql);
      }
    };
    let broken: Error | undefined;
    // A checked-out client has no error listener of the pool's: a connection lost while `fn` is
    // not querying (waiting on a child process) would otherwise be an uncaught exception.
    const onLost = (e: Error) => {
      broken ??= e;
    };
    client.on('error', onLost);
    const housekeeping = (sql: string) =>
      client.query({ text: sql, query_timeout: CLIENT_SLACK_MS * 5 } as pg.QueryConfig).catch((e: Error) => {
        broken ??= e;
      });
    try {
      await q('BEGIN');
      const out = await fn(q);
      await q('COMMIT');
      return out;
    } catch (err) {
      if (!broken) await housekeeping('ROLLBACK');
      throw err;
    } finally {
      if (opts.timeoutMs !== undefined && !broken) await housekeeping(`SET statement_timeout = ${this.statementTimeoutMs}`);
      client.off('error', onLost);
      client.release(broken);
    }
  }
}

/** One pool per target, shared by everything in the process; `close()` ends them all. */
export class PgPools {
  private readonly pools = new Map<string, PooledDb>();
  private readonly transports = new WeakMap<TcpConnect, number>();
  private nextTransport = 1;

  constructor(private readonly opts: PgOptions = {}) {}

  /** `connect` overrides the default transport for this target (an SSH forward of its host). */
  get(target: PgTarget, connect?: TcpConnect): Db {
    const key = `${target.user}@${target.address}:${target.port}/${target.database}#${connect ? this.transportId(connect) : 'tcp'}`;
    let db = this.pools.get(key);
    if (!db) {
      db = new PooledDb(target, { ...this.opts, ...(connect ? { connect } : {}) });
      this.pools.set(key, db);
    }
    return db;
  }

  private transportId(connect: TcpConnect): number {
    let id = this.transports.get(connect);
    if (id === undefined) {
      id = this.nextTransport++;
      this.transports.set(connect, id);
    }
    return id;
  }

  async close(): Promise<void> {
    const all = [...this.pools.values()];
    this.pools.clear();
    await Promise.allSettled(all.map((d) => d.pool.end()));
  }
}

/** Plain TCP from this machine, with the connect timeout applied by pg. */
export const tcpConnect: TcpConnect = (address, port) =>
  new Promise((resolve, reject) => {
    const s = net.connect({ host: address, port });
    s.once('connect', () => {
      s.off('error', reject);
      resolve(s);
    });
    s.once('error', reject);
  });
