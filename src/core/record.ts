// What one pass of one environment leaves behind: the record the evidence pack, status, metrics
// and the CLI are all written from. Everything in it is already masked.
import type { Change, Finding, ApplyResult } from './reconciler.ts';
import type { ErrorRecord } from '../errors.ts';

export type PassOutcome =
  | 'in-sync' // nothing to do
  | 'applied' // changes applied, drift zero afterwards
  | 'planned' // drift found, not applied (sync.auto false, plan command, or stalled)
  | 'failed' // an apply or observe failed
  | 'invalid' // spec invalid: nothing observed or applied
  | 'interrupted'; // cut short (reported by the next start)

export interface ApplyEntry {
  index: number;
  subject: string;
  action: Change['action'];
  summary: string;
  startedAt: string;
  endedAt?: string;
  outcome?: ApplyResult['outcome'] | 'skipped';
  output?: string;
  error?: ErrorRecord;
  detail?: Record<string, unknown>;
}

/** The named fields of a record, e.g. the part of it an intent or a result.json repeats. */
export function pickFields<K extends keyof PassRecord>(rec: PassRecord, keys: readonly K[]): Pick<PassRecord, K> {
  const out = {} as Pick<PassRecord, K>;
  for (const k of keys) out[k] = rec[k];
  return out;
}

export interface PassRecord {
  /** `20261123-223015-k3x9` — also the evidence folder name */
  passId: string;
  env: string;
  /** path of the spec file, relative to the root */
  file: string;
  trigger: string;
  /** commit of the spec repository, or `uncommitted` for a working tree used as is */
  commit: string;
  startedAt: string;
  endedAt?: string;
  durationMs?: number;
  mode: 'plan' | 'apply';
  outcome?: PassOutcome;
  /** masked desired spec as YAML text (null when the spec was invalid and no last good state exists) */
  desiredYaml: string | null;
  specHash: string | null;
  /** true when the spec on disk is invalid and the last good desired state was used */
  usingLastGood: boolean;
  observed: Record<string, unknown>;
  plan: { changes: Change[]; findings: Finding[] };
  apply: ApplyEntry[];
  driftBefore: number;
  driftAfter: number | null;
  /** pending changes per reconciler as last measured (after apply when it ran, else from the plan) */
  driftByReconciler: Record<string, number>;
  errors: ErrorRecord[];
  /** a pass of this environment that was cut short and is reported by this one */
  resumes?: { passId: string; startedAt: string; applied: number; planned: number };
  /** the holder whose lease this pass took over because it had died */
  leaseTakenOver?: { pid: number; host: string; command: string; since: string };
}
