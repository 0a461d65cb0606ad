// Grandfather-father-son retention and cron due logic: pure functions, checked case by case
// (time zones, DST transitions, gaps in the history) and by properties over random histories.
import t from 'tap';
import fc from 'fast-check';
import { applyRetention, type Dated } from '../../reconcilers/backups/retention.ts';
import { dayKey, weekKey, monthKey } from '../../reconcilers/backups/calendar.ts';
import { latestSlot, scheduleState, validateSchedule } from '../../reconcilers/backups/schedule.ts';
import { PulserError } from '../../src/errors.ts';

const b = (at: string): Dated => ({ id: `b-${at}`, at: new Date(at).toISOString() });
const ids = (xs: Dated[]) => xs.map((x) => x.at).sort();

/** One backup a day at `hh:mm` UTC, for `days` days ending on `last` (inclusive). */
function daily(last: string, days: number, time = '01:00:00Z'): Dated[] {
  const end = Date.parse(`${last}T${time}`);
  return Array.from({ length: days }, (_, i) => b(new Date(end - i * 86_400_000).toISOString()));
}

t.test('calendar keys follow the local clock', async (t) => {
  // 23:30 UTC on Sunday 2026-03-29 is already Monday in Berlin (CEST, +2).
  const at = new Date('2026-03-29T23:30:00Z');
  t.equal(dayKey(at, 'UTC'), '2026-03-29');
  t.equal(dayKey(at, 'Europe/Berlin'), '2026-03-30');
  t.equal(weekKey(at, 'UTC'), '2026-W13');
  t.equal(weekKey(at, 'Europe/Berlin'), '2026-W14');
  t.equal(monthKey(new Date('2026-03-31T23:30:00Z'), 'Europe/Berlin'), '2026-04');
  // ISO week-year edges: 2026-01-01 is a Thursday (W01); 2027-01-01 a Friday (2026-W53).
  t.equal(weekKey(new Date('2026-01-01T12:00:00Z'), 'UTC'), '2026-W01');
  t.equal(weekKey(new Date('2027-01-01T12:00:00Z'), 'UTC'), '2026-W53');
  t.equal(weekKey(new Date('2024-12-30T12:00:00Z'), 'UTC'), '2025-W01');
  // Lord Howe moves by half an hour: 13:45 UTC is 00:15 (+10:30) on 2026-04-05 before the change.
  t.equal(dayKey(new Date('2026-04-04T13:45:00Z'), 'Australia/Lord_Howe'), '2026-04-05');
});

t.test('7 daily, 4 weekly, 3 monthly over 120 daily backups keeps the expected set', async (t) => {
  const history = daily('2026-06-30', 120);
  const r = applyRetention(history, { daily: 7, weekly: 4, monthly: 3 }, 'UTC');
  const kept = ids(r.keep).map((s) => s.slice(0, 10));
  // 7 days: Jun 24–30. Weeks (Sunday is the newest of an ISO week): Jun 30 (W27, Tue), Jun 28, 21, 14.
  // Months: Jun 30, May 31, Apr 30.
  t.same(kept, ['2026-04-30', '2026-05-31', '2026-06-14', '2026-06-21', '2026-06-24', '2026-06-25', '2026-06-26', '2026-06-27', '2026-06-28', '2026-06-29', '2026-06-30']);
  t.equal(r.keep.length + r.expire.length, 120);
  t.ok(r.reasons[history[0]!.id]!.includes('newest'));
  t.ok(r.reasons[history.find((h) => h.at.startsWith('2026-04-30'))!.id]!.includes('monthly 2026-04'));
});

t.test('several backups a day: only the newest of each day counts', async (t) => {
  const xs = ['2026-03-01T01:00:00Z', '2026-03-01T13:00:00Z', '2026-03-02T01:00:00Z', '2026-03-02T09:00:00Z', '2026-03-02T20:00:00Z'].map(b);
  const r = applyRetention(xs, { daily: 2, weekly: 0, monthly: 0 }, 'UTC');
  t.same(ids(r.keep), ['2026-03-01T13:00:00.000Z', '2026-03-02T20:00:00.000Z']);
});

