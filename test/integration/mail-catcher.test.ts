// The mail catcher over real SMTP sessions (nodemailer as the client): authentication per
// environment, filing, search, HTML and attachments, retention, oversized messages, restarts,
// and the HTTP routes over what was caught.
import t, { type Test } from 'tap';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import net from 'node:net';
import nodemailer, { type SendMailOptions } from 'nodemailer';
import Fastify from 'fastify';
import { MailCatcher, type MailCatcherOptions } from '../../src/mail/catcher.ts';
import { mailRoutes } from '../../src/mail/routes.ts';
import { createLogger } from '../../src/core/log.ts';
import type { MailEntry } from '../../src/mail/store.ts';

const SECRET = 'catcher-test-secret-9f2c';
const logLines: string[] = [];
const log = createLogger({ level: 'debug', json: true, write: (l) => logLines.push(l) });

async function catcher(t: Test, extra: Partial<MailCatcherOptions> = {}, dir?: string): Promise<MailCatcher> {
  const folder = dir ?? (await mkdtemp(path.join(tmpdir(), 'pulser-mail-')));
  if (!dir) t.teardown(() => rm(folder, { recursive: true, force: true }));
  const c = new MailCatcher({ dir: folder, secret: SECRET, port: 0, log, ...extra });
  await c.listen();
  t.teardown(() => c.close());
  return c;
}

function send(c: MailCatcher, env: string, message: SendMailOptions, pass = c.credentialsFor(env).pass) {
  const { host, port } = c.address();
  const transport = nodemailer.createTransport({ host, port, secure: false, ignoreTLS: true, auth: { user: env, pass }, connectionTimeout: 5000, socketTimeout: 10_000 });
  return transport.sendMail(message).finally(() => transport.close());
}

t.test('credentials: per environment, stable for one secret, different for another', async (t) => {
  const a = new MailCatcher({ dir: '/nonexistent', secret: SECRET });
  const b = new MailCatcher({ dir: '/nonexistent', secret: 'another-secret' });
  t.equal(a.credentialsFor('staging').user, 'staging');
  t.match(a.credentialsFor('staging').pass, /^[A-Za-z0-9_-]{32}$/);
  t.equal(a.credentialsFor('staging').pass, new MailCatcher({ dir: '/x', secret: SECRET }).credentialsFor('staging').pass);
  t.not(a.credentialsFor('staging').pass, a.credentialsFor('production').pass);
  t.not(a.credentialsFor('staging').pass, b.credentialsFor('staging').pass);
  t.throws(() => a.address(), { code: 'PULSER_E_MAIL_CATCHER' }, 'no address before listening');
});

t.test('good credentials are filed per environment; bad ones are refused with 535', async (t) => {
  const c = await catcher(t);
  logLines.length = 0;
  const info = await send(c, 'staging', { from: 'odoo@staging.example', to: 'Customer <customer@example.com>', subject: 'Invoice INV/2024/0001', text: 'hello' });
  t.match(info.response, /^250 .*Message caught as [0-9a-z]{10}-[0-9a-f]{8}/);
  await send(c, 'dev-1', { from: 'odoo@dev.example', to: 'someone@example.com', subject: 'Dev mail', text: 'x' });

  const wrong = c.credentialsFor('production').pass;
  await t.rejects(send(c, 'staging', { from: 'a@b.c', to: 'x@y.z', subject: 'nope', text: 'x' }, wrong), { code: 'EAUTH', responseCode: 535 });
  await t.rejects(send(c, 'Not_An_Env', { from: 'a@b.c', to: 'x@y.z', subject: 'nope', text: 'x' }, 'whatever-password-given'), { code: 'EAUTH', responseCode: 535 });
  const { host, port } = c.address();
  const anon = nodemailer.createTransport({ host, port, secure: false, ignoreTLS: true });
  await t.rejects(anon.sendMail({ from: 'a@b.c', to: 'x@y.z', subject: 'anonymous', text: 'x' }), { responseCode: 530, message: /authentication required/i }, 'no AUTH, no mail');
  anon.close();

  const staging = c.store.list({ env: 'staging' });
  t.same(staging.map((m) => [m.env, m.subject, m.from, m.to]), [['staging', 'Invoice INV/2024/0001', 'odoo@staging.example', ['customer@example.com']]]);
  t.same(c.store.list({ env: 'dev-1' }).map((m) => m.subject), ['Dev mail']);
  t.equal(c.store.list().length, 2, 'refused sessions stored nothing');
  t.ok(await readdir(path.join(c.store.dir, 'staging')).then((f) => f.includes(`${staging[0]!.id}.eml`)), 'raw .eml on disk');
  const all = logLines.join('\n');
  t.match(all, /authentication failed/);
  for (const secret of [wrong, SECRET, c.credentialsFor('staging').pass, 'whatever-password-given']) t.notOk(all.includes(secret), 'no credential in the log');
});

