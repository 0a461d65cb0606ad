// Command builders fed hostile values, golden: what would reach a program's argv is either data
// (one element, behind `--name=` or a fixed prefix) or refused with PULSER_E_ARGUMENT_UNSAFE
// before anything runs. The git environment drops every inherited variable that adds config.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type Docker from 'dockerode';
import { odooRunArgv } from '../../reconcilers/addons/design.ts';
import { PG_BIN, pgDumpArgv, pgRestoreArgv } from '../../reconcilers/backups/commands.ts';
import { resumeRestore, type RecoverContext } from '../../reconcilers/backups/recover.ts';
import { anonymizeSql } from '../../reconcilers/staging/sql.ts';
import { gitEnv } from '../../src/drivers/git.ts';
import { DockerDriver } from '../../src/drivers/docker.ts';
import { SshConnection, remoteCommand } from '../../src/drivers/ssh.ts';
import { loadTemplates } from '../../src/run/templates.ts';
import { main } from '../../src/cli/main.ts';
import { desiredEnv } from '../helpers/builders.ts';

const UNSAFE = { code: 'PULSER_E_ARGUMENT_UNSAFE' };
const at = { host: '127.0.0.1', port: 5433 };

t.test('odoo -d / -i / -u: a database or module name that reads as an option, or splits the list, is refused', async (t) => {
  t.same(odooRunArgv('install', 'odoo_staging', ['base', 'acme_sale']), ['odoo', '-c', '/etc/odoo/odoo.conf', '-d', 'odoo_staging', '-i', 'base,acme_sale', '--stop-after-init']);
  t.throws(() => odooRunArgv('install', '-h evil', ['base']), { ...UNSAFE, message: /database name "-h evil" starts with "-"/ });
  t.throws(() => odooRunArgv('install', '--addons-path=/tmp', ['base']), UNSAFE);
  t.throws(() => odooRunArgv('upgrade', 'db', ['--load=evil']), { ...UNSAFE, message: /module name "--load=evil" starts with "-"/ });
  t.throws(() => odooRunArgv('install', 'db', ['base', '-x']), UNSAFE);
  t.throws(() => odooRunArgv('install', 'db', ['base,evil']), { ...UNSAFE, message: /comma/ });
  t.throws(() => odooRunArgv('install', 'db', ['a\nb']), UNSAFE);
});

t.test('pg_dump / pg_restore: values stay behind --name=, connection strings and relative dump paths are refused', async (t) => {
  const dump = pgDumpArgv({ host: '-h evil', port: 5432 }, 'prod');
  t.equal(dump.filter((a) => a.includes('evil')).length, 1, 'a hostile host is one element');
  t.ok(dump.includes('--host=-h evil'), 'and a value of --host, never an option');
  for (const db of ['-h evil', '--host=evil', 'host=evil.example dbname=prod', 'postgresql://evil.example/prod', 'dbname=x', '../etc', 'a/b']) {
    t.throws(() => pgDumpArgv(at, db), UNSAFE, `pg_dump refuses database ${JSON.stringify(db)}`);
    t.throws(() => pgRestoreArgv(at, db, '/b/db.dump'), UNSAFE, `pg_restore refuses database ${JSON.stringify(db)}`);
  }
  t.throws(() => pgRestoreArgv(at, 'd', '--list'), { ...UNSAFE, message: /dump file "--list" is not an absolute path/ });
  t.throws(() => pgRestoreArgv(at, 'd', 'db.dump'), UNSAFE);
  t.equal(pgRestoreArgv(at, 'd', '/b/db.dump').at(-1), '/b/db.dump');
});

t.test('libpq really reads a database name holding "=" as a connection string (why it is refused)', async (t) => {
  let out = '';
  try {
    execFileSync(`${PG_BIN}/pg_dump`, ['--schema-only', '--host=127.0.0.1', '--port=1', '--dbname=host=/nonexistent-pulser-dir dbname=x'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH, PGCONNECT_TIMEOUT: '1' } });
  } catch (err) {
    out = String((err as { stderr?: string }).stderr);
  }
  t.match(out, /nonexistent-pulser-dir/, 'the host of the "name" won over --host');
});

t.test('staging SQL: a table or column name is one quoted identifier, whatever it holds', async (t) => {
  const [stmt] = anonymizeSql([{ table: 'x"; DROP TABLE res_users; --', column: 'email', with: 'blank' }]);
  t.equal(stmt!.text, 'UPDATE "x""; DROP TABLE res_users; --" SET "email" = NULL');
});