t.test('the day boundary is the local one (Europe/Berlin, UTC+1 in winter)', async (t) => {
  // 23:30 UTC on the 1st is 00:30 on the 2nd in Berlin: in Berlin both are backups of the 2nd.
  const xs = ['2026-02-01T22:30:00Z', '2026-02-01T23:30:00Z', '2026-02-02T12:00:00Z'].map(b);
  t.equal(applyRetention(xs, { daily: 5, weekly: 0, monthly: 0 }, 'UTC').keep.length, 2);
  t.same(ids(applyRetention(xs, { daily: 5, weekly: 0, monthly: 0 }, 'Europe/Berlin').keep), ['2026-02-01T22:30:00.000Z', '2026-02-02T12:00:00.000Z']);
});

t.test('DST: Europe/Berlin spring forward and fall back keep one backup per local day', async (t) => {
  // Hourly backups across 2026-03-29 (23 local hours) and 2026-10-25 (25 local hours).
  for (const [day, hours] of [
    ['2026-03-28T23:00:00Z', 23],
    ['2026-10-24T22:00:00Z', 25],
  ] as const) {
    // from local midnight: every hour of the DST day, then the first hour of the next day
    const start = Date.parse(day);
    const xs = Array.from({ length: hours + 1 }, (_, i) => b(new Date(start + i * 3_600_000).toISOString()));
    const days = new Set(xs.map((x) => dayKey(new Date(x.at), 'Europe/Berlin')));
    t.equal(days.size, 2, `${day}: the local day has ${hours} hours`);
    const r = applyRetention(xs, { daily: 7, weekly: 0, monthly: 0 }, 'Europe/Berlin');
    t.equal(r.keep.length, 2);
    // the newest of the DST day itself is its last local hour: 23:00 local
    const newestOfDay = r.keep.map((k) => k.at).sort()[0]!;
    t.equal(new Date(newestOfDay).toLocaleString('en-GB', { timeZone: 'Europe/Berlin', hour: '2-digit', hourCycle: 'h23' }), '23');
  }
});

t.test('DST: America/New_York daily 23:30 local backups stay one a day across both changes', async (t) => {
  // 23:30 local is 04:30 UTC next day in winter (EST) and 03:30 UTC in summer (EDT).
  const xs: Dated[] = [];
  for (let d = 1; d <= 20; d++) {
    const est = Date.UTC(2026, 2, d, 4, 30);
    const edt = Date.UTC(2026, 2, d, 3, 30);
    xs.push(b(new Date(d <= 8 ? est : edt).toISOString()));
  }
  const days = xs.map((x) => dayKey(new Date(x.at), 'America/New_York'));
  t.equal(new Set(days).size, 20, 'every backup falls on its own local day');
  t.equal(applyRetention(xs, { daily: 20, weekly: 0, monthly: 0 }, 'America/New_York').keep.length, 20);
  t.equal(applyRetention(xs, { daily: 20, weekly: 0, monthly: 0 }, 'UTC').keep.length, 20);
  const r = applyRetention(xs, { daily: 0, weekly: 2, monthly: 0 }, 'America/New_York');
  // Local dates Feb 28 … Mar 19; the two newest ISO weeks: W12 (Mar 16–19) and W11 (ends Sun Mar 15).
  t.same(r.keep.map((k) => dayKey(new Date(k.at), 'America/New_York')).sort(), ['2026-03-15', '2026-03-19']);
});

