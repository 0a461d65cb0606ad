// The live status of every environment, built from pass records: what `GET /api/status`,
// the status table and the metrics tell people.
import type { PassRecord, PassOutcome } from './record.ts';
import type { DesiredEnv } from '../spec/model.ts';
import type { ErrorRecord } from '../errors.ts';

export interface EnvStatus {
  env: string;
  file: string;
  tier: string | null;
  host: string | null;
  specValid: boolean;
  usingLastGood: boolean;
  inSync: boolean;
  drift: number;
  stalled: { specHash: string; error: ErrorRecord } | null;
  lastPass: {
    passId: string;
    trigger: string;
    mode: 'plan' | 'apply';
    outcome: PassOutcome;
    startedAt: string;
    endedAt: string | null;
    durationMs: number | null;
    commit: string;
  };
  lastError: ErrorRecord | null;
  errors: ErrorRecord[];
  /** per reconciler facts, e.g. containers → running image */
  facts: Record<string, unknown>;
  /** the newest complete backup, and whether a restore drill verified it (null: not drilled yet) */
  lastBackup: { id: string; at: string; size: number; verified: boolean | null } | null;
}

export class StatusBoard {
  private readonly envs = new Map<string, EnvStatus>();

  /** `lastError`: what to show when the record has none of its own (the daemon's, persisted). */
  update(rec: PassRecord, desired: DesiredEnv | null, facts: Record<string, unknown>, stalled: EnvStatus['stalled'], lastError?: ErrorRecord | null): EnvStatus {
    const drift = rec.driftAfter ?? rec.driftBefore;
    const s: EnvStatus = {
      env: rec.env,
      file: rec.file,
      tier: desired?.tier ?? null,
      host: desired?.hostName ?? null,
      specValid: rec.outcome !== 'invalid' && !rec.usingLastGood,
      usingLastGood: rec.usingLastGood,
      inSync: drift === 0 && rec.errors.length === 0 && rec.outcome !== 'invalid',
      drift,
      stalled,
      lastPass: {
        passId: rec.passId,
        trigger: rec.trigger,
        mode: rec.mode,
        outcome: rec.outcome ?? 'failed',
        startedAt: rec.startedAt,
        endedAt: rec.endedAt ?? null,
        durationMs: rec.durationMs ?? null,
        commit: rec.commit,
      },
      lastError: rec.errors.at(-1) ?? lastError ?? null,
      errors: rec.errors,
      facts: Object.keys(facts).length ? facts : (this.envs.get(rec.env)?.facts ?? {}),
      lastBackup: null,
    };
    const backups = s.facts.backups as { lastBackup?: { id: string; at: string; size: number; verified: boolean | null } | null } | undefined;
    if (backups?.lastBackup) s.lastBackup = { id: backups.lastBackup.id, at: backups.lastBackup.at, size: backups.lastBackup.size, verified: backups.lastBackup.verified };
    this.envs.set(rec.env, s);
    return s;
  }

  get(env: string): EnvStatus | undefined {
    return this.envs.get(env);
  }

  all(): EnvStatus[] {
    return [...this.envs.values()].sort((a, b) => a.env.localeCompare(b.env));
  }

  remove(env: string): void {
    this.envs.delete(env);
  }
}
