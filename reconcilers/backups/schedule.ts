// When a backup is due: the latest time the cron schedule fired (in its time zone) has no backup
// at or after it. cron-parser does the cron arithmetic (time zones, DST, day-of-week/month
// rules); what is added here works around its `prev()` skipping an occurrence moved by a
// spring-forward and treats the two instants of a repeated autumn hour as one slot.
import { CronExpressionParser } from 'cron-parser';
import { PulserError } from '../../src/errors.ts';
import { isTimeZone, wallMinute } from './calendar.ts';

export interface ScheduleState {
  due: boolean;
  /** the latest scheduled time at or before now (null when the schedule never fired yet) */
  slot: string | null;
  next: string;
}

const MAX_STEPS = 10_000;

function parse(expression: string, timeZone: string, from: Date) {
  if (!isTimeZone(timeZone)) throw new PulserError('PULSER_E_BACKUP_POLICY', `backup.timezone: unknown time zone ${JSON.stringify(timeZone)}`);
  if (expression.trim().split(/\s+/).length !== 5) {
    throw new PulserError('PULSER_E_BACKUP_POLICY', `backup.schedule: ${JSON.stringify(expression)} must have five fields (minute hour day-of-month month day-of-week)`);
  }
  try {
    return CronExpressionParser.parse(expression, { tz: timeZone, currentDate: from });
  } catch (err) {
    throw new PulserError('PULSER_E_BACKUP_POLICY', `backup.schedule: ${JSON.stringify(expression)} is not a valid cron expression (${(err as Error).message})`, { cause: err });
  }
}

/** Checks the schedule and zone; throws PULSER_E_BACKUP_POLICY. */
export function validateSchedule(expression: string, timeZone: string): void {
  parse(expression, timeZone, new Date(0)).next();
}

/** The latest occurrence at or before `now`, the earliest instant of its local wall time. */
export function latestSlot(expression: string, timeZone: string, now: Date): Date | null {
  let start: Date;
  try {
    const back = parse(expression, timeZone, new Date(now.getTime() + 1));
    start = back.prev().toDate();
    start = back.prev().toDate();
  } catch (err) {
    if (err instanceof PulserError) throw err;
    return null;
  }
  // Walk forward with next(), which handles DST, from two occurrences back.
  const fwd = parse(expression, timeZone, new Date(start.getTime() - 1));
  const seen: Date[] = [];
  for (let i = 0; i < MAX_STEPS; i++) {
    const d = fwd.next().toDate();
    if (d.getTime() > now.getTime()) break;
    seen.push(d);
  }
  let slot = seen.at(-1) ?? null;
  if (!slot) return null;
  const before = seen.at(-2);
  if (before && wallMinute(before, timeZone) === wallMinute(slot, timeZone)) slot = before;
  return slot;
}

export function scheduleState(expression: string, timeZone: string, now: Date, lastBackupAt: string | null): ScheduleState {
  const slot = latestSlot(expression, timeZone, now);
  const next = parse(expression, timeZone, now).next().toDate();
  const due = lastBackupAt === null || (slot !== null && Date.parse(lastBackupAt) < slot.getTime());
  return { due, slot: slot?.toISOString() ?? null, next: next.toISOString() };
}
