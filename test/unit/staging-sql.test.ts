// The staging refresh SQL as data, golden: Odoo's neutralization, the identity and marker
// upserts, one deterministic UPDATE per anonymization rule, and the checks that must find 0 rows.
import t from 'tap';
import { anonymizeSql, FAKE_NAMES, neutralizeSql, REFRESH_KEY, verifySql } from '../../reconcilers/staging/sql.ts';
import type { AnonymizeRule } from '../../src/spec/types.gen.ts';

const input = { uuid: '7d0c1c9e-0000-4000-8000-000000000001', baseUrl: 'http://127.0.0.1:18070', refresh: '2026-03-24', fetchmail: false };
const rules: AnonymizeRule[] = [
  { table: 'res_partner', column: 'email', with: 'hash-email' },
  { table: 'res_partner', column: 'name', with: 'fake-name' },
  { table: 'res_partner', column: 'phone', with: 'blank' },
  { table: 'res_users', column: 'login', with: 'hash' },
];
const AUTOVACUUM = `SELECT res_id FROM ir_model_data WHERE model = 'ir.cron' AND module = 'base' AND name = 'autovacuum_job'`;
const UPSERT = `INSERT INTO ir_config_parameter (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value`;

t.test('neutralization: mail servers and crons off (autovacuum kept), flag, uuid, URL, marker', async (t) => {
  t.same(neutralizeSql(input), [
    { text: 'UPDATE ir_mail_server SET active = false', params: [] },
    { text: `UPDATE ir_cron SET active = false WHERE id NOT IN (${AUTOVACUUM})`, params: [] },
    { text: UPSERT, params: ['database.is_neutralized', 'true'] },
    { text: UPSERT, params: ['database.uuid', input.uuid] },
    { text: UPSERT, params: ['web.base.url', input.baseUrl] },
    { text: UPSERT, params: [REFRESH_KEY, '2026-03-24'] },
  ]);
  t.equal(neutralizeSql({ ...input, fetchmail: true })[1]!.text, 'UPDATE fetchmail_server SET active = false', "mail's incoming servers too, when the table exists");
});

t.test('anonymization: one UPDATE per rule, names quoted, the name list a parameter', async (t) => {
  t.same(anonymizeSql(rules), [
    { text: `UPDATE "res_partner" SET "email" = CASE WHEN "email" IS NULL THEN NULL ELSE 'u' || left(md5("email"::text), 16) || '@example.invalid' END`, params: [] },
    { text: `UPDATE "res_partner" SET "name" = CASE WHEN "name" IS NULL THEN NULL ELSE ($1::text[])[1 + get_byte(decode(md5(id::text), 'hex'), 0) % ${FAKE_NAMES.length}] END`, params: [[...FAKE_NAMES]] },
    { text: `UPDATE "res_partner" SET "phone" = NULL`, params: [] },
    { text: `UPDATE "res_users" SET "login" = CASE WHEN "login" IS NULL THEN NULL ELSE md5("login"::text) END`, params: [] },
  ]);
});

t.test('checks: each counts offending rows', async (t) => {
  const checks = verifySql(input, rules);
  t.same(
    checks.map((c) => c.what),
    [
      'no active outgoing mail server',
      'no active cron but the autovacuum',
      'database.is_neutralized = true',
      `database.uuid = ${input.uuid}`,
      `web.base.url = ${input.baseUrl}`,
      `${REFRESH_KEY} = 2026-03-24`,
      'res_partner.email anonymized (hash-email)',
      'res_partner.name anonymized (fake-name)',
      'res_partner.phone anonymized (blank)',
      'res_users.login anonymized (hash)',
    ],
  );
  t.equal(checks[1]!.text, `SELECT count(*)::int AS n FROM ir_cron WHERE active AND id NOT IN (${AUTOVACUUM})`);
  t.equal(checks[6]!.text, `SELECT count(*)::int AS n FROM "res_partner" WHERE "email" IS NOT NULL AND "email"::text !~ '^u[0-9a-f]{16}@example\\.invalid$'`);
  t.same(checks[3]!.params, ['database.uuid', input.uuid]);
  for (const c of checks) t.match(c.text, /^SELECT count\(\*\)::int AS n FROM /);
});
