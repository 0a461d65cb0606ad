// The daemon's mail catcher end to end: `pulser reconcile --watch --mail-listen …` catches mail sent
// with an environment's credentials and serves it on /api/mail; bad limits are usage errors.
import t from 'tap';
import { spawn } from 'node:child_process';
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import nodemailer from 'nodemailer';
import { MailCatcher } from '../../src/mail/catcher.ts';
import { freePort, httpGet } from '../helpers/world.ts';

t.setTimeout(240_000);
const bin = fileURLToPath(new URL('../../bin/pulser.js', import.meta.url));
const root = await mkdtemp(path.join(tmpdir(), 'pulser-maild-'));
t.teardown(() => rm(root, { recursive: true, force: true }));
await mkdir(path.join(root, 'environments'));
await writeFile(path.join(root, 'environments', 'hosts.yaml'), 'hosts:\n  local:\n    kind: local\n');
const secretsFile = path.join(await mkdtemp(path.join(tmpdir(), 'pulser-maild-secrets-')), 'secrets.env');
await writeFile(secretsFile, 'PULSER_MAIL_SECRET=daemon-test-secret\n');

function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  for (const k of ['PULSER_DIR', 'PULSER_LISTEN', 'PULSER_MAIL_LISTEN', 'PULSER_SECRETS_FILE']) delete env[k];
  return env;
}

t.test('bad limits are usage errors', async (t) => {
  const child = spawn(process.execPath, [bin, 'reconcile', '--watch', '--dir', root, '--listen', '127.0.0.1:0'], { env: childEnv({ PULSER_MAIL_MAX_MESSAGE_BYTES: 'lots' }), stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const code = await new Promise<number | null>((r) => child.once('close', r));
  t.equal(code, 2);
  t.match(err, /PULSER_E_USAGE: PULSER_MAIL_MAX_MESSAGE_BYTES must be a positive integer, got "lots"/);
});

t.test('the daemon catches mail and serves it', async (t) => {
  const [http, smtp] = [await freePort(), await freePort()];
  const child = spawn(process.execPath, [bin, 'reconcile', '--watch', '--dir', root, '--listen', `127.0.0.1:${http}`, '--mail-listen', `127.0.0.1:${smtp}`, '--secrets-file', secretsFile], {
    env: childEnv({ PULSER_MAIL_MAX_MESSAGE_BYTES: '50000' }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const closed = new Promise<number | null>((r) => child.once('close', r));
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  const deadline = Date.now() + 120_000;
  while ((await httpGet(`http://127.0.0.1:${http}/healthz`))?.status !== 200) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`daemon did not start:\n${err}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  // The password is what a catcher with the same secret derives: the one the mail reconciler writes.
  const pass = new MailCatcher({ dir: root, secret: 'daemon-test-secret' }).credentialsFor('staging').pass;
  const transport = nodemailer.createTransport({ host: '127.0.0.1', port: smtp, secure: false, ignoreTLS: true, auth: { user: 'staging', pass } });
  await transport.sendMail({ from: 'odoo@example.com', to: 'customer@example.com', subject: 'From the daemon', text: 'hi' });
  await t.rejects(transport.sendMail({ from: 'odoo@example.com', to: 'c@example.com', subject: 'too big', text: 'x'.repeat(80_000) }), { responseCode: 552, message: /50000 bytes/ });
  transport.close();
  const list = await httpGet(`http://127.0.0.1:${http}/api/mail?env=staging`);
  t.equal(list?.status, 200);
  const messages = JSON.parse(list!.body).messages as { id: string; subject: string }[];
  t.same(messages.map((m) => m.subject), ['From the daemon']);
  const raw = await httpGet(`http://127.0.0.1:${http}/api/mail/${messages[0]!.id}/raw`);
  t.match(raw?.body, /^Subject: From the daemon\r?$/m);
  child.kill('SIGTERM');
  t.equal(await closed, 0, 'clean exit on SIGTERM');
  t.match(err, /mail catcher listening on 127\.0\.0\.1:\d+/);
  t.notOk(err.includes(pass), 'the password is not logged');
  t.notOk(err.includes('daemon-test-secret'), 'the secret is not logged');
  const onDisk = await readFile(path.join(root, '.pulser', 'mail', 'staging', 'index.json'), 'utf8');
  t.match(onDisk, /From the daemon/);
});