t.test('search: recipient, subject (case-insensitive), since, limit; bcc from the envelope', async (t) => {
  const c = await catcher(t);
  await send(c, 'qa', { from: 'a@x.io', to: 'alice@example.com', cc: 'carol@example.com', subject: 'Quote SO001 ready', text: '1' });
  const mid = new Date();
  await new Promise((r) => setTimeout(r, 20));
  await send(c, 'qa', { from: 'a@x.io', to: 'bob@example.com', bcc: 'hidden@example.com', subject: 'Password reset', text: '2' });
  await send(c, 'qa', { from: 'a@x.io', to: 'alice@example.com', subject: 'quote SO002 READY', text: '3' });
  t.same(c.store.list({ env: 'qa' }).map((m) => m.subject), ['quote SO002 READY', 'Password reset', 'Quote SO001 ready'], 'newest first');
  t.same(c.store.list({ to: 'ALICE@' }).map((m) => m.subject), ['quote SO002 READY', 'Quote SO001 ready']);
  t.same(c.store.list({ to: 'carol' }).map((m) => m.subject), ['Quote SO001 ready'], 'cc counts as a recipient');
  t.same(c.store.list({ to: 'hidden' }).map((m) => m.subject), ['Password reset'], 'bcc counts as a recipient');
  t.same(c.store.list({ subject: 'so00' }).length, 2);
  t.same(c.store.list({ since: mid }).map((m) => m.subject), ['quote SO002 READY', 'Password reset']);
  t.same(c.store.list({ limit: 1 }).map((m) => m.subject), ['quote SO002 READY']);
  t.same(c.store.list({ env: 'other' }), []);
  const reset = c.store.list({ subject: 'password' })[0]!;
  t.same([reset.to, reset.cc, reset.bcc], [['bob@example.com'], [], ['hidden@example.com']]);
  const quote = c.store.list({ subject: 'SO001' })[0]!;
  t.same([quote.to, quote.cc, quote.bcc], [['alice@example.com'], ['carol@example.com'], []]);
});

