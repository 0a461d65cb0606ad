// The mail planner (pure): which ir_mail_server rows must be active for the environment's mail
// mode. catch: only pulser's catcher row; block: none; deliver: the database's own servers (those
// pulser switched off are switched back on) and never the catcher.
import type { Finding, Plan } from '../../src/core/reconciler.ts';
import type { DesiredEnv } from '../../src/spec/model.ts';
import { PulserError } from '../../src/errors.ts';

export const RECONCILER = 'mail';
export const CATCHER_SERVER_NAME = 'pulser-catcher';
export type MailMode = 'deliver' | 'catch' | 'block';

/** A row of ir_mail_server as observed; the password itself is never kept. */
export interface ServerObserved {
  id: number;
  name: string;
  smtpHost: string | null;
  smtpPort: number | null;
  smtpUser: string | null;
  encryption: string;
  fromFilter: string | null;
  sequence: number;
  active: boolean;
  /** for the catcher row: host, port and credentials are those of the catcher right now */
  catcherCurrent?: boolean;
}

export interface MailObserved {
  declared: boolean;
  /** null: no Odoo tables yet (created later in the pass, by Odoo or the addons reconciler) */
  servers: ServerObserved[] | null;
  /** ids pulser deactivated for catch/block, to reactivate on deliver */
  deactivatedByPulser: number[];
  enforcedMode: string | null;
  catcher: { host: string; port: number } | null;
}

export interface MailTarget {
  activate: number[];
  deactivate: number[];
  catcher: 'keep' | 'write' | 'deactivate' | 'none';
}

/** What must change in ir_mail_server for `mode`; empty lists and `keep`/`none` mean in sync. */
export function mailTarget(mode: MailMode, observed: MailObserved): MailTarget {
  const servers = observed.servers ?? [];
  const own = servers.filter((s) => s.name !== CATCHER_SERVER_NAME);
  const catcherRow = servers.find((s) => s.name === CATCHER_SERVER_NAME);
  if (mode === 'catch') {
    const current = catcherRow && catcherRow.active && catcherRow.catcherCurrent && catcherRow.sequence === 0 && !catcherRow.fromFilter;
    return { activate: [], deactivate: own.filter((s) => s.active).map((s) => s.id), catcher: current ? 'keep' : 'write' };
  }
  const catcher = catcherRow?.active ? 'deactivate' : 'none';
  if (mode === 'block') return { activate: [], deactivate: own.filter((s) => s.active).map((s) => s.id), catcher };
  const back = own.filter((s) => !s.active && observed.deactivatedByPulser.includes(s.id)).map((s) => s.id);
  return { activate: back, deactivate: [], catcher };
}

function describe(servers: ServerObserved[], ids: number[]): string {
  return ids.map((id) => {
    const s = servers.find((x) => x.id === id);
    return s ? `${s.name} (${s.smtpHost ?? '?'}:${s.smtpPort ?? 25})` : `#${id}`;
  }).join(', ');
}

export function planMail(desired: DesiredEnv, observed: MailObserved): Plan {
  const mail = desired.spec.mail;
  if (!mail || !observed.declared) return { changes: [], findings: [] };
  const env = desired.name;
  const mode = mail.mode as MailMode;
  const findings: Finding[] = [];
  if (mode === 'catch' && !observed.catcher) {
    findings.push({ subject: `${env}/mail/servers`, error: new PulserError('PULSER_E_MAIL_CATCHER_OFF', `mail.mode is catch but this pulser runs no mail catcher; ${env}'s outgoing servers are left as they are`).toJSON() });
    return { changes: [], findings };
  }
  const servers = observed.servers;
  const target = mailTarget(mode, observed);
  const pending = servers === null || target.activate.length > 0 || target.deactivate.length > 0 || target.catcher === 'write' || target.catcher === 'deactivate' || observed.enforcedMode !== mode;
  if (!pending) return { changes: [], findings };
  const parts: string[] = [];
  if (servers === null) parts.push('database not initialised yet');
  if (target.catcher === 'write') parts.push(`route all mail to pulser's catcher at ${observed.catcher!.host}:${observed.catcher!.port}`);
  if (target.catcher === 'deactivate') parts.push(`deactivate ${CATCHER_SERVER_NAME}`);
  if (target.deactivate.length) parts.push(`deactivate ${describe(servers ?? [], target.deactivate)}`);
  if (target.activate.length) parts.push(`reactivate ${describe(servers ?? [], target.activate)}`);
  const before = (servers ?? []).filter((s) => s.active).map((s) => s.name).sort();
  const after = mode === 'catch' ? [CATCHER_SERVER_NAME] : mode === 'block' ? [] : (servers ?? []).filter((s) => s.name !== CATCHER_SERVER_NAME && (s.active || target.activate.includes(s.id))).map((s) => s.name).sort();
  return {
    changes: [
      {
        subject: `${env}/mail/servers`,
        reconciler: RECONCILER,
        action: 'update',
        risk: mode === 'deliver' ? 'disruptive' : 'safe',
        summary: `mail ${mode}: ${parts.join('; ') || `record mode ${mode}`}`,
        diff: { activeServers: { before, after }, mode: { before: observed.enforcedMode, after: mode } },
        reason: `mail.mode is ${mode}`,
        op: { kind: 'enforce', mode },
      },
    ],
    findings,
  };
}
