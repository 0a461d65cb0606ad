// Grandfather-father-son retention as a pure function: which backups to keep, given their
// timestamps, the policy and its time zone. Periods are counted among those that hold a backup,
// so a gap in the history (a stopped schedule) never makes retention delete more.
import { dayKey, monthKey, weekKey } from './calendar.ts';

export interface RetentionPolicy {
  daily: number;
  weekly: number;
  monthly: number;
}

export interface Dated {
  id: string;
  /** ISO 8601 instant */
  at: string;
}

export interface RetentionResult<T extends Dated> {
  keep: T[];
  expire: T[];
  /** why each kept backup is kept: `newest`, `daily 2026-03-29`, `weekly 2026-W13`, `monthly 2026-03` */
  reasons: Record<string, string[]>;
}

/**
 * Keeps the newest backup of each of the `daily` most recent local days that have a backup, of
 * each of the `weekly` most recent ISO weeks, and of the `monthly` most recent months; the newest
 * backup overall is always kept. Input order does not matter; ties on `at` are broken by id.
 */
export function applyRetention<T extends Dated>(backups: readonly T[], policy: RetentionPolicy, timeZone: string): RetentionResult<T> {
  const sorted = [...backups].sort((a, b) => Date.parse(b.at) - Date.parse(a.at) || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
  const reasons: Record<string, string[]> = {};
  const mark = (b: T, why: string) => (reasons[b.id] ??= []).push(why);
  if (sorted[0]) mark(sorted[0], 'newest');
  const rules: [string, number, (d: Date) => string][] = [
    ['daily', policy.daily, (d) => dayKey(d, timeZone)],
    ['weekly', policy.weekly, (d) => weekKey(d, timeZone)],
    ['monthly', policy.monthly, (d) => monthKey(d, timeZone)],
  ];
  for (const [name, count, keyOf] of rules) {
    const seen = new Set<string>();
    for (const b of sorted) {
      if (seen.size >= count) break;
      const key = keyOf(new Date(b.at));
      if (seen.has(key)) continue;
      seen.add(key);
      mark(b, `${name} ${key}`);
    }
  }
  return { keep: sorted.filter((b) => reasons[b.id]), expire: sorted.filter((b) => !reasons[b.id]), reasons };
}
