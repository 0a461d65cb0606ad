// The backups reconciler: observes the environment's backups at its destination, plans due
// backups, drills and expirations (plan.ts), and applies one of them at a time.
import type { ApplyResult, Change, ReconcileContext, Reconciler } from '../../src/core/reconciler.ts';
import { asPulserError, PulserError } from '../../src/errors.ts';
import { backupPolicy, planBackups, prepareBackups, RECONCILER, type BackupsObserved } from './plan.ts';
import type { BackupEntry, BackupStore } from './store.ts';
import { storeFor } from './store-sftp.ts';
import { takeBackup, formatBytes } from './take.ts';
import { drill } from './restore.ts';
import type { Manifest } from './manifest.ts';

export { planBackups, prepareBackups, backupPolicy, type BackupsObserved } from './plan.ts';
export { LocalBackupStore, type BackupEntry, type BackupStore } from './store.ts';
export { SftpBackupStore, storeFor } from './store-sftp.ts';
export { takeBackup } from './take.ts';
export { drill } from './restore.ts';
export { restoreToEnvironment } from './recover.ts';
export { backupId, parseBackupId } from './commands.ts';

/** Facts shown in status and exported as metrics. */
export type BackupFacts = {
  lastBackup: { id: string; at: string; size: number; durationSeconds: number; verified: boolean | null } | null;
  lastDrill: { backupId: string; at: string; ok: boolean; durationSeconds: number } | null;
  count: number;
};

export function storeOf(ctx: Pick<ReconcileContext, 'desired' | 'drivers'>): BackupStore {
  const policy = backupPolicy(ctx.desired);
  if (!policy) throw new PulserError('PULSER_E_BACKUP_POLICY', `environment ${ctx.desired.name} has no backup section`);
  return storeFor(policy.destination, ctx.drivers);
}

export function observedOf(entries: BackupEntry[]): BackupsObserved['backups'] {
  return entries.map((e) => ({
    id: e.manifest.id,
    at: e.manifest.at,
    kind: e.manifest.kind,
    bytes: e.bytes,
    durationMs: e.manifest.durationsMs.total,
    drill: e.drill ? { ok: e.drill.ok, at: e.drill.at, durationMs: e.drill.durationMs } : null,
  }));
}

async function observe(ctx: ReconcileContext): Promise<BackupsObserved> {
  if (!backupPolicy(ctx.desired)) return { backups: [], error: null };
  try {
    return { backups: observedOf(await storeOf(ctx).list(ctx.desired.name)), error: null };
  } catch (err) {
    return { backups: [], error: asPulserError(err).toJSON() };
  }
}

async function apply(ctx: ReconcileContext, c: Change): Promise<ApplyResult> {
  const store = storeOf(ctx);
  switch (c.op.kind) {
    case 'backup': {
      const entry = await takeBackup(
        { desired: ctx.desired, drivers: ctx.drivers, store, commit: ctx.commit ?? 'unknown', progress: ctx.progress, signal: ctx.signal },
        { id: String(c.op.id), at: new Date(String(c.op.at)), kind: c.op.backupKind as Manifest['kind'], reason: String(c.op.protects ?? c.reason) },
      );
      return {
        outcome: 'applied',
        output: `${entry.manifest.id}: ${formatBytes(entry.bytes)} in ${(entry.manifest.durationsMs.total / 1000).toFixed(1)} s`,
        detail: { id: entry.manifest.id, bytes: entry.bytes, sha256: entry.manifest.files.dump.sha256, durationsMs: entry.manifest.durationsMs },
      };
    }
    case 'drill': {
      const [newest] = await store.list(ctx.desired.name);
      if (!newest) throw new PulserError('PULSER_E_BACKUP_NOT_FOUND', `${ctx.desired.name} has no backup to drill`);
      const rec = await drill({ desired: ctx.desired, drivers: ctx.drivers, store, progress: ctx.progress, signal: ctx.signal }, newest);
      const detail = { ...rec };
      if (!rec.ok) return { outcome: 'failed', error: new PulserError(rec.error?.code ?? 'PULSER_E_RESTORE_FAILED', rec.error?.message ?? 'drill failed').toJSON(), detail };
      return { outcome: 'applied', output: `drill of ${rec.backupId}: restored and matched in ${(rec.durationMs / 1000).toFixed(1)} s`, detail };
    }
    case 'expire': {
      await store.remove(String(c.op.id));
      return { outcome: 'applied', output: `deleted ${String(c.op.id)}` };
    }
    default:
      throw new PulserError('PULSER_E_INTERNAL', `backups: unknown operation ${String(c.op.kind)}`);
  }
}

export function summarizeBackups(observed: BackupsObserved): BackupFacts {
  const newest = observed.backups[0];
  const drilled = observed.backups.filter((b) => b.drill).sort((a, b) => Date.parse(b.drill!.at) - Date.parse(a.drill!.at))[0];
  return {
    lastBackup: newest ? { id: newest.id, at: newest.at, size: newest.bytes, durationSeconds: newest.durationMs / 1000, verified: newest.drill ? newest.drill.ok : null } : null,
    lastDrill: drilled?.drill ? { backupId: drilled.id, at: drilled.drill.at, ok: drilled.drill.ok, durationSeconds: drilled.drill.durationMs / 1000 } : null,
    count: observed.backups.length,
  };
}

export const backups: Reconciler<BackupsObserved> = {
  name: RECONCILER,
  dependsOn: [],
  observe,
  plan: planBackups,
  prepare: prepareBackups,
  apply,
  summarize: summarizeBackups,
};
