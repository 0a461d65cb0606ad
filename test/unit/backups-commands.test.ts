// The backup and restore commands as data, golden: pg_dump's argv (through stdbuf, in the exported
// snapshot), pg_restore's argv, and the SQL the manifest's counts run with.
import t from 'tap';
import { DUMP_BUFFER_BYTES, PG_BIN, pgDumpArgv, pgRestoreArgv, SQL } from '../../reconcilers/backups/commands.ts';

const at = { host: '127.0.0.1', port: 5433 };

t.test('pg_dump: custom format to stdout with a 64 KiB stdio buffer, in the given snapshot', async (t) => {
  t.equal(DUMP_BUFFER_BYTES, 65536);
  t.same(pgDumpArgv(at, 'prod', '00000003-0000001B-1'), [
    'stdbuf',
    '--output=65536',
    `${PG_BIN}/pg_dump`,
    '--format=custom',
    '--no-password',
    '--host=127.0.0.1',
    '--port=5433',
    '--snapshot=00000003-0000001B-1',
    '--dbname=prod',
  ]);
  t.same(pgDumpArgv(at, 'prod'), ['stdbuf', '--output=65536', `${PG_BIN}/pg_dump`, '--format=custom', '--no-password', '--host=127.0.0.1', '--port=5433', '--dbname=prod'], 'no snapshot: none asked for');
  t.notOk(pgDumpArgv(at, 'prod').some((a) => /^--compress|^-Z/.test(a)), "pg_dump's default compression");
});

t.test('pg_restore: into an existing database, owned by the restoring role, two jobs by default', async (t) => {
  t.same(pgRestoreArgv(at, 'pulser_drill_x', '/b/db.dump'), [
    `${PG_BIN}/pg_restore`,
    '--no-password',
    '--host=127.0.0.1',
    '--port=5433',
    '--dbname=pulser_drill_x',
    '--no-owner',
    '--no-privileges',
    '--exit-on-error',
    '--jobs=2',
    '/b/db.dump',
  ]);
  t.equal(pgRestoreArgv(at, 'd', '/f', 4).at(-2), '--jobs=4');
});

t.test("the manifest's counts: exact count(*), one process, no JIT, for this transaction only", async (t) => {
  t.equal(SQL.serialCounts, `SELECT set_config('max_parallel_workers_per_gather', '0', true), set_config('jit', 'off', true)`);
  t.equal(SQL.countRows('public', 'res_partner'), 'SELECT count(*)::bigint AS n FROM "public"."res_partner"');
  t.equal(SQL.countRows('odd"schema', 'a"b'), 'SELECT count(*)::bigint AS n FROM "odd""schema"."a""b"', 'identifiers quoted');
});
