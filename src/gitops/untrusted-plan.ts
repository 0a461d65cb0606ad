// Plans a spec nobody reviewed yet — a pull request's head, or a checkout given to
// `pulser plan --untrusted` — without trusting it: secrets stay references, and the drivers reach
// only what the tracked branch declares (src/drivers/untrusted.ts). Nothing reaches live status
// or evidence.
import { Engine } from '../core/engine.ts';
import type { Reconciler } from '../core/reconciler.ts';
import type { PassRecord } from '../core/record.ts';
import type { Logger } from '../core/log.ts';
import { createDrivers } from '../drivers/index.ts';
import { trustBoundary, untrustedDrivers, withTrackedHost } from '../drivers/untrusted.ts';
import { Metrics } from '../metrics.ts';
import { loadSpecs } from '../spec/load.ts';
import type { SpecSnapshot } from '../spec/model.ts';
import type { SecretSource } from '../spec/secrets.ts';

export interface UntrustedPlanDeps {
  /** the tracked branch's load (null: nothing is trusted, nothing is contacted) */
  tracked: SpecSnapshot | null;
  secrets: SecretSource;
  reconcilers: Reconciler[];
  log: Logger;
  /** secret values known to the caller, masked in the records */
  knownSecrets: () => Iterable<string>;
  trigger: string;
  commit: string;
  /** plan only these environments */
  only?: string[];
  dockerTimeoutMs?: number;
}

export async function planUntrusted(dir: string, deps: UntrustedPlanDeps): Promise<{ records: PassRecord[]; secrets: string[] }> {
  const snap = await loadSpecs(dir, { secrets: deps.secrets, untrusted: true, only: deps.only });
  const boundary = trustBoundary(deps.tracked, snap);
  // The tracked hosts' own credentials, for the tracked hosts' own endpoints only.
  const inner = createDrivers(deps.tracked?.hosts ?? new Map(), { timeoutMs: deps.dockerTimeoutMs, secret: (n) => deps.secrets.forSpec(n) });
  const drivers = untrustedDrivers(inner, boundary);
  const secrets = () => [...deps.knownSecrets(), ...snap.secretValues];
  const records: PassRecord[] = [];
  try {
    const engine = new Engine({
      reconcilers: deps.reconcilers,
      drivers: () => drivers,
      evidence: null,
      metrics: new Metrics({ processMetrics: false }),
      log: deps.log,
      secrets,
      commit: async () => deps.commit,
    });
    for (const load of [...snap.envs.values()].sort((a, b) => a.name.localeCompare(b.name))) {
      const pinned = load.ok ? { ...load, desired: withTrackedHost(load.desired, deps.tracked, boundary) } : load;
      records.push(await engine.runPass(pinned, { mode: 'plan', trigger: deps.trigger, fresh: true }));
    }
    return { records, secrets: secrets() };
  } finally {
    await drivers.close();
  }
}