t.test('git: no inherited variable adds config, a program or another repository', async (t) => {
  const env = gitEnv(
    {
      PATH: '/usr/bin',
      HOME: '/root',
      GIT_CONFIG_COUNT: '1',
      GIT_CONFIG_KEY_0: 'protocol.ext.allow',
      GIT_CONFIG_VALUE_0: 'always',
      GIT_CONFIG_PARAMETERS: "'core.sshcommand'='touch /tmp/x'",
      GIT_CONFIG: '/tmp/evil',
      GIT_CONFIG_GLOBAL: '/tmp/evil',
      GIT_CONFIG_SYSTEM: '/tmp/evil',
      GIT_SSH: '/tmp/evil',
      GIT_SSH_COMMAND: 'touch /tmp/x',
      GIT_PROXY_COMMAND: 'touch /tmp/x',
      GIT_EXEC_PATH: '/tmp/evil',
      GIT_DIR: '/tmp/evil',
      GIT_ALLOW_PROTOCOL: 'ext:fd',
      git_ssl_no_verify: '1',
      GIT_SSL_CAINFO: '/etc/ssl/certs/ca-certificates.crt',
    },
    ['https'],
  );
  t.same(Object.keys(env).filter((k) => k.toUpperCase().startsWith('GIT_')).sort(), [
    'GIT_ALLOW_PROTOCOL',
    'GIT_ASKPASS',
    'GIT_AUTHOR_EMAIL',
    'GIT_AUTHOR_NAME',
    'GIT_COMMITTER_EMAIL',
    'GIT_COMMITTER_NAME',
    'GIT_CONFIG_GLOBAL',
    'GIT_CONFIG_NOSYSTEM',
    'GIT_SSH_COMMAND',
    'GIT_SSL_CAINFO',
    'GIT_TERMINAL_PROMPT',
  ]);
  t.equal(env.GIT_ALLOW_PROTOCOL, 'https');
  t.equal(env.GIT_CONFIG_GLOBAL, '/dev/null');
  t.equal(env.GIT_CONFIG_NOSYSTEM, '1');
  t.equal(env.GIT_SSH_COMMAND, 'ssh -o BatchMode=yes');
  t.equal(env.PATH, '/usr/bin');
  t.equal(gitEnv({}).GIT_ALLOW_PROTOCOL, 'https:ssh:file', 'by default: https, ssh and local paths');
});

t.test('docker exec and ssh exec refuse a program that reads as an option, before any call', async (t) => {
  const calls: string[] = [];
  const container = {
    exec: async () => {
      calls.push('exec');
      throw new Error('must not run');
    },
  };
  const client = { getContainer: () => container } as unknown as Docker;
  const docker = new DockerDriver('local', client);
  await t.rejects(docker.exec('c1', ['--privileged', 'sh'], { timeoutMs: 1000, maxOutputBytes: 100 }), UNSAFE);
  await t.rejects(docker.exec('c1', [], { timeoutMs: 1000, maxOutputBytes: 100 }), UNSAFE);
  t.notOk(calls.includes('exec'), 'no exec was created');

  let keyRead = 0;
  const ssh = new SshConnection({ host: 'h', address: '127.0.0.1', port: 1, user: 'u', hostKey: 'SHA256:x', privateKey: async () => String(++keyRead) });
  await t.rejects(ssh.exec(['-oProxyCommand=touch /tmp/x']), UNSAFE);
  t.equal(ssh.connects, 0);
  t.equal(keyRead, 0, 'no connection was even attempted');
});

t.test('an ssh exec line carries -oProxyCommand=… as one literal word (a real sh runs it)', async (t) => {
  const dir = t.testdir();
  const marker = path.join(dir, 'marker');
  const value = `-oProxyCommand=touch ${marker}`;
  const out = execFileSync('sh', ['-c', remoteCommand(['timeout', '-s', 'KILL', '5', 'printf', '%s\\0', value, `; touch ${marker}`])], { encoding: 'utf8' });
  t.same(out.split('\0').slice(0, -1), [value, `; touch ${marker}`]);
  t.notOk(existsSync(marker));
});

t.test('a run template cannot take its program from a parameter', async (t) => {
  const root = t.testdir({ ops: {} });
  await writeFile(
    path.join(root, 'ops', 'templates.yaml'),
    `templates:
  anything:
    description: runs what it is given
    kind: exec
    command: ["{{prog}}", "x"]
    params:
      prog: { type: string, pattern: ".{1,20}" }
    tiers: [staging]
  dashed:
    description: an option for a program name
    kind: host
    command: ["--help"]
    tiers: [staging]
`,
  );
  const err = await loadTemplates(root).then(
    () => null,
    (e: Error & { code?: string; location?: { line: number } }) => e,
  );
  t.equal(err?.code, 'PULSER_E_TEMPLATES_INVALID');
  t.match(err?.message, /ops\/templates\.yaml:5:\d+ templates\.anything\.command\.0: the program must be a fixed name/);
  t.match(err?.message, /templates\.dashed\.command\.0: the program must be a fixed name/);
});

t.test('a restore journal naming a hostile database or folder is refused before anything runs', async (t) => {
  const desired = await desiredEnv(t, { name: 'rcv' });
  const stateDir = path.join(t.testdir(), 'state');
  await mkdir(path.join(stateDir, 'restores'), { recursive: true });
  const touched: string[] = [];
  const drivers = new Proxy({} as RecoverContext['drivers'], {
    get: (_o, prop) => {
      touched.push(String(prop));
      throw new Error(`drivers.${String(prop)} must not be used`);
    },
  });
  for (const incoming of ['../../../../etc', '-rf', 'host=evil dbname=x']) {
    await writeFile(path.join(stateDir, 'restores', 'rcv.json'), JSON.stringify({ env: 'rcv', backupId: 'rcv-20260101T000000Z', database: desired.spec.database.name, incoming, previous: 'pulser_prev_rcv_1', filestore: true, phase: 'restoring' }));
    await t.rejects(resumeRestore({ desired, drivers, store: null as never, stateDir, commit: 'x', progress: () => undefined }), UNSAFE, incoming);
  }
  t.same(touched, [], 'no driver was touched');
});

t.test('pulser deps refuses a --database that would read as an option in the printed command', async (t) => {
  const out: string[] = [];
  const err: string[] = [];
  const io = { out: (s: string) => out.push(s), err: { write: (s: string) => err.push(s) > 0 } as unknown as NodeJS.WritableStream, isTTY: false };
  const code = await main(['deps', 'base', '--addons', t.testdir(), '--database=--db-filter=.*'], io);
  t.equal(code, 1);
  t.match(err.join(''), /PULSER_E_ARGUMENT_UNSAFE/);
  t.notMatch(out.join(''), /odoo -c/);
});