t.test('HTML and attachments, and the HTTP routes', async (t) => {
  const c = await catcher(t);
  const pdf = Buffer.alloc(3000, 7);
  await send(c, 'staging', {
    from: '"Odoo" <odoo@example.com>',
    to: ['a@example.com', 'b@example.com'],
    subject: 'Your invoice',
    text: 'Plain body',
    html: '<p>HTML <b>body</b></p>',
    attachments: [
      { filename: 'INV-0001.pdf', content: pdf, contentType: 'application/pdf' },
      { filename: 'notes.txt', content: 'some notes', contentType: 'text/plain' },
    ],
    headers: { 'X-Odoo-Objects': 'account.move-1' },
  });
  await send(c, 'production', { from: 'p@example.com', to: 'z@example.com', subject: 'Other env', text: 'x' });
  const [entry] = c.store.list({ env: 'staging' }) as [MailEntry];
  t.equal(entry.hasHtml, true);
  t.same(entry.attachments, [
    { filename: 'INV-0001.pdf', contentType: 'application/pdf', size: 3000 },
    { filename: 'notes.txt', contentType: 'text/plain', size: 10 },
  ]);
  t.same(entry.to, ['a@example.com', 'b@example.com']);
  t.ok(entry.size > 4000, 'size of the raw message');

  const app = Fastify();
  await app.register(mailRoutes, { store: c.store });
  t.teardown(() => app.close());
  const list = await app.inject({ url: '/api/mail?env=staging' });
  t.equal(list.statusCode, 200);
  t.same(list.json().messages.map((m: MailEntry) => m.id), [entry.id]);
  t.same((await app.inject({ url: '/api/mail?to=z@&subject=OTHER' })).json().messages.map((m: MailEntry) => m.subject), ['Other env']);
  t.same((await app.inject({ url: `/api/mail?since=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}` })).json().messages, []);

  const one = await app.inject({ url: `/api/mail/${entry.id}` });
  t.equal(one.statusCode, 200);
  const body = one.json();
  t.equal(body.id, entry.id);
  t.equal(body.html, '<p>HTML <b>body</b></p>');
  t.equal(body.text.trim(), 'Plain body');
  t.equal(body.headers['x-odoo-objects'], 'account.move-1');
  t.equal(body.headers.subject, 'Your invoice');
  t.same(body.attachments.map((a: { filename: string }) => a.filename), ['INV-0001.pdf', 'notes.txt']);
  t.notOk('content' in body.attachments[0], 'attachment content is not sent');

  const raw = await app.inject({ url: `/api/mail/${entry.id}/raw` });
  t.equal(raw.statusCode, 200);
  t.match(raw.headers['content-type'], /^message\/rfc822/);
  t.same(raw.rawPayload, await c.store.raw(entry.id), 'the exact bytes received');
  t.match(raw.body, /^Subject: Your invoice\r?$/m);

  for (const url of ['/api/mail/0000000000-00000000', '/api/mail/nope/raw', '/api/mail/..%2F..%2Fetc%2Fpasswd/raw']) {
    const r = await app.inject({ url });
    t.equal(r.statusCode, 404, url);
    t.equal(r.json().error.code, 'PULSER_E_MAIL_NOT_FOUND', url);
  }
  for (const q of ['env=Bad_Env', 'since=yesterday', 'limit=0', 'limit=abc', `to=${'x'.repeat(201)}`]) {
    const r = await app.inject({ url: `/api/mail?${q}` });
    t.equal(r.statusCode, 400, q);
    t.equal(r.json().error.code, 'PULSER_E_USAGE');
  }
});

t.test('retention: oldest evicted first, by count and by bytes, files removed', async (t) => {
  const c = await catcher(t, { retention: { maxMessages: 3, maxBytes: 1_000_000 } });
  for (let i = 1; i <= 5; i++) await send(c, 'staging', { from: 'a@x.io', to: 'b@x.io', subject: `m${i}`, text: 'x' });
  await send(c, 'dev', { from: 'a@x.io', to: 'b@x.io', subject: 'd1', text: 'x' });
  t.same(c.store.list({ env: 'staging' }).map((m) => m.subject), ['m5', 'm4', 'm3']);
  t.same(c.store.list({ env: 'dev' }).map((m) => m.subject), ['d1'], 'limits are per environment');
  const files = (await readdir(path.join(c.store.dir, 'staging'))).filter((f) => f.endsWith('.eml'));
  t.equal(files.length, 3, 'evicted .eml files are removed');

  const bytes = await catcher(t, { retention: { maxMessages: 100, maxBytes: 5000 } });
  for (let i = 1; i <= 4; i++) await send(bytes, 'staging', { from: 'a@x.io', to: 'b@x.io', subject: `b${i}`, text: 'y'.repeat(1500) });
  const kept = bytes.store.list({ env: 'staging' });
  t.same(kept.map((m) => m.subject), ['b4', 'b3'], 'only as many as fit in maxBytes');
  t.ok(kept.reduce((n, m) => n + m.size, 0) <= 5000);
});

