// Mail end to end with the stand-in Odoo: a staging database restored with production's outgoing
// server first delivers to it; switched to `catch`, the mail Odoo sends lands in the catcher and
// nothing reaches the "real" SMTP server that production's config names; `block` sends nothing.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Fastify from 'fastify';
import { SMTPServer } from 'smtp-server';
import { MailCatcher } from '../../src/mail/catcher.ts';
import { mailRoutes } from '../../src/mail/routes.ts';
import { World, suffix, httpGet } from '../helpers/world.ts';
import { dropDatabase, odooEnv, sql, standInImage } from '../helpers/odoo.ts';

const BRIDGE_IP = process.env.PULSER_TEST_BRIDGE_IP ?? '172.17.0.1';

interface Received {
  from: string;
  to: string[];
  data: string;
}

/** A real SMTP server on the bridge gateway, reachable from containers: production's relay. */
async function smtpServer(): Promise<{ port: number; got: Received[]; close: () => Promise<void> }> {
  const got: Received[] = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        got.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          data: Buffer.concat(chunks).toString('utf8'),
        });
        cb();
      });
    },
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, BRIDGE_IP, () => resolve());
  });
  const port = (server.server.address() as { port: number }).port;
  return { port, got, close: () => new Promise((r) => server.close(() => r())) };
}

await standInImage();
const w = await World.create();
const name = `ml-${suffix()}`;
const real = await smtpServer();
const catcherDir = await mkdtemp(path.join(tmpdir(), 'pulser-mail-'));
const catcher = new MailCatcher({ dir: catcherDir, secret: randomBytes(16).toString('hex'), host: BRIDGE_IP, port: 0 });
await catcher.listen();
const api = Fastify();
await api.register(mailRoutes, { store: catcher.store });
const token = catcher.credentialsFor(name).pass;
t.teardown(async () => {
  await w.cleanup();
  await real.close();
  await catcher.close();
  await api.close();
  await rm(catcherDir, { recursive: true, force: true });
  await dropDatabase(`db_${name.replace(/-/g, '_')}`);
});

async function caught(): Promise<Array<{ id: string; env: string; subject: string; to: string[] }>> {
  const res = await api.inject({ url: `/api/mail?env=${name}` });
  return (res.json() as { messages: Array<{ id: string; env: string; subject: string; to: string[] }> }).messages;
}

const productionConfig = { smtp_server: BRIDGE_IP, smtp_port: real.port };
const { port, db } = await odooEnv(w, name, { config: productionConfig });
w.start({ mailCatcher: catcher });

async function odooSends(subject: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`http://127.0.0.1:${port}/standin/send-mail`, {
    method: 'POST',
    body: JSON.stringify({ from: 'sales@acme.example', to: 'customer@client.example', subject, body: `body of ${subject}` }),
    signal: AbortSignal.timeout(20_000),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function setMail(mode: string | null): Promise<void> {
  await odooEnv(w, name, { config: productionConfig, extra: mode ? [`mail: { mode: ${mode} }`] : [] });
  // keep the published port the container already has
  const file = `environments/${name}.yaml`;
  const { readFile } = await import('node:fs/promises');
  const text = await readFile(`${w.root}/${file}`, 'utf8');
  await w.writeFile(file, text.replace(/port: \d+\n  workers/, `port: ${port}\n  workers`));
}

t.test('restored with production’s server, the stand-in Odoo delivers to it', async (t) => {
  const [rec] = await w.pass(name);
  t.equal(rec!.outcome, 'applied', JSON.stringify(rec!.errors));
  t.equal((await httpGet(`http://127.0.0.1:${port}/web/health`))?.status, 200);
  await sql(db, `INSERT INTO ir_mail_server (name, smtp_host, smtp_port, smtp_encryption, sequence, active) VALUES ('production relay', $1, $2, 'none', 10, true)`, [BRIDGE_IP, real.port]);
  const sent = await odooSends('before catch');
  t.equal(sent.status, 200, JSON.stringify(sent.body));
  t.equal(sent.body.server, 'production relay');
  t.equal(real.got.length, 1, 'the real server received it');
});

t.test('switched to catch, mail goes to the catcher and never to the real server', async (t) => {
  await setMail('catch');
  const [plan] = await w.pass(name, 'plan');
  const change = plan!.plan.changes.find((c) => c.subject === `${name}/mail/servers`)!;
  t.match(change.summary, /mail catch: route all mail to pulser's catcher at host\.docker\.internal:\d+; deactivate production relay/);
  t.notOk(JSON.stringify(plan!.plan).includes(token), 'the catcher password is not in the plan');
  const [rec] = await w.pass(name);
  t.equal(rec!.outcome, 'applied', JSON.stringify(rec!.errors));
  t.notOk(JSON.stringify(rec).includes(token), 'nor anywhere in the pass record');

  const rows = await sql<{ name: string; active: boolean; smtp_user: string | null }>(db, 'SELECT name, active, smtp_user FROM ir_mail_server ORDER BY id');
  t.same(rows, [
    { name: 'production relay', active: false, smtp_user: null },
    { name: 'pulser-catcher', active: true, smtp_user: name },
  ]);
  const sent = await odooSends('after catch');
  t.equal(sent.status, 200, JSON.stringify(sent.body));
  t.equal(sent.body.server, 'pulser-catcher');
  const messages = await caught();
  t.equal(messages.length, 1, 'found through the catcher’s /api/mail');
  t.equal(messages[0]!.env, name, 'filed under the environment its SMTP login names');
  t.equal(messages[0]!.subject, 'after catch');
  const shown = (await api.inject({ url: `/api/mail/${messages[0]!.id}` })).json() as { text: string };
  t.match(shown.text, /body of after catch/);
  t.equal(real.got.length, 1, 'nothing more reached the real server');

  const [again] = await w.pass(name);
  t.equal(again!.outcome, 'in-sync', JSON.stringify(again!.plan.changes.map((c) => c.summary)));
});

t.test('block leaves no server and no odoo.conf fallback', async (t) => {
  await setMail('block');
  const [rec] = await w.pass(name);
  t.equal(rec!.outcome, 'applied', JSON.stringify(rec!.errors));
  const active = await sql(db, 'SELECT name FROM ir_mail_server WHERE active');
  t.same(active, []);
  const sent = await odooSends('while blocked');
  t.equal(sent.status, 502);
  t.equal(sent.body.error, 'Missing SMTP Server', 'Odoo finds neither a server nor an SMTP fallback');
  t.equal((await caught()).length, 1);
  t.equal(real.got.length, 1);
});

t.test('a staging environment can never deliver', async (t) => {
  await setMail('deliver');
  const [rec] = await w.pass(name, 'plan');
  const err = rec!.errors.find((e) => e.code === 'PULSER_E_MAIL_POLICY');
  t.ok(err, 'coded spec error');
  t.match(err!.message, /mail\.mode: a staging environment may not deliver/);
  t.equal(rec!.usingLastGood, true, 'the last good spec (block) stays in force');
});
