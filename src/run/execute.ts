// `pulser run`: one declared template on one environment. Everything is checked before anything
// runs (template known, parameters typed, tier allowed); the process gets an argv, never a shell
// string built from input; and the whole run, refused or not, is recorded under evidence/runs/.
import os from 'node:os';
import path from 'node:path';
import { mkdir } from 'node:fs/promises';
import { asPulserError, PulserError, type ErrorRecord } from '../errors.ts';
import { redact } from '../core/redact.ts';
import { writeFileAtomic } from '../evidence/durable.ts';
import { LABEL, type Drivers } from '../drivers/index.ts';
import { openReadOnlySql } from '../drivers/sql.ts';
import type { DesiredEnv } from '../spec/model.ts';
import { formatRecord, readEnvLogs, parseLogQuery } from '../logs/index.ts';
import { bindParams, builtinsOf, checkTier, lookupTemplate, renderWords, type Template } from './templates.ts';

export type RunOutcome = 'running' | 'succeeded' | 'failed' | 'timed-out' | 'refused';

export interface RunRecord {
  version: 1;
  runId: string;
  env: string;
  host: string | null;
  tier: string | null;
  template: string;
  kind: string | null;
  /** the OS user pulser runs as, and whom they said they act for (`--as`) */
  who: { user: string; as: string | null };
  /** the arguments as given */
  args: string[];
  params: Record<string, string>;
  /** what actually ran: argv, or SQL and its parameters */
  command: string[] | null;
  sql: string | null;
  sqlParams: string[] | null;
  startedAt: string;
  endedAt: string | null;
  durationMs: number | null;
  outcome: RunOutcome;
  exitCode: number | null;
  output: string;
  truncated: boolean;
  error: ErrorRecord | null;
}

export interface RunDeps {
  drivers: Drivers;
  templates: Map<string, Template>;
  /** null when the environment is unknown or its spec invalid (the run is refused and recorded) */
  desired: DesiredEnv | null;
  /** where run records go (`<evidence>/runs`); null: not recorded */
  recordDir: string | null;
  secrets: () => Iterable<string>;
  now?: () => Date;
}

export interface RunRequest {
  env: string;
  template: string;
  args: string[];
  as?: string;
}

function runIdOf(d: Date): string {
  const iso = d.toISOString();
  return `${iso.slice(0, 10).replace(/-/g, '')}-${iso.slice(11, 19).replace(/:/g, '')}-${Math.random().toString(36).slice(2, 6).padEnd(4, '0')}`;
}

function osUser(): string {
  try {
    return os.userInfo().username;
  } catch {
    return `uid ${process.getuid?.() ?? '?'}`;
  }
}

/** Writes the record with every secret masked (when there is a record folder); returns the masked record. */
async function store(deps: RunDeps, rec: RunRecord): Promise<RunRecord> {
  const safe = redact(rec, deps.secrets());
  if (!deps.recordDir) return safe;
  await mkdir(deps.recordDir, { recursive: true });
  await writeFileAtomic(path.join(deps.recordDir, `${rec.runId}.json`), JSON.stringify(safe, null, 2) + '\n');
  return safe;
}

/** Runs one template and returns its record (also stored); refusals are records too, never thrown. */
export async function runTemplate(deps: RunDeps, req: RunRequest): Promise<RunRecord> {
  const now = deps.now ?? (() => new Date());
  const started = now();
  const rec: RunRecord = {
    version: 1,
    runId: runIdOf(started),
    env: req.env,
    host: deps.desired?.hostName ?? null,
    tier: deps.desired?.tier ?? null,
    template: req.template,
    kind: null,
    who: { user: osUser(), as: req.as ?? null },
    args: [...req.args],
    params: {},
    command: null,
    sql: null,
    sqlParams: null,
    startedAt: started.toISOString(),
    endedAt: null,
    durationMs: null,
    outcome: 'running',
    exitCode: null,
    output: '',
    truncated: false,
    error: null,
  };
  const finish = async (outcome: RunOutcome, error: PulserError | null) => {
    const ended = now();
    rec.outcome = outcome;
    rec.error = error ? error.toJSON() : null;
    rec.endedAt = ended.toISOString();
    rec.durationMs = ended.getTime() - started.getTime();
    return store(deps, rec);
  };

  let t: Template;
  let desired: DesiredEnv;
  try {
    if (req.as !== undefined && !/^[A-Za-z0-9._@+-]{1,64}$/.test(req.as)) throw new PulserError('PULSER_E_USAGE', '--as must be 1 to 64 letters, digits or . _ @ + -');
    t = lookupTemplate(deps.templates, req.template);
    rec.kind = t.kind;
    if (!deps.desired) throw new PulserError('PULSER_E_ENV_UNKNOWN', `no valid environment ${JSON.stringify(req.env)}`);
    desired = deps.desired;
    checkTier(t, desired);
    rec.params = bindParams(t, req.args);
  } catch (err) {
    return finish('refused', asPulserError(err));
  }

  const values = { ...rec.params, ...builtinsOf(desired) };
  if (t.command) rec.command = renderWords(t.command, values);
  if (t.sql) {
    rec.sql = t.sql;
    rec.sqlParams = renderWords(t.sqlParams ?? [], values);
  }
  // The intent is on disk before anything runs: a run cut short still shows who started what.
  await store(deps, rec);
  try {
    await execute(deps, desired, t, rec);
  } catch (err) {
    const e = asPulserError(err);
    return finish(e.code === 'PULSER_E_TEMPLATE_TIMEOUT' ? 'timed-out' : 'failed', e);
  }
  if (rec.exitCode !== null && rec.exitCode !== 0) return finish('failed', new PulserError('PULSER_E_TEMPLATE_FAILED', `${t.name} exited with code ${rec.exitCode}`));
  return finish('succeeded', null);
}

