// Outgoing mail the way Odoo's mail queue sends it: `ir.mail_server._find_mail_server` picks an
// active server (from_filter matching the sender, then the notification address, then the first
// server without a filter, then any), and without one falls back to odoo.conf's smtp_* options.
import { lookup } from 'node:dns/promises';
import nodemailer from 'nodemailer';
import type { Query } from './loading.ts';
import type { OdooLog } from './log.ts';

export interface MailServerRow {
  id: number;
  name: string;
  from_filter: string | null;
  smtp_host: string | null;
  smtp_port: number | null;
  smtp_user: string | null;
  smtp_pass: string | null;
  smtp_encryption: string;
  sequence: number;
  active: boolean;
}

export interface OutgoingMail {
  from: string;
  to: string[];
  subject: string;
  body: string;
}

export interface SmtpChoice {
  server: MailServerRow | null;
  from: string;
  host: string | null;
  port: number;
  user: string | null;
  password: string | null;
  encryption: 'none' | 'starttls' | 'ssl';
}

function normalize(email: string | null | undefined): string | null {
  if (!email) return null;
  const m = /<([^>]+)>/.exec(email);
  return (m ? m[1]! : email).trim().toLowerCase() || null;
}

function domainOf(email: string | null): string | null {
  return email && email.includes('@') ? email.split('@').pop()!.toLowerCase() : null;
}

function matches(server: MailServerRow, target: string, byDomain: boolean): boolean {
  if (!server.from_filter) return false;
  return server.from_filter.split(',').some((f) => (byDomain ? f.trim().toLowerCase() === target : normalize(f) === target));
}

/** Servers are expected ordered by sequence (then id), as `search([], order='sequence')` returns them. */
export function findMailServer(servers: MailServerRow[], emailFrom: string, notificationsEmail: string | null): { server: MailServerRow | null; from: string } {
  const active = servers.filter((s) => s.active);
  const from = normalize(emailFrom);
  const fromDomain = domainOf(from);
  const first = (target: string | null, byDomain: boolean) => (target ? active.find((s) => matches(s, target, byDomain)) : undefined);
  const direct = first(from, false) ?? first(fromDomain, true);
  if (direct) return { server: direct, from: emailFrom };
  const notif = normalize(notificationsEmail);
  const viaNotif = first(notif, false) ?? first(domainOf(notif), true);
  if (viaNotif) return { server: viaNotif, from: notificationsEmail! };
  const unfiltered = active.find((s) => !s.from_filter);
  if (unfiltered) return { server: unfiltered, from: notificationsEmail ?? emailFrom };
  if (active[0]) return { server: active[0], from: notificationsEmail ?? emailFrom };
  return { server: null, from: emailFrom };
}

/** Where `connect()` would go: the chosen server, or the odoo.conf options (default localhost:25). */
export function smtpChoice(pick: { server: MailServerRow | null; from: string }, conf: Record<string, string | null>): SmtpChoice {
  const s = pick.server;
  if (s) {
    const enc = s.smtp_encryption === 'ssl' || s.smtp_encryption === 'starttls' ? s.smtp_encryption : 'none';
    return { server: s, from: pick.from, host: s.smtp_host, port: s.smtp_port ?? 25, user: s.smtp_user, password: s.smtp_pass, encryption: enc };
  }
  return {
    server: null,
    from: pick.from,
    // Odoo's default is localhost; `smtp_server = False` in odoo.conf leaves no fallback at all.
    host: 'smtp_server' in conf ? (conf.smtp_server ?? null) : 'localhost',
    port: Number(conf.smtp_port ?? 25),
    user: conf.smtp_user ?? null,
    password: conf.smtp_password ?? null,
    encryption: conf.smtp_ssl === 'True' ? 'starttls' : 'none',
  };
}

export async function readMailServers(q: Query): Promise<MailServerRow[]> {
  return q<MailServerRow>(
    'SELECT id, name, from_filter, smtp_host, smtp_port, smtp_user, smtp_pass, smtp_encryption, sequence, active FROM ir_mail_server ORDER BY sequence, id',
  );
}

export async function notificationsEmail(q: Query): Promise<string | null> {
  const rows = await q<{ key: string; value: string }>(`SELECT key, value FROM ir_config_parameter WHERE key IN ('mail.default.from', 'mail.catchall.domain')`);
  const p = Object.fromEntries(rows.map((r) => [r.key, r.value]));
  const from = p['mail.default.from'] ?? 'notifications';
  if (from.includes('@')) return from;
  return p['mail.catchall.domain'] ? `${from}@${p['mail.catchall.domain']}` : null;
}

export interface SendResult {
  sent: boolean;
  server: string | null;
  serverId: number | null;
  host: string | null;
  port: number;
  error?: string;
}

/** Sends one message like mail.mail._send: pick a server, connect, authenticate, send, quit. */
export async function sendMail(q: Query, conf: Record<string, string | null>, mail: OutgoingMail, log: OdooLog): Promise<SendResult> {
  const choice = smtpChoice(findMailServer(await readMailServers(q), mail.from, await notificationsEmail(q)), conf);
  const base = { server: choice.server?.name ?? null, serverId: choice.server?.id ?? null, host: choice.host, port: choice.port };
  if (!choice.host) {
    log.error('odoo.addons.base.models.ir_mail_server', 'Missing SMTP Server\nPlease define at least one SMTP server, or provide the SMTP parameters explicitly.');
    return { ...base, sent: false, error: 'Missing SMTP Server' };
  }
  // Python's smtplib resolves through getaddrinfo (so /etc/hosts, where Docker writes
  // host.docker.internal); nodemailer would ask DNS servers directly.
  let address: string;
  try {
    address = (await lookup(choice.host)).address;
  } catch (err) {
    log.info('odoo.addons.base.models.ir_mail_server', `Mail delivery failed via SMTP server '${choice.host}'.\ngaierror: ${(err as Error).message}`);
    return { ...base, sent: false, error: (err as Error).message };
  }
  const transport = nodemailer.createTransport({
    host: address,
    name: 'odoo',
    port: choice.port,
    secure: choice.encryption === 'ssl',
    requireTLS: choice.encryption === 'starttls',
    ignoreTLS: choice.encryption === 'none',
    ...(choice.user ? { auth: { user: choice.user, pass: choice.password ?? '' } } : {}),
    connectionTimeout: 10_000,
    greetingTimeout: 10_000,
    socketTimeout: 30_000,
    tls: { rejectUnauthorized: false, servername: choice.host },
  });
  try {
    await transport.sendMail({ from: choice.from, to: mail.to, subject: mail.subject, text: mail.body });
    const via = choice.server ? `mail server ID #${choice.server.id}` : 'odoo-bin arguments';
    log.info('odoo.addons.mail.models.mail_mail', `Sent batch 1 emails via ${via}`);
    return { ...base, sent: true };
  } catch (err) {
    const msg = (err as Error).message;
    log.info('odoo.addons.base.models.ir_mail_server', `Mail delivery failed via SMTP server '${choice.host}'.\n${(err as Error).name}: ${msg}`);
    log.log('WARNING', 'odoo.addons.mail.models.mail_mail', `Mail with ID 1 and Message-Id None from ${mail.from} failed: ${msg}`);
    return { ...base, sent: false, error: msg };
  } finally {
    transport.close();
  }
}
