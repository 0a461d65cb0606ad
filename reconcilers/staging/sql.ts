// The SQL of a staging refresh, as data: the neutralization `odoo-bin neutralize` applies (base's
// and mail's neutralize.sql), this environment's uuid, URL and refresh marker, the anonymization
// rules, and the checks run before the environment is declared ready. Nothing here runs anything.
import type { AnonymizeRule } from '../../src/spec/types.gen.ts';
import { quoteIdent } from '../backups/commands.ts';

export interface Statement {
  text: string;
  params: unknown[];
}

/** ir_config_parameter key holding the `staging.refresh` value of the last applied refresh. */
export const REFRESH_KEY = 'pulser.staging.refresh';

/** Names `fake-name` picks from, by a hash of the row id. */
export const FAKE_NAMES = ['Alex Morgan', 'Sam Carter', 'Robin Keller', 'Jo Weber', 'Kim Novak', 'Lee Fischer', 'Max Schmid', 'Pat Laurent', 'Noa Rossi', 'Eli Berg', 'Ari Lund', 'Sky Moreau'] as const;

const upsertParam = `INSERT INTO ir_config_parameter (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value`;

/** Odoo's own predicate for the one cron that stays active (base/data/neutralize.sql). */
const AUTOVACUUM = `SELECT res_id FROM ir_model_data WHERE model = 'ir.cron' AND module = 'base' AND name = 'autovacuum_job'`;

export const OBSERVE = {
  /** the refresh marker, or no row (no table: not an Odoo database yet) */
  marker: `SELECT value FROM ir_config_parameter WHERE key = $1`,
  hasConfigTable: `SELECT to_regclass('public.ir_config_parameter') IS NOT NULL AS present`,
  hasFetchmail: `SELECT to_regclass('public.fetchmail_server') IS NOT NULL AS present`,
} as const;

export interface NeutralizeInput {
  uuid: string;
  baseUrl: string;
  refresh: string;
  /** mail's incoming servers table exists (the mail module is installed) */
  fetchmail: boolean;
}

/** What `odoo-bin neutralize` does, plus a new identity and URL for this environment. */
export function neutralizeSql(i: NeutralizeInput): Statement[] {
  return [
    { text: `UPDATE ir_mail_server SET active = false`, params: [] },
    ...(i.fetchmail ? [{ text: `UPDATE fetchmail_server SET active = false`, params: [] }] : []),
    { text: `UPDATE ir_cron SET active = false WHERE id NOT IN (${AUTOVACUUM})`, params: [] },
    { text: upsertParam, params: ['database.is_neutralized', 'true'] },
    { text: upsertParam, params: ['database.uuid', i.uuid] },
    { text: upsertParam, params: ['web.base.url', i.baseUrl] },
    { text: upsertParam, params: [REFRESH_KEY, i.refresh] },
  ];
}

function rewrite(rule: AnonymizeRule): { set: string; params: unknown[] } {
  const col = quoteIdent(rule.column);
  switch (rule.with) {
    case 'hash-email':
      return { set: `CASE WHEN ${col} IS NULL THEN NULL ELSE 'u' || left(md5(${col}::text), 16) || '@example.invalid' END`, params: [] };
    case 'hash':
      return { set: `CASE WHEN ${col} IS NULL THEN NULL ELSE md5(${col}::text) END`, params: [] };
    case 'blank':
      return { set: 'NULL', params: [] };
    case 'fake-name':
      return { set: `CASE WHEN ${col} IS NULL THEN NULL ELSE ($1::text[])[1 + get_byte(decode(md5(id::text), 'hex'), 0) % ${FAKE_NAMES.length}] END`, params: [[...FAKE_NAMES]] };
  }
}

/** One UPDATE per rule: the same input rows always give the same output. */
export function anonymizeSql(rules: readonly AnonymizeRule[]): Statement[] {
  return rules.map((r) => {
    const { set, params } = rewrite(r);
    return { text: `UPDATE ${quoteIdent(r.table)} SET ${quoteIdent(r.column)} = ${set}`, params };
  });
}

export interface Check {
  what: string;
  /** a query returning one row with `n`: the number of offending rows; 0 is a pass */
  text: string;
  params: unknown[];
}

function leftover(rule: AnonymizeRule): string {
  const col = quoteIdent(rule.column);
  switch (rule.with) {
    case 'hash-email':
      return `${col} IS NOT NULL AND ${col}::text !~ '^u[0-9a-f]{16}@example\\.invalid$'`;
    case 'hash':
      return `${col} IS NOT NULL AND ${col}::text !~ '^[0-9a-f]{32}$'`;
    case 'blank':
      return `${col} IS NOT NULL`;
    case 'fake-name':
      return `${col} IS NOT NULL AND NOT (${col}::text = ANY($1::text[]))`;
  }
}

/** The checks a refreshed database must pass before the environment is declared ready. */
export function verifySql(i: NeutralizeInput, rules: readonly AnonymizeRule[]): Check[] {
  const param = (key: string, value: string): Check => ({ what: `${key} = ${value}`, text: `SELECT count(*)::int AS n FROM (SELECT 1) one WHERE NOT EXISTS (SELECT 1 FROM ir_config_parameter WHERE key = $1 AND value = $2)`, params: [key, value] });
  return [
    { what: 'no active outgoing mail server', text: `SELECT count(*)::int AS n FROM ir_mail_server WHERE active`, params: [] },
    ...(i.fetchmail ? [{ what: 'no active incoming mail server', text: `SELECT count(*)::int AS n FROM fetchmail_server WHERE active`, params: [] }] : []),
    { what: 'no active cron but the autovacuum', text: `SELECT count(*)::int AS n FROM ir_cron WHERE active AND id NOT IN (${AUTOVACUUM})`, params: [] },
    param('database.is_neutralized', 'true'),
    param('database.uuid', i.uuid),
    param('web.base.url', i.baseUrl),
    param(REFRESH_KEY, i.refresh),
    ...rules.map((r) => ({ what: `${r.table}.${r.column} anonymized (${r.with})`, text: `SELECT count(*)::int AS n FROM ${quoteIdent(r.table)} WHERE ${leftover(r)}`, params: r.with === 'fake-name' ? [[...FAKE_NAMES]] : [] })),
  ];
}
