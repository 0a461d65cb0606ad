// The log explorer's public face: an environment name and a query in, matching records out.
import { PulserError } from '../errors.ts';
import type { Drivers } from '../drivers/index.ts';
import type { DesiredEnv, EnvLoad, SpecSnapshot } from '../spec/model.ts';
import { parseLogQuery, type LogQueryInput } from './query.ts';
import { readEnvLogs, type LogResult } from './read.ts';

export { parseOdooLog, OdooLogParser, parseHeader, isErrorRecord, tracebackOf, werkzeugRequest, httpStatusOf, type OdooLogRecord, type WerkzeugRequest } from './odoo.ts';
export { parseLogQuery, LastMatching, type LogQuery, type LogQueryInput } from './query.ts';
export { readEnvLogs, formatRecord, type LogResult } from './read.ts';
export { forEachDockerLogLine } from './stream.ts';

export interface LogReaderDeps {
  /** the snapshot the daemon runs on, or a fresh load */
  snapshot: () => Promise<SpecSnapshot>;
  desiredFor: (load: EnvLoad) => DesiredEnv | null;
  drivers: () => Drivers;
}

export type LogReader = (env: string, input: LogQueryInput) => Promise<LogResult>;

export function createLogReader(deps: LogReaderDeps): LogReader {
  return async (env, input) => {
    const q = parseLogQuery(input, new Date());
    const snap = await deps.snapshot();
    const load = snap.envs.get(env);
    if (!load) throw new PulserError('PULSER_E_ENV_UNKNOWN', `no environment ${JSON.stringify(env)} in environments/`);
    const desired = deps.desiredFor(load);
    if (!desired) throw (load.ok ? null : load.errors[0]) ?? new PulserError('PULSER_E_SPEC_INVALID', `environment ${env} has no valid spec`);
    return readEnvLogs(deps.drivers(), desired, q);
  };
}
