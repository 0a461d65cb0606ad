// The backups planner, pure: a due backup is a create, an expired one a delete, a due drill a
// run; and before a disruptive change to production, a backup that gates the whole pass.
import type { Change, Finding, Plan } from '../../src/core/reconciler.ts';
import type { DesiredEnv } from '../../src/spec/model.ts';
import { PulserError, type ErrorRecord } from '../../src/errors.ts';
import type { Backup, BackupDestination } from '../../src/spec/types.gen.ts';
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
  destination: BackupDestination;
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
    destination: b.destination,
    verify: b.verify ?? 'weekly',
  };
}

const DRILL_PERIOD_MS = { daily: 86_400_000, weekly: 7 * 86_400_000 } as const;

function change(desired: DesiredEnv, c: Omit<Change, 'reconciler' | 'subject'> & { id: string }): Change {
  const { id, ...rest } = c;
  return { subject: `${desired.name}/backups/${id}`, reconciler: RECONCILER, ...rest };
}

/** A backup a risky change of the same pass asks for: it is taken first and gates the pass. */
export interface PreChange {
  protects: string;
}

function backupChange(desired: DesiredEnv, now: Date, reason: string, pre: PreChange | undefined, scheduled: boolean): Change {
  const id = backupId(desired.name, now);
  return change(desired, {
    id,
    action: 'create',
    risk: 'safe',
    summary: pre && !scheduled ? `pre-change backup ${id}` : `backup ${id}`,
    diff: { backup: { before: null, after: id } },
    reason: pre ? (scheduled ? `${reason}; also the pre-change backup of: ${pre.protects}` : `production: a backup is taken before ${pre.protects}`) : reason,
    op: { kind: 'backup', id, at: now.toISOString(), backupKind: pre ? 'pre-change' : 'scheduled', ...(pre ? { protects: pre.protects } : {}) },
    ...(pre ? { gate: true } : {}),
  });
}

/**
 * Due backups, drills and expirations. With `pre`, a backup is taken now whatever the schedule
 * says, and retention and drills are planned with that backup counted, so the pass converges.
 */
export function planBackups(desired: DesiredEnv, observed: BackupsObserved, now: Date, pre?: PreChange): Plan {
  const policy = backupPolicy(desired);
  const changes: Change[] = [];
  const findings: Finding[] = [];
  if (!policy) return { changes, findings };
  const subject = `${desired.name}/backups`;
  // A backup that gates a risky change is taken even when the rest cannot be planned: its own
  // failure (a destination that cannot be written) is what stops the pass.
  const preOnly = (error: ErrorRecord): Plan => {
    findings.push({ subject, error });
    if (pre) changes.push(backupChange(desired, now, '', pre, false));
    return { changes, findings };
  };
  try {
    validateSchedule(policy.schedule, policy.timezone);
  } catch (err) {
    return preOnly((err as PulserError).toJSON());
  }
  if (observed.error) return preOnly(observed.error);
  const newest = observed.backups[0] ?? null;
  const state = scheduleState(policy.schedule, policy.timezone, now, newest?.at ?? null);
  const candidates = observed.backups.map((b) => ({ id: b.id, at: b.at }));
  if (state.due || pre) {
    candidates.unshift({ id: backupId(desired.name, now), at: now.toISOString() });
    const reason = newest ? `scheduled at ${state.slot} (${policy.schedule} ${policy.timezone}); the newest backup is from ${newest.at}` : 'the environment has no backup yet';
    changes.push(backupChange(desired, now, reason, pre, state.due));
  }
  const { expire } = applyRetention(candidates, policy.retention, policy.timezone);
  const expiring = new Set(expire.map((b) => b.id));
  if (policy.verify !== 'never' && candidates.length > 0) {
    // Only drills of backups that are kept count: a drilled backup expiring takes its proof along.
    const lastDrill =
      observed.backups
        .filter((b) => !expiring.has(b.id))
        .map((b) => b.drill?.at)
        .filter((x): x is string => !!x)
        .sort()
        .at(-1) ?? null;
    if (!lastDrill || now.getTime() - Date.parse(lastDrill) >= DRILL_PERIOD_MS[policy.verify]) {
      changes.push(
        change(desired, {
          id: 'drill',
          action: 'run',
          risk: 'safe',
          summary: `restore drill of the newest backup`,
          diff: { lastDrill: { before: lastDrill, after: now.toISOString() } },
          reason: lastDrill ? `verify: ${policy.verify}; the last drill of a kept backup ran at ${lastDrill}` : `verify: ${policy.verify}; no kept backup has been drilled yet`,
          op: { kind: 'drill' },
        }),
      );
    }
  }
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
 * and gates the pass: when it fails, nothing after it is applied. The environment's own backup
 * changes are planned again with that backup counted (a scheduled one due now serves as it),
 * and it is moved to the front.
 */
export function prepareBackups(desired: DesiredEnv, changes: Change[], now: Date, observed: BackupsObserved): Change[] {
  if (desired.tier !== 'production' || !backupPolicy(desired)) return changes;
  const risky = changes.filter((c) => c.reconciler !== RECONCILER && c.risk !== 'safe');
  if (risky.length === 0) return changes;
  const protects = risky.map((c) => `${c.subject}: ${c.summary}`).join('; ');
  const own = planBackups(desired, observed, now, { protects }).changes;
  const gate = own.filter((c) => c.gate);
  const rest = own.filter((c) => !c.gate);
  const others = changes.filter((c) => c.reconciler !== RECONCILER);
  return [...gate, ...others, ...rest];
}
