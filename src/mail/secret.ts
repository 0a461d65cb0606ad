// The secret the catcher derives every environment's SMTP password from: PULSER_MAIL_SECRET (from
// the process environment or the secrets file), else one generated once and kept in pulser's state
// folder, so the passwords Odoo databases hold stay valid across restarts.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { isErrno } from '../evidence/durable.ts';
import type { SecretSource } from '../spec/secrets.ts';

export const MAIL_SECRET_NAME = 'PULSER_MAIL_SECRET';
const FILE = 'mail-catcher.secret';

export async function catcherSecret(stateDir: string, secrets: SecretSource): Promise<string> {
  const given = await secrets.get(MAIL_SECRET_NAME);
  if (given) return given;
  const file = path.join(stateDir, FILE);
  await mkdir(stateDir, { recursive: true });
  try {
    await writeFile(file, randomBytes(32).toString('hex') + '\n', { flag: 'wx', mode: 0o600 });
  } catch (err) {
    if (!isErrno(err, 'EEXIST')) throw err;
  }
  return (await readFile(file, 'utf8')).trim();
}
