// The backups planner and the pre-change backup, pure: what a pass plans from observed backups,
// and that a pass with a pre-change backup plans everything that backup causes (so it converges).
import t from 'tap';
import { desiredEnv } from '../helpers/builders.ts';
import { planBackups, prepareBackups, type BackupsObserved } from '../../reconcilers/backups/plan.ts';
import type { Change } from '../../src/core/reconciler.ts';
import type { DesiredEnv } from '../../src/spec/model.ts';

async function production(t: Parameters<typeof desiredEnv>[0], tier: DesiredEnv['tier'] = 'production'): Promise<DesiredEnv> {
  const d = await desiredEnv(t, { name: 'shop', tier });
  const backup = { schedule: '0 3 * * *', timezone: 'UTC', retention: { daily: 2, weekly: 0, monthly: 0 }, destination: { type: 'local' as const, path: '/srv/backups' }, verify: 'weekly' as const };
  return { ...d, spec: { ...d.spec, backup } };
}

const rollout: Change = { subject: 'shop/containers/odoo', reconciler: 'containers', action: 'update', risk: 'disruptive', summary: 'replace odoo', diff: {}, reason: 'image changed', op: { kind: 'replace' } };
const seen = (...bs: Array<{ id: string; at: string; drilled?: string }>): BackupsObserved => ({
  backups: bs.map((b) => ({ id: b.id, at: b.at, kind: 'scheduled', bytes: 1, durationMs: 1, drill: b.drilled ? { ok: true, at: b.drilled, durationMs: 1 } : null })),
  error: null,
});
const brief = (cs: Change[]) => cs.map((c) => `${c.reconciler} ${c.action} ${c.subject.split('/').at(-1)}${c.gate ? ' gate' : ''}`);

t.test('nothing due: no changes', async (t) => {
  const d = await production(t);
  const now = new Date('2026-03-24T10:00:00Z');
  const plan = planBackups(d, seen({ id: 'shop-20260324T030000Z', at: '2026-03-24T03:00:00Z', drilled: '2026-03-24T03:05:00Z' }), now);
  t.same(plan.changes, []);
});

t.test('a pre-change backup that pushes a same-day backup out of retention also deletes it, in the same pass', async (t) => {
  const d = await production(t);
  const now = new Date('2026-03-24T10:00:00Z');
  const observed = seen(
    { id: 'shop-20260324T030000Z', at: '2026-03-24T03:00:00Z', drilled: '2026-03-24T03:05:00Z' },
    { id: 'shop-20260323T030000Z', at: '2026-03-23T03:00:00Z' },
  );
  const plan = planBackups(d, observed, now);
  const changes = prepareBackups(d, [...plan.changes, rollout], now, observed);
  t.same(brief(changes), ['backups create shop-20260324T100000Z gate', 'containers update odoo', 'backups run drill', 'backups delete shop-20260324T030000Z']);
  t.equal(changes[0]!.op.backupKind, 'pre-change');
  t.match(changes[0]!.summary, /^pre-change backup /);
  t.match(changes[0]!.reason, /shop\/containers\/odoo: replace odoo/);
  // The next pass, once these are applied, has nothing left to do.
  const after = seen({ id: 'shop-20260324T100000Z', at: '2026-03-24T10:00:00Z', drilled: '2026-03-24T10:01:00Z' }, { id: 'shop-20260323T030000Z', at: '2026-03-23T03:00:00Z' });
  t.same(planBackups(d, after, new Date('2026-03-24T10:02:00Z')).changes, []);
});

t.test('a scheduled backup due now serves as the pre-change backup', async (t) => {
  const d = await production(t);
  const now = new Date('2026-03-24T03:10:00Z');
  const observed = seen({ id: 'shop-20260323T030000Z', at: '2026-03-23T03:00:00Z', drilled: '2026-03-23T03:05:00Z' });
  const changes = prepareBackups(d, [...planBackups(d, observed, now).changes, rollout], now, observed);
  t.same(brief(changes), ['backups create shop-20260324T031000Z gate', 'containers update odoo']);
  t.match(changes[0]!.reason, /^scheduled at .*; also the pre-change backup of: /);
});

t.test('an unreadable destination still plans the gating backup, so its failure stops the pass', async (t) => {
  const d = await production(t);
  const now = new Date('2026-03-24T10:00:00Z');
  const observed: BackupsObserved = { backups: [], error: { code: 'PULSER_E_BACKUP_DESTINATION', class: 'terminal', reason: 'BackupDestination', message: 'not a folder' } };
  const changes = prepareBackups(d, [rollout], now, observed);
  t.same(brief(changes), ['backups create shop-20260324T100000Z gate', 'containers update odoo']);
});

t.test('safe changes and non-production environments get no pre-change backup', async (t) => {
  const now = new Date('2026-03-24T10:00:00Z');
  const observed = seen({ id: 'shop-20260324T030000Z', at: '2026-03-24T03:00:00Z', drilled: '2026-03-24T03:05:00Z' });
  const prod = await production(t);
  t.same(brief(prepareBackups(prod, [{ ...rollout, risk: 'safe' }], now, observed)), ['containers update odoo']);
  const staging = await production(t, 'staging');
  t.same(brief(prepareBackups(staging, [rollout], now, observed)), ['containers update odoo']);
});
