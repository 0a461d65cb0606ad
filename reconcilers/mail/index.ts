// The mail reconciler: enforces the environment's mail mode in its database (ir_mail_server and
// pulser's own ir_config_parameter keys). The odoo.conf SMTP fallback is cut by the container
// design; this reconciler owns the database side. The catcher password never leaves apply.
import type { ApplyResult, Change, ReconcileContext, Reconciler } from '../../src/core/reconciler.ts';
import { asPulserError, PulserError } from '../../src/errors.ts';
import { envDb } from '../../src/odoo/db.ts';
import type { Db } from '../../src/drivers/index.ts';
import { CATCHER_SERVER_NAME, mailTarget, planMail, RECONCILER, type MailMode, type MailObserved, type ServerObserved } from './plan.ts';
import { MAIL_SQL, type CatcherRow } from './sql.ts';

export { planMail, type MailObserved } from './plan.ts';

const DEFAULT_CATCHER_HOST = 'host.docker.internal';

function catcherRow(ctx: ReconcileContext): CatcherRow | null {
  const route = ctx.mailCatcher;
  if (!route) return null;
  const cred = route.credentialsFor(ctx.desired.name);
  return { host: ctx.desired.spec.mail?.catcher_host ?? DEFAULT_CATCHER_HOST, port: route.port, user: cred.user, password: cred.pass };
}

/** ir_mail_server rows and pulser's mail keys; `lock` takes the rows for update inside apply's transaction. */
async function readMailState(q: Db['query'], route: CatcherRow | null, lock: boolean): Promise<MailObserved> {
  const rows = await q<Record<string, unknown>>(lock ? MAIL_SQL.serversForUpdate : MAIL_SQL.servers, [route?.host ?? null, route?.port ?? null, route?.user ?? null, route?.password ?? null]);
  const params = await q<{ key: string; value: string }>(MAIL_SQL.params);
  const p = Object.fromEntries(params.map((x) => [x.key, x.value]));
  const servers: ServerObserved[] = rows.map((r) => ({
    id: Number(r.id),
    name: String(r.name),
    smtpHost: (r.smtp_host as string | null) ?? null,
    smtpPort: r.smtp_port === null ? null : Number(r.smtp_port),
    smtpUser: (r.smtp_user as string | null) ?? null,
    encryption: String(r.smtp_encryption),
    fromFilter: (r.from_filter as string | null) ?? null,
    sequence: Number(r.sequence),
    active: Boolean(r.active),
    ...(r.name === CATCHER_SERVER_NAME ? { catcherCurrent: Boolean(r.catcher_current) } : {}),
  }));
  return {
    declared: true,
    servers,
    deactivatedByPulser: p[MAIL_SQL.deactivatedKey] ? (JSON.parse(p[MAIL_SQL.deactivatedKey]) as number[]) : [],
    enforcedMode: p[MAIL_SQL.modeKey] ?? null,
    catcher: route ? { host: route.host, port: route.port } : null,
  };
}

async function observe(ctx: ReconcileContext): Promise<MailObserved> {
  const route = catcherRow(ctx);
  const empty: MailObserved = { declared: Boolean(ctx.desired.spec.mail), servers: null, deactivatedByPulser: [], enforcedMode: null, catcher: route ? { host: route.host, port: route.port } : null };
  if (!ctx.desired.spec.mail) return empty;
  const db = envDb(ctx.drivers, ctx.desired);
  try {
    const [{ ready } = { ready: false }] = await db.query<{ ready: boolean }>(MAIL_SQL.tablesExist);
    return ready ? await readMailState((sql, params) => db.query(sql, params), route, false) : empty;
  } catch (err) {
    if (asPulserError(err).code === 'PULSER_E_DB_MISSING') return empty;
    throw err;
  }
}

async function applyEnforce(ctx: ReconcileContext, mode: MailMode): Promise<ApplyResult> {
  const route = catcherRow(ctx);
  if (mode === 'catch' && !route) throw new PulserError('PULSER_E_MAIL_CATCHER_OFF', 'mail.mode is catch but this pulser runs no mail catcher');
  const db = envDb(ctx.drivers, ctx.desired);
  const detail = await db.transaction(async (q) => {
    const observed = await readMailState(q, route, true);
    const target = mailTarget(mode, observed);
    if (target.deactivate.length) await q(MAIL_SQL.setActive, [target.deactivate, false]);
    if (target.activate.length) await q(MAIL_SQL.setActive, [target.activate, true]);
    if (target.catcher === 'deactivate') await q(MAIL_SQL.deactivateCatcher, [CATCHER_SERVER_NAME]);
    if (target.catcher === 'write' && route) {
      const updated = await q(MAIL_SQL.updateCatcher, [CATCHER_SERVER_NAME, route.host, route.port, route.user, route.password]);
      if (updated.length === 0) await q(MAIL_SQL.insertCatcher, [CATCHER_SERVER_NAME, route.host, route.port, route.user, route.password]);
    }
    const remembered = mode === 'deliver' ? [] : [...new Set([...observed.deactivatedByPulser, ...target.deactivate])].sort((a, b) => a - b);
    await q(MAIL_SQL.setParam, [MAIL_SQL.deactivatedKey, JSON.stringify(remembered)]);
    await q(MAIL_SQL.setParam, [MAIL_SQL.modeKey, mode]);
    return { mode, deactivated: target.deactivate, reactivated: target.activate, catcher: target.catcher };
  });
  return { outcome: 'applied', output: `mail ${mode} enforced`, detail };
}

export const mail: Reconciler<MailObserved> = {
  name: RECONCILER,
  dependsOn: ['addons'],
  observe,
  plan: (desired, observed) => planMail(desired, observed),
  summarize(observed) {
    if (!observed.declared) return {};
    return { mode: observed.enforcedMode, activeServers: (observed.servers ?? []).filter((s) => s.active).map((s) => s.name) };
  },
  async apply(ctx, change: Change) {
    if (change.op.kind !== 'enforce') throw new PulserError('PULSER_E_INTERNAL', `mail: unknown operation ${String(change.op.kind)}`);
    return applyEnforce(ctx, change.op.mode as MailMode);
  },
};
