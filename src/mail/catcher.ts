// pulser's built-in mail catcher: a real SMTP server (smtp-server) that environments in
// `mail.mode: catch` send to. SMTP AUTH identifies the environment (user = environment name,
// password = a token derived from pulser's secret), and every message is filed under it.
import { SMTPServer, type SMTPServerAuthentication, type SMTPServerDataStream, type SMTPServerSession } from 'smtp-server';
import { simpleParser, type AddressObject } from 'mailparser';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { PulserError } from '../errors.ts';
import type { Logger } from '../core/log.ts';
import { DEFAULT_RETENTION, ENV_NAME, MailStore, type MailEntry, type MailRetention } from './store.ts';

export interface MailCatcherOptions {
  /** where messages are stored (pulser's state dir + `/mail`) */
  dir: string;
  /** the secret every environment's SMTP password is derived from */
  secret: string;
  /** address to listen on (default 127.0.0.1; a bridge gateway lets containers reach it) */
  host?: string;
  /** default 2525; 0 picks a free port */
  port?: number;
  /** largest message accepted, in bytes (default 10 MiB); larger ones get SMTP 552 */
  maxMessageBytes?: number;
  retention?: Partial<MailRetention>;
  log?: Logger;
}

export const DEFAULT_CATCHER_PORT = 2525;
const DEFAULT_MAX_MESSAGE = 10 * 1024 * 1024;

type SmtpError = Error & { responseCode?: number };
const smtpError = (message: string, responseCode: number): SmtpError => Object.assign(new Error(message), { responseCode });

export class MailCatcher {
  readonly store: MailStore;
  private server: SMTPServer | null = null;
  private bound: { host: string; port: number } | null = null;
  private readonly maxBytes: number;

  constructor(private readonly opts: MailCatcherOptions) {
    this.store = new MailStore(opts.dir, { ...DEFAULT_RETENTION, ...opts.retention });
    this.maxBytes = opts.maxMessageBytes ?? DEFAULT_MAX_MESSAGE;
  }

  /** The SMTP login of an environment: what the mail reconciler writes into ir_mail_server. */
  credentialsFor(env: string): { user: string; pass: string } {
    return { user: env, pass: createHmac('sha256', this.opts.secret).update(`pulser-mail-catcher:${env}`).digest('base64url').slice(0, 32) };
  }

  /** Where the catcher listens (after `listen()`). */
  address(): { host: string; port: number } {
    if (!this.bound) throw new PulserError('PULSER_E_MAIL_CATCHER', 'the mail catcher is not listening');
    return { ...this.bound };
  }

  get port(): number {
    return this.address().port;
  }

  async listen(): Promise<void> {
    if (this.server) return;
    await this.store.open((raw) => describe(raw, null));
    const server = new SMTPServer({
      name: 'pulser-mail-catcher',
      banner: 'pulser mail catcher',
      // Plain SMTP with AUTH on loopback or a Docker bridge; there is no certificate to offer.
      secure: false,
      disabledCommands: ['STARTTLS'],
      allowInsecureAuth: true,
      authOptional: false,
      authMethods: ['PLAIN', 'LOGIN'],
      size: this.maxBytes,
      disableReverseLookup: true,
      logger: false,
      maxClients: 64,
      socketTimeout: 60_000,
      closeTimeout: 5_000,
      onAuth: (auth, session, cb) => this.onAuth(auth, session, cb),
      onData: (stream, session, cb) => void this.onData(stream, session, cb),
    });
    server.on('error', (err) => this.opts.log?.warn(`mail catcher: ${err.message}`, { code: 'PULSER_E_MAIL_CATCHER' }));
    const host = this.opts.host ?? '127.0.0.1';
    await new Promise<void>((resolve, reject) => {
      const fail = (err: Error) => reject(new PulserError('PULSER_E_MAIL_CATCHER', `mail catcher cannot listen on ${host}:${this.opts.port ?? DEFAULT_CATCHER_PORT}: ${err.message}`, { cause: err }));
      server.server.once('error', fail);
      server.listen(this.opts.port ?? DEFAULT_CATCHER_PORT, host, () => {
        server.server.off('error', fail);
        resolve();
      });
    });
    const addr = server.server.address();
    this.bound = { host, port: typeof addr === 'object' && addr ? addr.port : (this.opts.port ?? DEFAULT_CATCHER_PORT) };
    this.server = server;
    this.opts.log?.info(`mail catcher listening on ${host}:${this.bound.port}`);
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = null;
    this.bound = null;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
    await this.store.flush();
  }

