// Odoo log lines, as read from a container with engine timestamps, to the minimal records the
// error-rate KPI needs. Lines that are not Odoo records (tracebacks, print output) are skipped.
import type { LogRecord } from './kpi.ts';
import { parseHeader } from '../logs/odoo.ts';

// `2024-05-01T10:00:00.123456789Z ` as the engine writes it with timestamps on
const ENGINE_TS = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z) (.*)$/;

export interface TimedLine {
  /** the engine's timestamp text, fixed width: compares as a string */
  ts: string;
  record: LogRecord | null;
}

function parseOdooLine(line: string, time: number): LogRecord | null {
  const r = parseHeader(line);
  return r?.level && r.logger ? { time, level: r.level, logger: r.logger, message: r.message } : null;
}

/** Splits engine output (timestamps on) into lines with their record, oldest first. */
export function parseEngineLog(text: string): TimedLine[] {
  const out: TimedLine[] = [];
  for (const raw of text.split('\n')) {
    const m = ENGINE_TS.exec(raw.replace(/\r$/, ''));
    if (!m) continue;
    out.push({ ts: m[1]!, record: parseOdooLine(m[2]!, Date.parse(m[1]!)) });
  }
  return out;
}
