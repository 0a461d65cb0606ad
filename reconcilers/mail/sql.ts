// SQL of the mail reconciler (text + parameters, golden-tested). Passwords are compared inside the
// database: observation returns whether the catcher row is current, never the password itself.

export interface CatcherRow {
  host: string;
  port: number;
  user: string;
  password: string;
}

const SERVER_COLUMNS = `id, name, smtp_host, smtp_port, smtp_user, smtp_encryption, from_filter, sequence, active,
  (smtp_host IS NOT DISTINCT FROM $1 AND smtp_port IS NOT DISTINCT FROM $2::int AND smtp_user IS NOT DISTINCT FROM $3
   AND smtp_pass IS NOT DISTINCT FROM $4 AND smtp_encryption = 'none') AS catcher_current`;

export const MAIL_SQL = {
  modeKey: 'pulser.mail.mode',
  deactivatedKey: 'pulser.mail.deactivated',
  tablesExist: `SELECT to_regclass('ir_mail_server') IS NOT NULL AS ready`,
  servers: `SELECT ${SERVER_COLUMNS} FROM ir_mail_server ORDER BY sequence, id`,
  serversForUpdate: `SELECT ${SERVER_COLUMNS} FROM ir_mail_server ORDER BY sequence, id FOR UPDATE`,
  params: `SELECT key, value FROM ir_config_parameter WHERE key IN ('pulser.mail.mode', 'pulser.mail.deactivated')`,
  setActive: `UPDATE ir_mail_server SET active = $2, write_date = now() AT TIME ZONE 'UTC' WHERE id = ANY($1)`,
  deactivateCatcher: `UPDATE ir_mail_server SET active = false, write_date = now() AT TIME ZONE 'UTC' WHERE name = $1`,
  updateCatcher: `UPDATE ir_mail_server SET smtp_host = $2, smtp_port = $3, smtp_user = $4, smtp_pass = $5, smtp_encryption = 'none',
  smtp_authentication = 'login', from_filter = NULL, sequence = 0, active = true, write_date = now() AT TIME ZONE 'UTC' WHERE name = $1 RETURNING id`,
  insertCatcher: `INSERT INTO ir_mail_server (name, smtp_host, smtp_port, smtp_user, smtp_pass, smtp_encryption, smtp_authentication, from_filter, sequence, active, create_date, write_date)
VALUES ($1, $2, $3, $4, $5, 'none', 'login', NULL, 0, true, now() AT TIME ZONE 'UTC', now() AT TIME ZONE 'UTC')`,
  setParam: `INSERT INTO ir_config_parameter (key, value, create_date, write_date) VALUES ($1, $2, now() AT TIME ZONE 'UTC', now() AT TIME ZONE 'UTC')
ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, write_date = EXCLUDED.write_date`,
} as const;
