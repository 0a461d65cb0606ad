// A log query (service, errors only, time window, pattern, how many) checked once, and the bounded
// selection of the last N matching records: memory stays O(N) whatever the size of the log.
import { PulserError } from '../errors.ts';
import { tryParseDuration } from '../core/duration.ts';
import { isErrorRecord, type OdooLogRecord } from './odoo.ts';

export const DEFAULT_LIMIT = 100;
export const MAX_LIMIT = 10_000;
const MAX_PATTERN = 256;

export interface LogQueryInput {
  service?: string;
  errors?: boolean;
  since?: string;
  until?: string;
  grep?: string;
  n?: string | number;
}

export interface LogQuery {
  service: string;
  errors: boolean;
  since: Date | null;
  until: Date | null;
  grep: RegExp | null;
  limit: number;
}

function bad(message: string): PulserError {
  return new PulserError('PULSER_E_LOGS_QUERY', message);
}

/** `2024-05-01T10:00:00Z`, `2024-05-01 10:00:00` (UTC, as Odoo prints), or a duration ago (`15m`). */
export function parseLogTime(text: string, now: Date, flag: string): Date {
  const ago = tryParseDuration(text);
  if (ago !== null) return new Date(now.getTime() - ago);
  const m = /^(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}:\d{2}(?::\d{2}(?:[.,]\d{1,3})?)?))?(Z|[+-]\d{2}:?\d{2})?$/.exec(text);
  if (m) {
    const time = (m[2] ?? '00:00:00').replace(',', '.');
    const d = new Date(`${m[1]}T${time.length === 5 ? `${time}:00` : time}${m[3] ?? 'Z'}`);
    if (!Number.isNaN(d.getTime())) return d;
  }
  throw bad(`${flag} ${JSON.stringify(text)}: expected a time such as 2024-05-01T10:00:00Z or "2024-05-01 10:00:00" (UTC), or a duration ago such as 15m or 2h`);
}

export function parseLogQuery(input: LogQueryInput, now: Date): LogQuery {
  const service = input.service ?? 'odoo';
  if (!/^[a-z][a-z0-9-]{0,39}$/.test(service)) throw bad(`service ${JSON.stringify(service)}: lower-case letters, digits and dashes`);
  let limit = DEFAULT_LIMIT;
  if (input.n !== undefined) {
    const n = typeof input.n === 'number' ? input.n : /^\d+$/.test(input.n) ? Number(input.n) : NaN;
    if (!Number.isInteger(n) || n < 1 || n > MAX_LIMIT) throw bad(`-n must be an integer from 1 to ${MAX_LIMIT}, got ${JSON.stringify(input.n)}`);
    limit = n;
  }
  const since = input.since === undefined ? null : parseLogTime(input.since, now, '--since');
  const until = input.until === undefined ? null : parseLogTime(input.until, now, '--until');
  if (since && until && since > until) throw bad('--since is after --until');
  let grep: RegExp | null = null;
  if (input.grep !== undefined) {
    if (input.grep.length === 0 || input.grep.length > MAX_PATTERN) throw bad(`--grep must be 1 to ${MAX_PATTERN} characters`);
    try {
      grep = new RegExp(input.grep, 'u');
    } catch (err) {
      throw bad(`--grep ${JSON.stringify(input.grep)} is not a valid regular expression: ${(err as Error).message}`);
    }
  }
  return { service, errors: input.errors ?? false, since, until, grep, limit };
}

export function matches(q: LogQuery, r: OdooLogRecord): boolean {
  if (q.errors && !isErrorRecord(r)) return false;
  if ((q.since || q.until) && r.time !== null) {
    const t = Date.parse(r.time);
    if (q.since && t < q.since.getTime()) return false;
    if (q.until && t > q.until.getTime()) return false;
  }
  if (q.grep) {
    if (q.grep.test(r.message)) return true;
    return r.lines.some((l) => q.grep!.test(l));
  }
  return true;
}

/** Keeps the last `limit` records offered that match, in order. */
export class LastMatching {
  private readonly ring: OdooLogRecord[] = [];
  private start = 0;
  /** records seen and records matched, for the summary */
  seen = 0;
  matched = 0;

  constructor(private readonly q: LogQuery) {}

  offer(r: OdooLogRecord): void {
    this.seen++;
    if (!matches(this.q, r)) return;
    this.matched++;
    if (this.ring.length < this.q.limit) this.ring.push(r);
    else {
      this.ring[this.start] = r;
      this.start = (this.start + 1) % this.q.limit;
    }
  }

  result(): OdooLogRecord[] {
    return [...this.ring.slice(this.start), ...this.ring.slice(0, this.start)];
  }
}
