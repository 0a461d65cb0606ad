// The staging planner, pure: a refresh is due when the environment's `staging.refresh` value
// differs from the one recorded in its database by the last refresh.
import type { Change, Plan } from '../../src/core/reconciler.ts';
import type { DesiredEnv } from '../../src/spec/model.ts';
import { PulserError, type ErrorRecord } from '../../src/errors.ts';

export const RECONCILER = 'staging';

export interface StagingObserved {
  /** the refresh value recorded in the environment's database; null when none (or no database) */
  applied: string | null;
  /** the newest complete backup of the source environment */
  source: { id: string; at: string } | null;
  /** why the source's backups could not be listed, or the source cannot be used */
  error: ErrorRecord | null;
}

/** `web.base.url` of the refreshed database: the spec's, or the address Odoo is published on. */
export function baseUrlOf(desired: DesiredEnv): string {
  const s = desired.spec.staging;
  if (s?.base_url) return s.base_url;
  const bind = desired.spec.odoo.bind && desired.spec.odoo.bind !== '0.0.0.0' ? desired.spec.odoo.bind : '127.0.0.1';
  return `http://${bind}:${desired.spec.odoo.port}`;
}

export function planStaging(desired: DesiredEnv, observed: StagingObserved): Plan {
  const s = desired.spec.staging;
  if (!s || observed.applied === s.refresh) return { changes: [], findings: [] };
  const subject = `${desired.name}/staging`;
  if (observed.error) return { changes: [], findings: [{ subject, error: observed.error }] };
  if (!observed.source) {
    return { changes: [], findings: [{ subject, error: new PulserError('PULSER_E_STAGING_SOURCE', `${s.refresh_from} has no backup to refresh ${desired.name} from`).toJSON() }] };
  }
  const change: Change = {
    subject,
    reconciler: RECONCILER,
    action: 'update',
    risk: 'destructive',
    summary: `refresh from ${s.refresh_from} (backup ${observed.source.id}), neutralized${s.anonymize?.length ? `, ${s.anonymize.length} column(s) anonymized` : ''}`,
    diff: { refresh: { before: observed.applied, after: s.refresh } },
    reason: observed.applied === null ? `${desired.name} has not been refreshed yet` : `staging.refresh changed from ${JSON.stringify(observed.applied)} to ${JSON.stringify(s.refresh)}`,
    op: { kind: 'refresh', backupId: observed.source.id },
  };
  return { changes: [change], findings: [] };
}