t.test('an oversized message is refused with 552 and nothing is stored', async (t) => {
  const c = await catcher(t, { maxMessageBytes: 20_000 });
  await t.rejects(send(c, 'staging', { from: 'a@x.io', to: 'b@x.io', subject: 'big', text: 'z'.repeat(50_000) }), { responseCode: 552, message: /exceeds the fixed maximum message size of 20000 bytes/ });
  await send(c, 'staging', { from: 'a@x.io', to: 'b@x.io', subject: 'small', text: 'ok' });
  t.same(c.store.list().map((m) => m.subject), ['small'], 'the session goes on; the small one is caught');
  t.same((await readdir(path.join(c.store.dir, 'staging'))).filter((f) => f.endsWith('.eml')).length, 1);
});

t.test('messages survive a restart of the catcher', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'pulser-mail-restart-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const first = new MailCatcher({ dir, secret: SECRET, port: 0, log });
  await first.listen();
  await send(first, 'staging', { from: 'a@x.io', to: 'b@x.io', subject: 'before restart', html: '<i>kept</i>' });
  const before = first.store.list();
  await first.close();
  await t.rejects(async () => send(first, 'staging', { from: 'a@x.io', to: 'b@x.io', subject: 'x', text: 'x' }), { code: 'PULSER_E_MAIL_CATCHER' }, 'closed: no address');

  const second = await catcher(t, {}, dir);
  t.same(second.store.list(), before, 'index reloaded');
  t.ok((await second.store.raw(before[0]!.id))?.toString().includes('before restart'));
  await send(second, 'staging', { from: 'a@x.io', to: 'b@x.io', subject: 'after restart', text: 'x' });
  t.same(second.store.list().map((m) => m.subject), ['after restart', 'before restart'], 'new ids sort after old ones');
});

t.test('the .eml files are the truth: a lost or torn index is rebuilt from them', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'pulser-mail-recover-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const first = new MailCatcher({ dir, secret: SECRET, port: 0 });
  await first.listen();
  await send(first, 'staging', { from: 'a@x.io', to: 'b@x.io', cc: 'c@x.io', subject: 'one', text: 'x' });
  await send(first, 'staging', { from: 'a@x.io', to: 'b@x.io', subject: 'two', html: '<b>x</b>', attachments: [{ filename: 'f.txt', content: 'abc' }] });
  const before = first.store.list();
  await first.close();
  // A crash after the second .eml was synced but before its index entry was written:
  const index = path.join(dir, 'staging', 'index.json');
  await writeFile(index, JSON.stringify(JSON.parse(await readFile(index, 'utf8')).slice(0, 1)));
  const second = new MailCatcher({ dir, secret: SECRET, port: 0 });
  await second.listen();
  t.same(
    second.store.list().map((m) => [m.id, m.subject, m.to, m.cc, m.hasHtml, m.attachments, m.receivedAt.slice(0, 16)]),
    before.map((m) => [m.id, m.subject, m.to, m.cc, m.hasHtml, m.attachments, m.receivedAt.slice(0, 16)]),
    'the message missing from the index is back',
  );
  await second.close();
  await writeFile(index, '[{"id": "torn');
  const third = new MailCatcher({ dir, secret: SECRET, port: 0 });
  await third.listen();
  t.same(third.store.list().map((m) => m.subject), ['two', 'one'], 'a torn index is rebuilt');
  t.same(JSON.parse(await readFile(index, 'utf8')).length, 2, 'and written back');
  await third.close();
});

t.test('a taken port is a coded error', async (t) => {
  const blocker = net.createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => blocker.close(() => r())));
  const port = (blocker.address() as net.AddressInfo).port;
  const dir = await mkdtemp(path.join(tmpdir(), 'pulser-mail-port-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const c = new MailCatcher({ dir, secret: SECRET, port });
  await t.rejects(c.listen(), { code: 'PULSER_E_MAIL_CATCHER', message: new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}: .*EADDRINUSE`) });
  await c.close();
});