async function odooContainer(drivers: Drivers, desired: DesiredEnv): Promise<{ id: string; name: string }> {
  const docker = drivers.docker(desired.hostName);
  docker.invalidate();
  const mine = (await docker.containers())
    .filter((c) => c.labels[LABEL.managedBy] === 'pulser' && c.labels[LABEL.env] === desired.name && c.labels[LABEL.service] === 'odoo')
    .sort((a, b) => (a.state === 'running' ? 0 : 1) - (b.state === 'running' ? 0 : 1) || b.created - a.created);
  const c = mine[0];
  if (!c) throw new PulserError('PULSER_E_TEMPLATE_FAILED', `environment ${desired.name} has no Odoo container on host ${desired.hostName}`);
  return c;
}

function timedOut(t: Template): PulserError {
  return new PulserError('PULSER_E_TEMPLATE_TIMEOUT', `${t.name} ran longer than ${t.timeoutMs} ms and was killed`);
}

async function execute(deps: RunDeps, desired: DesiredEnv, t: Template, rec: RunRecord): Promise<void> {
  const { drivers } = deps;
  switch (t.kind) {
    case 'exec': {
      const c = await odooContainer(drivers, desired);
      const r = await drivers.docker(desired.hostName).exec(c.id, rec.command!, { timeoutMs: t.timeoutMs, maxOutputBytes: t.maxOutput });
      rec.output = r.output;
      rec.truncated = r.truncated;
      rec.exitCode = r.exitCode;
      if (r.timedOut) throw timedOut(t);
      return;
    }
    case 'host': {
      const r = await drivers.exec(desired.hostName, rec.command!, { timeoutMs: t.timeoutMs, maxOutputBytes: t.maxOutput });
      rec.output = r.stdout + r.stderr;
      rec.truncated = r.truncated;
      rec.exitCode = r.exitCode;
      if (r.timedOut) throw timedOut(t);
      return;
    }
    case 'sql': {
      const db = desired.spec.database;
      const sql = await openReadOnlySql(drivers, { host: desired.hostName, address: db.host, port: db.port, database: db.name, user: db.user, password: db.password, timeoutMs: t.timeoutMs });
      try {
        const res = await sql.query(rec.sql!, rec.sqlParams ?? []).catch((err: Error & { code?: string }) => {
          // 57014: query_canceled (statement_timeout)
          if (err.code === '57014') throw timedOut(t);
          throw new PulserError('PULSER_E_TEMPLATE_FAILED', `${t.name}: ${err.message}`, { cause: err });
        });
        rec.exitCode = 0;
        const text = [res.fields.join('\t'), ...res.rows.map((r) => res.fields.map((f) => String(r[f] ?? '')).join('\t'))].join('\n');
        rec.truncated = text.length > t.maxOutput;
        rec.output = text.slice(0, t.maxOutput);
      } finally {
        await sql.close();
      }
      return;
    }
    case 'restart': {
      const c = await odooContainer(drivers, desired);
      await drivers.docker(desired.hostName).restart(c.id);
      rec.exitCode = 0;
      rec.output = `restarted ${c.name} (${c.id.slice(0, 12)})`;
      return;
    }
    case 'status': {
      const c = await odooContainer(drivers, desired);
      const info = await drivers.docker(desired.hostName).inspect(c.id);
      rec.exitCode = 0;
      rec.output = info
        ? [`name\t${c.name}`, `image\t${info.Config.Image}`, `state\t${info.State.Status}`, `started\t${info.State.StartedAt}`, `restarts\t${info.RestartCount}`, `health\t${info.State.Health?.Status ?? 'none'}`].join('\n')
        : `${c.name} disappeared`;
      return;
    }
    case 'logs': {
      const n = rec.params.n ?? '20';
      const res = await readEnvLogs(drivers, desired, parseLogQuery({ errors: true, n }, new Date()), { timeoutMs: t.timeoutMs });
      rec.exitCode = 0;
      const text = res.records.map(formatRecord).join('\n');
      rec.truncated = text.length > t.maxOutput;
      rec.output = text.slice(0, t.maxOutput);
      return;
    }
  }
}