  private onAuth(auth: SMTPServerAuthentication, _session: SMTPServerSession, cb: (err: Error | null | undefined, response?: { user: string }) => void): void {
    const env = auth.username ?? '';
    const expected = Buffer.from(this.credentialsFor(env).pass);
    const given = Buffer.from(auth.password ?? '');
    const ok = ENV_NAME.test(env) && given.length === expected.length && timingSafeEqual(given, expected);
    if (!ok) {
      // Neither the user nor the password goes to the log: the user can be a mistyped secret.
      this.opts.log?.warn('mail catcher: authentication failed', { method: auth.method });
      cb(smtpError('Authentication failed: the user is the environment name, the password its catcher token', 535));
      return;
    }
    cb(null, { user: env });
  }

  private async onData(stream: SMTPServerDataStream, session: SMTPServerSession, cb: (err?: Error | null, message?: string) => void): Promise<void> {
    const chunks: Buffer[] = [];
    let size = 0;
    stream.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= this.maxBytes) chunks.push(c);
    });
    try {
      await new Promise<void>((resolve, reject) => {
        stream.once('end', resolve);
        stream.once('error', reject);
      });
      if (stream.sizeExceeded || size > this.maxBytes) {
        cb(smtpError(`Message exceeds the fixed maximum message size of ${this.maxBytes} bytes`, 552));
        return;
      }
      const env = String(session.user);
      const raw = Buffer.concat(chunks);
      const described = await describe(raw, session);
      const entry = await this.store.add(env, raw, () => described);
      this.opts.log?.debug(`mail catcher: caught a message for ${env}`, { id: entry.id, size: entry.size });
      cb(null, `Message caught as ${entry.id}`);
    } catch (err) {
      this.opts.log?.warn(`mail catcher: could not store a message: ${(err as Error).message}`, { code: 'PULSER_E_MAIL_CATCHER' });
      cb(smtpError('Could not store the message, try again later', 451));
    }
  }
}

function addresses(field: AddressObject | AddressObject[] | undefined): string[] {
  const list = field === undefined ? [] : Array.isArray(field) ? field : [field];
  const out: string[] = [];
  const walk = (values: AddressObject['value']) => {
    for (const v of values) {
      if (v.group) walk(v.group);
      else if (v.address) out.push(v.address);
    }
  };
  for (const f of list) walk(f.value);
  return out;
}

/** The index entry of a message; without the SMTP session (recovery), Bcc is what the headers say. */
async function describe(raw: Buffer, session: SMTPServerSession | null): Promise<Omit<MailEntry, 'id' | 'env' | 'size' | 'receivedAt'>> {
  const parsed = await simpleParser(raw, { skipImageLinks: true, skipTextToHtml: true, skipTextLinks: true });
  const to = addresses(parsed.to);
  const cc = addresses(parsed.cc);
  const named = new Set([...to, ...cc].map((a) => a.toLowerCase()));
  const bcc = [...addresses(parsed.bcc), ...(session?.envelope.rcptTo.map((r) => r.address) ?? [])].filter((a, i, all) => !named.has(a.toLowerCase()) && all.findIndex((b) => b.toLowerCase() === a.toLowerCase()) === i);
  const envelopeFrom = session?.envelope.mailFrom ? session.envelope.mailFrom.address : null;
  return {
    from: addresses(parsed.from)[0] ?? envelopeFrom,
    to,
    cc,
    bcc,
    subject: parsed.subject ?? '',
    date: (parsed.date && !Number.isNaN(parsed.date.getTime()) ? parsed.date : new Date()).toISOString(),
    hasHtml: typeof parsed.html === 'string' && parsed.html.length > 0,
    attachments: parsed.attachments.map((a) => ({ filename: a.filename ?? null, contentType: a.contentType, size: a.size })),
    messageId: parsed.messageId ?? null,
  };
}

/** The full view of a stored message: headers, text, html and attachments (without content). */
export async function readMessage(raw: Buffer): Promise<{ headers: Record<string, string>; text: string | null; html: string | null; attachments: { filename: string | null; contentType: string; size: number }[] }> {
  const parsed = await simpleParser(raw, { skipImageLinks: true, skipTextToHtml: true, skipTextLinks: true });
  // A Map, then fromEntries: a header named __proto__ stays a plain key.
  const headers = new Map<string, string>();
  for (const line of parsed.headerLines) {
    const value = line.line.slice(line.line.indexOf(':') + 1).trim();
    const had = headers.get(line.key);
    headers.set(line.key, had === undefined ? value : `${had}, ${value}`);
  }
  return {
    headers: Object.fromEntries(headers),
    text: parsed.text ?? null,
    html: typeof parsed.html === 'string' ? parsed.html : null,
    attachments: parsed.attachments.map((a) => ({ filename: a.filename ?? null, contentType: a.contentType, size: a.size })),
  };
}
