// The stand-in Odoo's pure parts against Odoo's contract: odoo-bin options and odoo.conf, the log
// line format, version adaptation, and how ir.mail_server._find_mail_server picks a server.
import t from 'tap';
import { parseArgs, parseOdooConf, confValue } from '../../src/odoo/standin/cli.ts';
import { formatLine } from '../../src/odoo/standin/log.ts';
import { adaptVersion, pyList } from '../../src/odoo/standin/loading.ts';
import { findMailServer, smtpChoice, type MailServerRow } from '../../src/odoo/standin/mail.ts';

t.test('odoo-bin options', async (t) => {
  const a = parseArgs(['-c', '/etc/odoo/odoo.conf', '-d', 'db1', '-i', 'a,b', '-u', 'c', '--stop-after-init', '--test-enable', '--db_host', 'pg', '--db_port=5433', '-r', 'odoo', '-w', 'pw']);
  t.same(a, {
    command: 'server',
    config: '/etc/odoo/odoo.conf',
    database: 'db1',
    init: ['a', 'b'],
    update: ['c'],
    stopAfterInit: true,
    testEnable: true,
    overrides: { db_host: 'pg', db_port: '5433', db_user: 'odoo', db_password: 'pw' },
  });
  t.equal(parseArgs(['neutralize', '-d', 'db1']).command, 'neutralize');
  t.equal(parseArgs(['--version']).command, 'version');
  t.equal(parseArgs([], { ODOO_RC: '/x.conf' }).config, '/x.conf', 'ODOO_RC like the official image');
  t.throws(() => parseArgs(['--no-such-option']), { name: 'UsageError', message: 'odoo: error: no such option: --no-such-option' });
  t.throws(() => parseArgs(['-d']), /option -d requires a value/);
});

t.test('odoo.conf [options]', async (t) => {
  const o = parseOdooConf('; written by pulser\n[options]\naddons_path = /mnt/a,/mnt/b\ndb_password = False\nsmtp_port: 25\n# comment\n[other]\nx = 1\n');
  t.same(o, { addons_path: '/mnt/a,/mnt/b', db_password: 'False', smtp_port: '25' });
  t.equal(confValue(o, 'db_password'), null, 'False means unset');
  t.equal(confValue(o, 'addons_path'), '/mnt/a,/mnt/b');
});

t.test('log format and Odoo details', async (t) => {
  const line = formatLine(new Date(Date.UTC(2026, 0, 2, 3, 4, 5, 6)), 42, 'WARNING', 'db1', 'odoo.modules.loading', 'invalid module names, ignored: x');
  t.equal(line, '2026-01-02 03:04:05,006 42 WARNING db1 odoo.modules.loading: invalid module names, ignored: x');
  t.equal(formatLine(new Date(0), 1, 'INFO', null, 'odoo', 'm'), '1970-01-01 00:00:00,000 1 INFO ? odoo: m', 'no database: ?');
  t.equal(adaptVersion('1.0', '17.0'), '17.0.1.0');
  t.equal(adaptVersion('17.0.1.0.0', '17.0'), '17.0.1.0.0');
  t.equal(adaptVersion('17.0', '17.0'), '17.0.17.0');
  t.equal(adaptVersion(null, '17.0'), '17.0.1.0');
  t.equal(pyList(['a', 'b']), "['a', 'b']");
});

t.test('_find_mail_server: from_filter match, then notifications address, then no filter, then any; then odoo.conf', async (t) => {
  const s = (id: number, from_filter: string | null, sequence: number, active = true): MailServerRow => ({
    id, name: `s${id}`, from_filter, smtp_host: `h${id}`, smtp_port: 25, smtp_user: null, smtp_pass: null, smtp_encryption: 'none', sequence, active,
  });
  const servers = [s(1, null, 1), s(2, 'sales@acme.example', 5), s(3, 'acme.example', 7), s(4, 'other.example', 9), s(5, 'sales@acme.example', 0, false)];
  t.equal(findMailServer(servers, 'Sales <sales@acme.example>', null).server?.id, 2, 'exact address first; archived servers never');
  t.equal(findMailServer(servers, 'bob@acme.example', null).server?.id, 3, 'then the domain');
  t.equal(findMailServer(servers, 'x@else.example', 'notifications@other.example').server?.id, 4, 'then the notification address');
  const fallback = findMailServer(servers, 'x@else.example', 'notifications@nowhere.example');
  t.same([fallback.server?.id, fallback.from], [1, 'notifications@nowhere.example'], 'then the first without a filter, from the notification address');
  t.equal(findMailServer([s(4, 'other.example', 9)], 'x@else.example', null).server?.id, 4, 'then any active server');
  const none = findMailServer([s(1, null, 1, false)], 'x@else.example', null);
  t.equal(none.server, null);
  t.same(smtpChoice(none, {}), { server: null, from: 'x@else.example', host: 'localhost', port: 25, user: null, password: null, encryption: 'none' }, 'Odoo’s default fallback');
  t.equal(smtpChoice(none, { smtp_server: null }).host, null, 'smtp_server = False: no fallback');
  t.same(smtpChoice(none, { smtp_server: 'relay', smtp_port: '587', smtp_ssl: 'True' }).encryption, 'starttls', 'smtp_ssl means STARTTLS');
});
