// The mail planner, the tier policy and the odoo.conf fallback, pure: which servers each mode keeps
// active, what a change says, and that the catcher's password never appears in a plan.
import t from 'tap';
import { desiredEnv } from '../helpers/builders.ts';
import { mailTarget, planMail, type MailObserved, type ServerObserved } from '../../reconcilers/mail/plan.ts';
import { MAIL_SQL } from '../../reconcilers/mail/sql.ts';
import { mailPolicyProblem } from '../../src/odoo/mail-policy.ts';
import { designOdooContainer, renderOdooConf } from '../../reconcilers/containers/design.ts';

function server(id: number, name: string, o: Partial<ServerObserved> = {}): ServerObserved {
  return { id, name, smtpHost: `${name}.example`, smtpPort: 587, smtpUser: null, encryption: 'starttls', fromFilter: null, sequence: 10, active: true, ...o };
}
const catcher = { host: 'host.docker.internal', port: 2525 };
const observed = (o: Partial<MailObserved> = {}): MailObserved => ({ declared: true, servers: [server(1, 'relay'), server(2, 'marketing', { fromFilter: 'news@acme.example' })], deactivatedByPulser: [], enforcedMode: null, catcher, ...o });

t.test('catch: every own server off, the catcher row written', async (t) => {
  const d = await desiredEnv(t, { mail: { mode: 'catch' } });
  const plan = planMail(d, observed());
  t.same(plan.findings, []);
  t.equal(plan.changes.length, 1);
  const c = plan.changes[0]!;
  t.same([c.subject, c.action, c.risk, c.reconciler], ['staging/mail/servers', 'update', 'safe', 'mail']);
  t.equal(c.summary, "mail catch: route all mail to pulser's catcher at host.docker.internal:2525; deactivate relay (relay.example:587), marketing (marketing.example:587)");
  t.same(c.diff, { activeServers: { before: ['marketing', 'relay'], after: ['pulser-catcher'] }, mode: { before: null, after: 'catch' } });
  t.same(c.op, { kind: 'enforce', mode: 'catch' });

  const inSync = observed({
    servers: [server(1, 'relay', { active: false }), server(3, 'pulser-catcher', { sequence: 0, catcherCurrent: true })],
    enforcedMode: 'catch',
  });
  t.same(planMail(d, inSync).changes, [], 'in sync once the catcher is the only active server');
  const stale = observed({ servers: [server(3, 'pulser-catcher', { sequence: 0, catcherCurrent: false })], enforcedMode: 'catch' });
  t.same(mailTarget('catch', stale), { activate: [], deactivate: [], catcher: 'write' }, 'stale credentials are rewritten');
});

t.test('catch without a catcher is a waiting finding, nothing changes', async (t) => {
  const d = await desiredEnv(t, { mail: { mode: 'catch' } });
  const plan = planMail(d, observed({ catcher: null }));
  t.same(plan.changes, []);
  t.equal(plan.findings[0]!.error.code, 'PULSER_E_MAIL_CATCHER_OFF');
  t.equal(plan.findings[0]!.error.class, 'waiting');
});

t.test('block: nothing active, the catcher included', async (t) => {
  const d = await desiredEnv(t, { mail: { mode: 'block' } });
  const o = observed({ servers: [server(1, 'relay', { active: false }), server(3, 'pulser-catcher', { sequence: 0, catcherCurrent: true })], deactivatedByPulser: [1], enforcedMode: 'catch' });
  t.same(mailTarget('block', o), { activate: [], deactivate: [], catcher: 'deactivate' });
  t.equal(planMail(d, o).changes[0]!.summary, 'mail block: deactivate pulser-catcher');
});

t.test('deliver (production): what pulser switched off comes back, nothing else', async (t) => {
  const d = await desiredEnv(t, { tier: 'production', mail: { mode: 'deliver' } });
  const o = observed({
    servers: [server(1, 'relay', { active: false }), server(2, 'old', { active: false }), server(3, 'pulser-catcher', { sequence: 0, catcherCurrent: true })],
    deactivatedByPulser: [1],
    enforcedMode: 'catch',
  });
  t.same(mailTarget('deliver', o), { activate: [1], deactivate: [], catcher: 'deactivate' });
  const c = planMail(d, o).changes[0]!;
  t.equal(c.risk, 'disruptive');
  t.same(c.diff.activeServers, { before: ['pulser-catcher'], after: ['relay'] });
});

t.test('an uninitialised database still gets the change (Odoo creates the tables first)', async (t) => {
  const d = await desiredEnv(t, { mail: { mode: 'block' } });
  const c = planMail(d, observed({ servers: null })).changes[0]!;
  t.equal(c.summary, 'mail block: database not initialised yet');
});

t.test('tier policy', async (t) => {
  t.equal(mailPolicyProblem('staging', { mode: 'deliver' }), 'mail.mode: a staging environment may not deliver mail to real recipients (use catch or block)');
  t.equal(mailPolicyProblem('preview', { mode: 'deliver' }), 'mail.mode: a preview environment may not deliver mail to real recipients (use catch or block)');
  t.equal(mailPolicyProblem('production', { mode: 'catch' }), 'mail.mode: catch on production stops real mail; set mail.override: true to confirm');
  t.equal(mailPolicyProblem('production', { mode: 'block', override: true }), null);
  t.equal(mailPolicyProblem('production', { mode: 'deliver' }), null);
  t.equal(mailPolicyProblem('staging', { mode: 'catch' }), null);
  t.equal(mailPolicyProblem('staging', undefined), null);
  await t.rejects(desiredEnv(t, { tier: 'production', mail: { mode: 'block' } }), /PULSER_E_MAIL_POLICY|mail\.override/);
});

t.test('outside deliver, odoo.conf has no SMTP fallback; deliver keeps the configured one', async (t) => {
  const config = { smtp_server: 'smtp.acme.example', smtp_port: 587, smtp_user: 'odoo' };
  const caught = designOdooContainer(await desiredEnv(t, { config, mail: { mode: 'catch' } }));
  t.match(renderOdooConf(caught.options), /\nsmtp_password = False\nsmtp_port = 587\nsmtp_server = False\nsmtp_ssl = False\nsmtp_user = False\n/);
  const prod = designOdooContainer(await desiredEnv(t, { tier: 'production', config, mail: { mode: 'deliver' } }));
  t.equal(prod.options.smtp_server, 'smtp.acme.example');
  const plain = designOdooContainer(await desiredEnv(t, { config }));
  t.equal(plain.options.smtp_server, 'smtp.acme.example', 'no mail section: the container design is unchanged');
});

t.test('SQL (golden): the password is compared in the database, never selected', async (t) => {
  t.notMatch(MAIL_SQL.servers, /SELECT[^(]*smtp_pass,/);
  t.match(MAIL_SQL.servers, /smtp_pass IS NOT DISTINCT FROM \$4/);
  t.match(MAIL_SQL.serversForUpdate, /FOR UPDATE$/);
  t.equal(MAIL_SQL.setActive, "UPDATE ir_mail_server SET active = $2, write_date = now() AT TIME ZONE 'UTC' WHERE id = ANY($1)");
});
