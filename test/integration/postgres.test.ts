// The PostgreSQL driver against the real test cluster: queries, transactions, timeouts, coded
// errors, and connections through a transport stream (the way SSH forwards are used).
import t from 'tap';
import net from 'node:net';
import { PgPools, tcpConnect, type PgTarget, type TcpConnect } from '../../src/drivers/postgres.ts';
import { suffix, codeOf } from '../helpers/world.ts';

const base: PgTarget = {
  address: '127.0.0.1',
  port: Number(process.env.PGPORT ?? 55432),
  user: process.env.PGUSER ?? 'postgres',
  database: 'postgres',
};

const pools = new PgPools({ statementTimeoutMs: 5_000, connectTimeoutMs: 3_000 });
t.teardown(() => pools.close());

const dbName = `pulser_pg_${suffix()}`.toLowerCase();
t.before(async () => {
  await pools.get(base).query(`CREATE DATABASE ${dbName}`);
});
t.teardown(async () => {
  await pools.close();
  const admin = new PgPools();
  await admin.get(base).query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
  await admin.close();
});

t.test('queries with parameters and a committed transaction', async (t) => {
  const db = pools.get({ ...base, database: dbName });
  await db.query('CREATE TABLE kv (k text primary key, v text)');
  await db.transaction(async (q) => {
    await q('INSERT INTO kv VALUES ($1, $2)', ['a', '1']);
    await q('INSERT INTO kv VALUES ($1, $2)', ['b', '2']);
  });
  const rows = await db.query<{ k: string; v: string }>('SELECT k, v FROM kv ORDER BY k');
  t.same(rows, [{ k: 'a', v: '1' }, { k: 'b', v: '2' }]);
});

t.test('a transaction that throws is rolled back and its error kept', async (t) => {
  const db = pools.get({ ...base, database: dbName });
  await db.query('CREATE TABLE tx (n int)');
  const code = await codeOf(
    db.transaction(async (q) => {
      await q('INSERT INTO tx VALUES (1)');
      await q('INSERT INTO missing_table VALUES (1)');
    }),
  );
  t.equal(code, 'PULSER_E_DB_QUERY');
  t.same(await db.query('SELECT count(*)::int AS n FROM tx'), [{ n: 0 }]);
});

t.test('a statement over its timeout is cancelled with PULSER_E_TIMEOUT', async (t) => {
  const db = pools.get({ ...base, database: dbName });
  const started = Date.now();
  t.equal(await codeOf(db.query('SELECT pg_sleep(5)', [], { timeoutMs: 200 })), 'PULSER_E_TIMEOUT');
  t.ok(Date.now() - started < 3_000, 'did not wait for the statement');
  t.same(await db.query('SELECT 1 AS one'), [{ one: 1 }], 'the pool still works');
});

t.test('a missing database and an unreachable server get their own codes', async (t) => {
  t.equal(await codeOf(pools.get({ ...base, database: 'no_such_db_pulser' }).query('SELECT 1')), 'PULSER_E_DB_MISSING');
  const closed = await new Promise<number>((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
  t.equal(await codeOf(pools.get({ ...base, port: closed }).query('SELECT 1')), 'PULSER_E_DB_UNREACHABLE');
});

t.test('connections go through the given transport stream', async (t) => {
  const opened: string[] = [];
  const via: TcpConnect = async (address, port) => {
    opened.push(`${address}:${port}`);
    return tcpConnect(address, port);
  };
  const db = pools.get({ ...base, database: dbName }, via);
  const rows = await db.query<{ n: number }>('SELECT generate_series(1, 3000)::int AS n');
  t.equal(rows.length, 3000, 'a large result crosses the relay intact');
  t.equal(rows[2999]?.n, 3000);
  t.same(opened, [`127.0.0.1:${base.port}`], 'one stream opened for the pooled connection');
  const failing: TcpConnect = async () => {
    throw Object.assign(new Error('forward refused'), { code: 'ECONNREFUSED' });
  };
  t.equal(await codeOf(pools.get({ ...base, database: dbName }, failing).query('SELECT 1')), 'PULSER_E_DB_UNREACHABLE');
});
