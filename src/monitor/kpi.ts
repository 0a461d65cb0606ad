// The monitoring KPIs as pure functions over plain data: uptime ratios from per-minute probe
// buckets, error rates from Odoo log records, latency percentiles. No clock, no I/O.
import { httpStatusOf } from '../logs/odoo.ts';

/** Probe outcomes of one minute (`minute` = unix milliseconds / 60000, floored). */
export interface UptimeBucket {
  minute: number;
  up: number;
  total: number;
}

/**
 * Share of successful probes in the minutes `(toMinute - minutes, toMinute]`; null when no probe
 * fell in the window (no data is not downtime).
 */
export function uptimeRatio(buckets: Iterable<UptimeBucket>, toMinute: number, minutes: number): number | null {
  let up = 0;
  let total = 0;
  for (const b of buckets) {
    if (b.minute > toMinute - minutes && b.minute <= toMinute) {
      up += b.up;
      total += b.total;
    }
  }
  return total === 0 ? null : up / total;
}

/** The minimal shape of an Odoo log record the error rate needs. */
export interface LogRecord {
  time: Date | number;
  level: string;
  logger: string;
  message: string;
}

/** HTTP status of a werkzeug access-log message, or null when the message is not one. */
export function werkzeugStatus(message: string): number | null {
  return httpStatusOf({ time: null, pid: null, level: null, db: null, logger: 'werkzeug', message, lines: [] });
}

export interface ErrorTally {
  /** werkzeug access lines */
  requests: number;
  /** of those, answered 5xx */
  failedRequests: number;
  /** ERROR or CRITICAL records outside request handling (crons, workers, start-up) */
  errorRecords: number;
}

export const EMPTY_TALLY: ErrorTally = { requests: 0, failedRequests: 0, errorRecords: 0 };

// A failing request logs its traceback under odoo.http and then its 5xx access line: counting
// both would count one failure twice, so request-handling records count through their status.
const REQUEST_LOGGERS = new Set(['werkzeug', 'odoo.http']);

export function tallyRecords(records: Iterable<LogRecord>): ErrorTally {
  const t = { ...EMPTY_TALLY };
  for (const r of records) {
    if (r.logger === 'werkzeug') {
      const status = werkzeugStatus(r.message);
      if (status === null) continue;
      t.requests++;
      if (status >= 500) t.failedRequests++;
    } else if ((r.level === 'ERROR' || r.level === 'CRITICAL') && !REQUEST_LOGGERS.has(r.logger)) {
      t.errorRecords++;
    }
  }
  return t;
}

export function addTallies(a: ErrorTally, b: ErrorTally): ErrorTally {
  return { requests: a.requests + b.requests, failedRequests: a.failedRequests + b.failedRequests, errorRecords: a.errorRecords + b.errorRecords };
}

/**
 * (5xx requests + error records) / (requests + error records): every request and every error
 * record outside a request is one event, and the rate is the failed share of events. 0 when
 * nothing happened.
 */
export function errorRate(t: ErrorTally): number {
  const events = t.requests + t.errorRecords;
  return events === 0 ? 0 : (t.failedRequests + t.errorRecords) / events;
}

/** Nearest-rank percentile (q in (0, 1]) of unsorted values; null for none. */
export function percentile(values: readonly number[], q: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length, Math.max(1, Math.ceil(q * sorted.length))) - 1]!;
}