t.test('Australia/Lord_Howe half-hour DST: days and months still follow the local clock', async (t) => {
  // DST ends 2026-04-05 02:00 local (+11 → +10:30). 13:00 and 13:20 UTC are 00:00/00:20 before, 23:50 after.
  const xs = ['2026-04-04T13:00:00Z', '2026-04-04T13:20:00Z', '2026-04-05T13:20:00Z'].map(b);
  const keys = xs.map((x) => dayKey(new Date(x.at), 'Australia/Lord_Howe'));
  t.same(keys, ['2026-04-05', '2026-04-05', '2026-04-05']);
  t.equal(applyRetention(xs, { daily: 3, weekly: 0, monthly: 0 }, 'Australia/Lord_Howe').keep.length, 1);
  t.equal(applyRetention(xs, { daily: 3, weekly: 0, monthly: 0 }, 'UTC').keep.length, 2);
});

t.test('gaps in the history: periods are counted among those that have a backup', async (t) => {
  // 5 backups in January, nothing for two months, 3 in April.
  const xs = [...daily('2026-01-05', 5), ...daily('2026-04-03', 3)];
  const r = applyRetention(xs, { daily: 7, weekly: 0, monthly: 0 }, 'UTC');
  t.equal(r.keep.length, 7, 'the 7 newest days with a backup, across the gap');
  t.same(ids(r.expire).map((s) => s.slice(0, 10)), ['2026-01-01']);
  const m = applyRetention(xs, { daily: 0, weekly: 0, monthly: 3 }, 'UTC');
  t.same(ids(m.keep).map((s) => s.slice(0, 10)), ['2026-01-05', '2026-04-03'], 'two months have backups; both kept');
});

t.test('edge cases: empty history, zero policy, identical timestamps', async (t) => {
  t.same(applyRetention([], { daily: 7, weekly: 4, monthly: 3 }, 'UTC'), { keep: [], expire: [], reasons: {} });
  const xs = daily('2026-05-10', 5);
  const r = applyRetention(xs, { daily: 0, weekly: 0, monthly: 0 }, 'UTC');
  t.same(r.keep.map((k) => k.at), [xs[0]!.at], 'a zero policy still keeps the newest');
  const twins = [{ id: 'a', at: '2026-05-10T01:00:00.000Z' }, { id: 'b', at: '2026-05-10T01:00:00.000Z' }];
  t.same(applyRetention(twins, { daily: 1, weekly: 0, monthly: 0 }, 'UTC').keep.map((k) => k.id), ['b']);
  t.same(applyRetention([...twins].reverse(), { daily: 1, weekly: 0, monthly: 0 }, 'UTC').keep.map((k) => k.id), ['b'], 'input order does not matter');
});

t.test('properties over random histories and policies', async (t) => {
  const zones = ['UTC', 'Europe/Berlin', 'America/New_York', 'Australia/Lord_Howe', 'Asia/Kolkata', 'Pacific/Chatham'];
  const arb = fc.record({
    times: fc.uniqueArray(fc.integer({ min: Date.UTC(2024, 0, 1), max: Date.UTC(2027, 0, 1) }), { maxLength: 80 }),
    daily: fc.nat(10),
    weekly: fc.nat(6),
    monthly: fc.nat(6),
    zone: fc.constantFrom(...zones),
  });
  let runs = 0;
  fc.assert(
    fc.property(arb, ({ times, daily, weekly, monthly, zone }) => {
      runs++;
      const xs = times.map((ms) => ({ id: `x${ms}`, at: new Date(ms).toISOString() }));
      const policy = { daily, weekly, monthly };
      const r = applyRetention(xs, policy, zone);
      const keptIds = new Set(r.keep.map((k) => k.id));
      // kept ⊆ input, and kept ∪ expired = input with no overlap
      if (![...keptIds].every((id) => xs.some((x) => x.id === id))) return false;
      if (r.keep.length + r.expire.length !== xs.length || r.expire.some((e) => keptIds.has(e.id))) return false;
      // never deletes the newest
      if (xs.length > 0) {
        const newest = xs.reduce((a, c) => (Date.parse(c.at) > Date.parse(a.at) ? c : a));
        if (!keptIds.has(newest.id)) return false;
      }
      // idempotent
      const again = applyRetention(r.keep, policy, zone);
      if (again.expire.length !== 0 || again.keep.length !== r.keep.length) return false;
      // count bounds
      const distinctDays = new Set(xs.map((x) => dayKey(new Date(x.at), zone))).size;
      if (r.keep.length > Math.max(1, daily + weekly + monthly)) return false;
      if (r.keep.length < Math.min(distinctDays, Math.max(daily, xs.length ? 1 : 0))) return false;
      return true;
    }),
    { numRuns: 400, seed: 20260324 },
  );
  t.equal(runs, 400);
});

