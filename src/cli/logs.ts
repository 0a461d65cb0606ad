// `pulser logs <env> [service] [--errors] [--since T] [--until T] [--grep RE] [-n N] [--json]`:
// the last matching records of an environment's container log, as text for people or JSON lines.
import path from 'node:path';
import { createPulser } from '../app.ts';
import { PulserError } from '../errors.ts';
import { formatRecord } from '../logs/index.ts';
import type { Io } from './main.ts';
import { parseCommandArgs } from './args.ts';

export const LOGS_USAGE = `Usage: pulser logs <env> [service] [--errors] [--since T] [--until T] [--grep RE] [-n N] [--json]
  service        container service (default: odoo)
  --errors       only ERROR and CRITICAL records, with their tracebacks
  --since/--until  2024-05-01T10:00:00Z, "2024-05-01 10:00:00" (UTC) or a duration ago (15m, 2h)
  --grep RE      records whose message or traceback matches the regular expression
  -n N           the last N matching records (default 100, at most 10000)
  --json         one JSON record per line`;

export async function cmdLogs(argv: string[], io: Io): Promise<number> {
  const parsed = parseCommandArgs(
    argv,
    {
      errors: { type: 'boolean', default: false },
      since: { type: 'string' },
      until: { type: 'string' },
      grep: { type: 'string' },
      n: { type: 'string', short: 'n' },
    },
    LOGS_USAGE,
  );
  const f = parsed.values;
  if (f.help) {
    io.out(LOGS_USAGE);
    return 0;
  }
  const [env, service, ...extra] = parsed.positionals;
  if (!env || extra.length > 0) throw new PulserError('PULSER_E_USAGE', LOGS_USAGE);
  const p = createPulser({ root: path.resolve(f.dir), evidenceDir: null, secretsFile: f['secrets-file'], logLevel: 'warn', processMetrics: false, logWrite: (l) => io.err.write(l + '\n') });
  try {
    const res = await p.logs(env, { service, errors: f.errors, since: f.since, until: f.until, grep: f.grep, n: f.n });
    if (f.json) {
      io.out(res.records.map((r) => JSON.stringify(r)).join('\n'));
    } else {
      const where = res.container ? `${res.container.name} on host ${res.host}` : `no ${res.service} container of ${res.env} on host ${res.host}`;
      io.out(res.records.map(formatRecord).join('\n'));
      io.err.write(`# ${res.records.length} of ${res.matched} matching record(s), ${res.seen} read — ${where}\n`);
    }
    return 0;
  } finally {
    await p.close();
  }
}
