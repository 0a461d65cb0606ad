// The staging reconciler: when `staging.refresh` changes, the source environment's newest backup
// is restored into a new database, neutralized and anonymized there in one transaction, checked,
// and only then swapped in (instant recovery's swap), so the environment never runs on
// un-neutralized production data.
import { randomUUID } from 'node:crypto';
import type { ApplyResult, Change, ReconcileContext, Reconciler } from '../../src/core/reconciler.ts';
import { asPulserError, PulserError } from '../../src/errors.ts';
import type { DesiredEnv } from '../../src/spec/model.ts';
import { backupPolicy, storeFor, type BackupStore } from '../backups/index.ts';
import { restoreToEnvironment } from '../backups/recover.ts';
import { dbTarget } from '../../src/odoo/db.ts';
import { anonymizeSql, neutralizeSql, OBSERVE, REFRESH_KEY, verifySql, type NeutralizeInput } from './sql.ts';
import { baseUrlOf, planStaging, RECONCILER, type StagingObserved } from './plan.ts';

export { planStaging, type StagingObserved } from './plan.ts';

function sourceOf(ctx: ReconcileContext): { desired: DesiredEnv; store: BackupStore } {
  const s = ctx.desired.spec.staging!;
  const source = s.refresh_from === ctx.desired.name ? null : (ctx.peer?.(s.refresh_from) ?? null);
  if (!source) throw new PulserError('PULSER_E_STAGING_SOURCE', `staging.refresh_from: ${s.refresh_from} is ${s.refresh_from === ctx.desired.name ? 'this environment itself' : 'not a valid environment'}`);
  const policy = backupPolicy(source);
  if (!policy) throw new PulserError('PULSER_E_STAGING_SOURCE', `staging.refresh_from: ${s.refresh_from} has no backup policy to refresh from`);
  return { desired: source, store: storeFor(policy.destination, ctx.drivers) };
}

async function observe(ctx: ReconcileContext): Promise<StagingObserved> {
  const s = ctx.desired.spec.staging;
  if (!s) return { applied: null, source: null, error: null };
  let applied: string | null = null;
  const db = ctx.drivers.db(ctx.desired.hostName, dbTarget(ctx.desired));
  try {
    const [has] = await db.query<{ present: boolean }>(OBSERVE.hasConfigTable);
    if (has?.present) applied = (await db.query<{ value: string }>(OBSERVE.marker, [REFRESH_KEY]))[0]?.value ?? null;
  } catch (err) {
    // No database yet is a database never refreshed; anything else is an observation failure.
    if (asPulserError(err).code !== 'PULSER_E_DB_MISSING') return { applied: null, source: null, error: asPulserError(err).toJSON() };
  }
  if (applied === s.refresh) return { applied, source: null, error: null };
  try {
    const { desired, store } = sourceOf(ctx);
    const [newest] = await store.list(desired.name);
    return { applied, source: newest ? { id: newest.manifest.id, at: newest.manifest.at } : null, error: null };
  } catch (err) {
    return { applied, source: null, error: asPulserError(err).toJSON() };
  }
}

/** Neutralizes and anonymizes `database` in one transaction, then runs the checks; throws a coded error when one fails. */
export async function neutralize(ctx: Pick<ReconcileContext, 'desired' | 'drivers'>, database: string, input: Omit<NeutralizeInput, 'fetchmail'>): Promise<void> {
  const db = ctx.drivers.db(ctx.desired.hostName, dbTarget(ctx.desired, database));
  const rules = ctx.desired.spec.staging?.anonymize ?? [];
  const [fm] = await db.query<{ present: boolean }>(OBSERVE.hasFetchmail);
  const full: NeutralizeInput = { ...input, fetchmail: fm?.present === true };
  await db.transaction(async (q) => {
    for (const st of [...neutralizeSql(full), ...anonymizeSql(rules)]) await q(st.text, st.params);
  }, { timeoutMs: 30 * 60_000 });
  const failed: string[] = [];
  for (const c of verifySql(full, rules)) {
    const [row] = await db.query<{ n: number }>(c.text, c.params);
    if ((row?.n ?? 1) !== 0) failed.push(`${c.what} (${row?.n ?? '?'} offending row(s))`);
  }
  if (failed.length) throw new PulserError('PULSER_E_STAGING_VERIFY', `the refreshed database ${database} failed its checks: ${failed.join('; ')}`, { details: { failed } });
}

function stateDirOf(ctx: ReconcileContext): string {
  if (!ctx.stateDir) throw new PulserError('PULSER_E_INTERNAL', 'staging: no state folder for the swap journal');
  return ctx.stateDir;
}

async function apply(ctx: ReconcileContext, c: Change): Promise<ApplyResult> {
  if (c.op.kind !== 'refresh') throw new PulserError('PULSER_E_INTERNAL', `staging: unknown operation ${String(c.op.kind)}`);
  const s = ctx.desired.spec.staging!;
  const { store } = sourceOf(ctx);
  const entry = await store.get(String(c.op.backupId));
  const input = { uuid: randomUUID(), baseUrl: baseUrlOf(ctx.desired), refresh: s.refresh };
  const res = await restoreToEnvironment(
    { desired: ctx.desired, drivers: ctx.drivers, store, stateDir: stateDirOf(ctx), commit: ctx.commit ?? 'unknown', progress: ctx.progress, signal: ctx.signal },
    entry,
    { prepare: (database) => neutralize(ctx, database, input) },
  );
  return { outcome: 'applied', output: `refreshed from ${entry.manifest.id} in ${(res.durationMs / 1000).toFixed(1)} s`, detail: { backupId: entry.manifest.id, uuid: input.uuid, baseUrl: input.baseUrl } };
}

export const staging: Reconciler<StagingObserved> = {
  name: RECONCILER,
  dependsOn: ['containers'],
  observe,
  plan: (desired, observed) => planStaging(desired, observed),
  apply,
};