t.test('schedule: due when the latest slot has no backup at or after it', async (t) => {
  const now = new Date('2026-05-10T12:00:00Z');
  const s = scheduleState('0 2 * * *', 'Asia/Singapore', now, '2026-05-09T18:30:00Z');
  t.equal(s.slot, '2026-05-09T18:00:00.000Z', '02:00 in Singapore is 18:00 UTC the day before');
  t.equal(s.due, false);
  t.equal(s.next, '2026-05-10T18:00:00.000Z');
  t.equal(scheduleState('0 2 * * *', 'Asia/Singapore', now, '2026-05-09T17:59:59Z').due, true);
  t.equal(scheduleState('0 2 * * *', 'Asia/Singapore', now, null).due, true, 'no backup at all: due now');
  t.equal(latestSlot('0 12 * * *', 'UTC', now)?.toISOString(), '2026-05-10T12:00:00.000Z', 'a slot exactly at now counts');
});

t.test('schedule: the spring-forward day still has its slot (New York 02:30 does not exist on 2026-03-08)', async (t) => {
  const slot = latestSlot('30 2 * * *', 'America/New_York', new Date('2026-03-08T12:00:00Z'));
  t.equal(slot?.toISOString(), '2026-03-08T07:30:00.000Z', 'moved past the gap: 03:30 EDT, not skipped to the day before');
  const berlin = latestSlot('30 2 * * *', 'Europe/Berlin', new Date('2026-03-29T05:00:00Z'));
  t.equal(berlin?.toISOString(), '2026-03-29T01:30:00.000Z');
  t.equal(scheduleState('30 2 * * *', 'Europe/Berlin', new Date('2026-03-29T05:00:00Z'), '2026-03-28T01:30:00Z').due, true);
});

t.test('schedule: the repeated autumn hour is one slot (New York 01:30 on 2026-11-01)', async (t) => {
  const now = new Date('2026-11-01T12:00:00Z');
  const slot = latestSlot('30 1 * * *', 'America/New_York', now);
  t.equal(slot?.toISOString(), '2026-11-01T05:30:00.000Z', 'the first 01:30 (EDT)');
  t.equal(scheduleState('30 1 * * *', 'America/New_York', now, '2026-11-01T05:31:00Z').due, false, 'a backup after the first 01:30 satisfies the second');
});

t.test('schedule: weekly and monthly expressions, and bad input', async (t) => {
  t.equal(latestSlot('0 3 * * 0', 'Europe/Berlin', new Date('2026-05-13T00:00:00Z'))?.toISOString(), '2026-05-10T01:00:00.000Z');
  t.equal(latestSlot('0 4 1 * *', 'UTC', new Date('2026-05-13T00:00:00Z'))?.toISOString(), '2026-05-01T04:00:00.000Z');
  for (const [expr, zone] of [
    ['0 2 * *', 'UTC'],
    ['61 2 * * *', 'UTC'],
    ['0 2 * * *', 'Mars/Olympus'],
    ['every day', 'UTC'],
  ] as const) {
    let code = 'no error';
    try {
      validateSchedule(expr, zone);
    } catch (err) {
      code = err instanceof PulserError ? err.code : String(err);
    }
    t.equal(code, 'PULSER_E_BACKUP_POLICY', `${expr} ${zone}`);
  }
});
