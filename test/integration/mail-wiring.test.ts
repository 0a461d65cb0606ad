// The catcher inside pulser: started by the composition root, served by the HTTP server, its secret
// generated once and kept (or taken from PULSER_MAIL_SECRET), closed with pulser.
import t from 'tap';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import nodemailer from 'nodemailer';
import { createPulser } from '../../src/app.ts';

const root = await mkdtemp(path.join(tmpdir(), 'pulser-mailwire-'));
t.teardown(() => rm(root, { recursive: true, force: true }));
const logs: string[] = [];

function pulser(extra: { secretsFile?: string } = {}) {
  return createPulser({ root, evidenceDir: null, logWrite: (l) => logs.push(l), logLevel: 'debug', catcher: { host: '127.0.0.1', port: 0 }, ...extra });
}

t.test('startMail listens, /api/mail serves what was caught, close stops it', async (t) => {
  const p = pulser();
  const c = (await p.startMail())!;
  t.ok(c, 'catcher started');
  t.equal(await p.startMail(), c, 'starting twice is one catcher');
  const { host, port } = c.address();
  const { user, pass } = c.credentialsFor('staging');
  const transport = nodemailer.createTransport({ host, port, secure: false, ignoreTLS: true, auth: { user, pass } });
  await transport.sendMail({ from: 'odoo@example.com', to: 'x@example.com', subject: 'wired', text: 'hi' });
  transport.close();
  const app = p.server();
  const res = await app.inject({ url: '/api/mail?env=staging' });
  t.equal(res.statusCode, 200);
  t.same(res.json().messages.map((m: { subject: string }) => m.subject), ['wired']);
  await app.close();
  const secretFile = path.join(root, '.pulser', 'mail-catcher.secret');
  t.equal((await stat(secretFile)).mode & 0o777, 0o600, 'secret file readable by pulser only');
  await p.close();
  t.equal(p.mail(), null, 'closed');

  const again = pulser();
  const c2 = (await again.startMail())!;
  t.equal(c2.credentialsFor('staging').pass, pass, 'same password after a restart: the secret was kept');
  t.same(c2.store.list().map((m) => m.subject), ['wired'], 'caught mail kept too');
  await again.close();
  for (const line of logs) t.notOk(line.includes(pass), 'no password in the log');
});

t.test('PULSER_MAIL_SECRET from the secrets file decides the passwords', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'pulser-mailsecret-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'secrets.env');
  await writeFile(file, 'PULSER_MAIL_SECRET=from-the-secrets-file\n');
  const a = pulser({ secretsFile: file });
  const b = pulser();
  const [ca, cb] = [(await a.startMail())!, (await b.startMail())!];
  t.not(ca.credentialsFor('dev').pass, cb.credentialsFor('dev').pass);
  await Promise.all([a.close(), b.close()]);
});

t.test('without a catcher /api/mail answers 503 with a code', async (t) => {
  const p = createPulser({ root, evidenceDir: null, logWrite: () => undefined });
  t.equal(await p.startMail(), null);
  const app = p.server();
  const res = await app.inject({ url: '/api/mail' });
  t.equal(res.statusCode, 503);
  t.equal(res.json().error.code, 'PULSER_E_MAIL_CATCHER');
  await app.close();
  await p.close();
});
