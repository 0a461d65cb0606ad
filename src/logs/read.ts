// Reads an environment's container log through its host's Docker engine (local or over SSH),
// parsing and filtering it as it streams: only the last N matching records are ever held.
import type { Drivers } from '../drivers/index.ts';
import { LABEL } from '../drivers/index.ts';
import type { DesiredEnv } from '../spec/model.ts';
import { PulserError } from '../errors.ts';
import { OdooLogParser, type OdooLogRecord } from './odoo.ts';
import { LastMatching, type LogQuery } from './query.ts';
import { forEachDockerLogLine } from './stream.ts';

export interface LogResult {
  env: string;
  host: string;
  service: string;
  container: { id: string; name: string; state: string } | null;
  records: OdooLogRecord[];
  /** records read and records that matched (before keeping the last N) */
  seen: number;
  matched: number;
}

const READ_TIMEOUT_MS = 120_000;
/** The engine's timestamps (when it received a line) and Odoo's own may differ a little. */
const ENGINE_SLACK_S = 300;

export async function readEnvLogs(drivers: Drivers, desired: DesiredEnv, q: LogQuery, opts: { timeoutMs?: number } = {}): Promise<LogResult> {
  const docker = drivers.docker(desired.hostName);
  const mine = (await docker.containers()).filter((c) => c.labels[LABEL.managedBy] === 'pulser' && c.labels[LABEL.env] === desired.name);
  const base = { env: desired.name, host: desired.hostName, service: q.service };
  const candidates = mine
    .filter((c) => c.labels[LABEL.service] === q.service)
    .sort((a, b) => (a.state === 'running' ? 0 : 1) - (b.state === 'running' ? 0 : 1) || b.created - a.created);
  const target = candidates[0];
  if (!target) {
    const services = [...new Set(mine.map((c) => c.labels[LABEL.service]).filter(Boolean))].sort();
    if (services.length > 0) throw new PulserError('PULSER_E_LOGS_QUERY', `environment ${desired.name} has no service ${JSON.stringify(q.service)} (services: ${services.join(', ')})`);
    return { ...base, container: null, records: [], seen: 0, matched: 0 };
  }
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), opts.timeoutMs ?? READ_TIMEOUT_MS);
  const select = new LastMatching(q);
  const parser = new OdooLogParser();
  let stream: NodeJS.ReadableStream | null = null;
  try {
    // The engine narrows by its own timestamps (with slack for clock skew); records are then
    // filtered exactly by the time Odoo printed.
    stream = await docker.logStream(target.id, {
      since: q.since ? Math.floor(q.since.getTime() / 1000) - ENGINE_SLACK_S : undefined,
      until: q.until ? Math.ceil(q.until.getTime() / 1000) + ENGINE_SLACK_S : undefined,
      signal: ac.signal,
    });
    await forEachDockerLogLine(stream as AsyncIterable<Buffer>, (line) => {
      const r = parser.push(line);
      if (r) select.offer(r);
    });
    const last = parser.end();
    if (last) select.offer(last);
  } catch (err) {
    if (ac.signal.aborted) throw new PulserError('PULSER_E_TIMEOUT', `reading the log of ${target.name} on host ${desired.hostName} took longer than ${opts.timeoutMs ?? READ_TIMEOUT_MS} ms`, { cause: err });
    throw err;
  } finally {
    clearTimeout(timer);
    (stream as unknown as { destroy?: () => void } | null)?.destroy?.();
  }
  return {
    ...base,
    container: { id: target.id, name: target.name, state: target.state },
    records: select.result(),
    seen: select.seen,
    matched: select.matched,
  };
}

/** One record for people: the header line as Odoo printed it, then its continuation lines. */
export function formatRecord(r: OdooLogRecord): string {
  if (r.time === null) return [r.message, ...r.lines].join('\n');
  const t = r.time.replace('T', ' ').replace('.', ',').replace(/Z$/, '');
  return [`${t} ${r.pid} ${r.level} ${r.db ?? '?'} ${r.logger}: ${r.message}`, ...r.lines].join('\n');
}
