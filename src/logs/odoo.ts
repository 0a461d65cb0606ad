// Odoo's log format as records: pure functions, no I/O. Odoo's formatter prints
// `%(asctime)s %(pid)s %(levelname)s %(dbname)s %(name)s: %(message)s` (asctime in UTC as
// `2024-05-01 10:00:00,123`, dbname `?` outside a request); every line that does not start that
// way (a traceback, a multi-line message) belongs to the record above it.

export interface OdooLogRecord {
  /** ISO 8601 UTC (`2024-05-01T10:00:00.123Z`); null for lines before the first record */
  time: string | null;
  pid: number | null;
  /** DEBUG, INFO, WARNING, ERROR, CRITICAL (or another name a module registered) */
  level: string | null;
  /** database name, null when Odoo printed `?` */
  db: string | null;
  /** logger name, e.g. `odoo.modules.loading`, `werkzeug` */
  logger: string | null;
  /** text of the first line after `logger: ` */
  message: string;
  /** continuation lines (a traceback), without their line ends */
  lines: string[];
}

export const ERROR_LEVELS: ReadonlySet<string> = new Set(['ERROR', 'CRITICAL']);

const HEADER = /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}),(\d{3}) (\d+) ([A-Z][A-Z_]*) (\S+) (\S+?): ?(.*)$/;

/** A record from a header line, or null when the line continues the previous record. */
export function parseHeader(line: string): OdooLogRecord | null {
  // Cheap rejection first: most continuation lines do not start with a digit.
  const c = line.charCodeAt(0);
  if (c < 48 || c > 57) return null;
  const m = HEADER.exec(line);
  if (!m) return null;
  return {
    time: `${m[1]}T${m[2]}.${m[3]}Z`,
    pid: Number(m[4]),
    level: m[5]!,
    db: m[6] === '?' ? null : m[6]!,
    logger: m[7]!,
    message: m[8]!,
    lines: [],
  };
}

/**
 * Turns lines into records as they arrive: `push` returns the record the line completed (the
 * previous one, when the line starts a new record), `end` the last one.
 */
export class OdooLogParser {
  private current: OdooLogRecord | null = null;

  push(line: string): OdooLogRecord | null {
    const text = line.endsWith('\r') ? line.slice(0, -1) : line;
    const next = parseHeader(text);
    if (next) {
      const done = this.current;
      this.current = next;
      return done;
    }
    if (this.current) this.current.lines.push(text);
    else this.current = { time: null, pid: null, level: null, db: null, logger: null, message: text, lines: [] };
    return null;
  }

  end(): OdooLogRecord | null {
    const done = this.current;
    this.current = null;
    return done;
  }
}

/** Every record of a whole text. */
export function parseOdooLog(text: string): OdooLogRecord[] {
  const p = new OdooLogParser();
  const out: OdooLogRecord[] = [];
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  for (const l of lines) {
    const r = p.push(l);
    if (r) out.push(r);
  }
  const last = p.end();
  if (last) out.push(last);
  return out;
}

export function isErrorRecord(r: OdooLogRecord): boolean {
  return r.level !== null && ERROR_LEVELS.has(r.level);
}

/** The traceback (continuation lines) as one text. */
export function tracebackOf(r: OdooLogRecord): string {
  return r.lines.join('\n');
}

export interface WerkzeugRequest {
  remote: string;
  method: string;
  path: string;
  status: number;
  /** Odoo ≥ 13 appends SQL query count, SQL time and remaining time (seconds) */
  queries: number | null;
  sqlSeconds: number | null;
  otherSeconds: number | null;
}

// `127.0.0.1 - - [01/May/2024 10:00:00] "GET /web HTTP/1.1" 500 - 3 0.001 0.003`
// werkzeug escapes a `"` inside the request line as `\"`.
const WERKZEUG = /^(\S+) - \S+ \[[^\]]*\] "(\S+) ((?:[^"\\ ]|\\.)+)(?: (?:[^"\\]|\\.)*)?" (\d{3}) \S+(?: (\d+) ([\d.]+) ([\d.]+))?/;

/** The request a werkzeug access record describes, or null for any other record. */
export function werkzeugRequest(r: OdooLogRecord): WerkzeugRequest | null {
  if (r.logger !== 'werkzeug') return null;
  const m = WERKZEUG.exec(r.message);
  if (!m) return null;
  return {
    remote: m[1]!,
    method: m[2]!,
    path: m[3]!,
    status: Number(m[4]),
    queries: m[5] === undefined ? null : Number(m[5]),
    sqlSeconds: m[6] === undefined ? null : Number(m[6]),
    otherSeconds: m[7] === undefined ? null : Number(m[7]),
  };
}

/** HTTP status of a werkzeug access record (null for any other record). */
export function httpStatusOf(r: OdooLogRecord): number | null {
  return werkzeugRequest(r)?.status ?? null;
}
