// The backups planner, pure: a due backup is a create, an expired one a delete, a due drill a
// run; and before a disruptive change to production, a backup that gates the whole pass.
import type { Change, Finding, Plan } from '../../src/core/reconciler.ts';
import type { DesiredEnv } from '../../src/spec/model.ts';
import { PulserError, type ErrorRecord } from '../../src/errors.ts';
import type { Backup } from '../../src/spec/types.gen.ts';
import { backupId } from './commands.ts';
import { applyRetention, type RetentionPolicy } from './retention.ts';
import { scheduleState, validateSchedule } from './schedule.ts';
import type { Manifest } from './manifest.ts';

export const RECONCILER = 'backups';

export interface ObservedBackup {
  id: string;
  at: string;
  kind: Manifest['kind'];
  bytes: number;
  durationMs: number;
  drill: { ok: boolean; at: string; durationMs: number } | null;
}

export interface BackupsObserved {
  /** complete pulser backups of the environment, newest first */
  backups: ObservedBackup[];
  /** why the destination could not be listed */
  error: ErrorRecord | null;
}

export interface BackupPolicy {
  schedule: string;
  timezone: string;
  retention: RetentionPolicy;
  filestore: boolean;
  destination: string;
  verify: 'daily' | 'weekly' | 'never';
}

/** The environment's backup policy with defaults applied, or null when it declares none. */
export function backupPolicy(desired: DesiredEnv): BackupPolicy | null {
  const b: Backup | undefined = desired.spec.backup;
  if (!b) return null;
  return {
    schedule: b.schedule,
    timezone: b.timezone ?? 'UTC',
    retention: { daily: b.retention?.daily ?? 7, weekly: b.retention?.weekly ?? 4, monthly: b.retention?.monthly ?? 3 },
    filestore: b.filestore ?? true,
    destination: b.destination.path,
    verify: b.verify ?? 'weekly',
  };
}

const DRILL_PERIOD_MS = { daily: 86_400_000, weekly: 7 * 86_400_000 } as const;

function change(desired: DesiredEnv, c: Omit<Change, 'reconciler' | 'subject'> & { id: string }): Change {
  const { id, ...rest } = c;
  return { subject: `${desired.name}/backups/${id}`, reconciler: RECONCILER, ...rest };
}

export function planBackups(desired: DesiredEnv, observed: BackupsObserved, now: Date): Plan {
  const policy = backupPolicy(desired);
  const changes: Change[] = [];
  const findings: Finding[] = [];
  if (!policy) return { changes, findings };
  const subject = `${desired.name}/backups`;
  try {
    validateSchedule(policy.schedule, policy.timezone);
  } catch (err) {
    findings.push({ subject, error: (err as PulserError).toJSON() });
    return { changes, findings };
  }
  if (observed.error) {
    findings.push({ subject, error: observed.error });
    return { changes, findings };
  }
  const newest = observed.backups[0] ?? null;
  const state = scheduleState(policy.schedule, policy.timezone, now, newest?.at ?? null);
  const candidates = observed.backups.map((b) => ({ id: b.id, at: b.at }));
  if (state.due) {
    const id = backupId(desired.name, now);
    candidates.unshift({ id, at: now.toISOString() });
    changes.push(
      change(desired, {
        id,
        action: 'create',
        risk: 'safe',
        summary: `backup ${id}`,
        diff: { newest: { before: newest?.id ?? null, after: id } },
        reason: newest ? `scheduled at ${state.slot} (${policy.schedule} ${policy.timezone}); the newest backup is from ${newest.at}` : 'the environment has no backup yet',
        op: { kind: 'backup', id, at: now.toISOString(), backupKind: 'scheduled' },
      }),
    );
  }
  if (policy.verify !== 'never' && candidates.length > 0) {
    const lastDrill = observed.backups.map((b) => b.drill?.at).filter((x): x is string => !!x).sort().at(-1) ?? null;
    if (!lastDrill || now.getTime() - Date.parse(lastDrill) >= DRILL_PERIOD_MS[policy.verify]) {
      changes.push(
        change(desired, {
          id: 'drill',
          action: 'run',
          risk: 'safe',
          summary: `restore drill of the newest backup`,
          diff: { lastDrill: { before: lastDrill, after: now.toISOString() } },
          reason: lastDrill ? `verify: ${policy.verify}; the last drill ran at ${lastDrill}` : `verify: ${policy.verify}; no drill has run yet`,
          op: { kind: 'drill' },
        }),
      );
    }
  }
  const { expire } = applyRetention(candidates, policy.retention, policy.timezone);
  for (const b of expire) {
    changes.push(
      change(desired, {
        id: b.id,
        action: 'delete',
        risk: 'destructive',
        summary: `delete expired backup ${b.id}`,
        diff: { backup: { before: b.id, after: null } },
        reason: `outside retention daily ${policy.retention.daily}, weekly ${policy.retention.weekly}, monthly ${policy.retention.monthly} (${policy.timezone})`,
        op: { kind: 'expire', id: b.id },
      }),
    );
  }
  return { changes, findings };
}

/**
 * Before a disruptive or destructive change to a production environment, a backup runs first
 * and gates the pass: when it fails, nothing after it is applied. A scheduled backup already in
 * the plan is moved to the front and serves as that backup.
 */
export function prepareBackups(desired: DesiredEnv, changes: Change[], now: Date): Change[] {
  if (desired.tier !== 'production' || !backupPolicy(desired)) return changes;
  const risky = changes.filter((c) => c.reconciler !== RECONCILER && c.risk !== 'safe');
  if (risky.length === 0) return changes;
  const protects = risky.map((c) => `${c.subject}: ${c.summary}`).join('; ');
  const scheduled = changes.find((c) => c.reconciler === RECONCILER && c.op.kind === 'backup');
  const id = backupId(desired.name, now);
  const gate: Change = scheduled
    ? { ...scheduled, gate: true, reason: `${scheduled.reason}; also the pre-change backup of: ${protects}`, op: { ...scheduled.op, backupKind: 'pre-change', protects } }
    : change(desired, {
        id,
        action: 'create',
        risk: 'safe',
        summary: `pre-change backup ${id}`,
        diff: { backup: { before: null, after: id } },
        reason: `production: a backup is taken before ${protects}`,
        op: { kind: 'backup', id, at: now.toISOString(), backupKind: 'pre-change', protects },
      });
  return [{ ...gate, gate: true }, ...changes.filter((c) => c !== scheduled)];
}
