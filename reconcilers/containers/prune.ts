// Pruning by inventory, never by absence: containers pulser labelled for an environment whose file
// is gone are removed only if that environment's last known spec had `sync.prune: true`.
import type { Drivers } from '../../src/drivers/index.ts';
import type { SpecSnapshot } from '../../src/spec/model.ts';
import type { Inventory } from '../../src/core/inventory.ts';
import type { Logger } from '../../src/core/log.ts';
import type { EvidenceSink } from '../../src/core/engine.ts';
import type { PassRecord } from '../../src/core/record.ts';
import { asPulserError } from '../../src/errors.ts';
import { redact } from '../../src/core/redact.ts';
import { ownedContainersByEnv } from './index.ts';
import { planOrphanContainers } from './plan.ts';

export interface PruneDeps {
  snapshot: SpecSnapshot;
  drivers: Drivers;
  inventory: Inventory;
  evidence: EvidenceSink | null;
  log: Logger;
  secrets: () => Iterable<string>;
  now?: () => Date;
}

export async function pruneRemovedEnvironments(deps: PruneDeps): Promise<PassRecord[]> {
  const now = deps.now ?? (() => new Date());
  const known = new Set(deps.snapshot.envs.keys());
  const records: PassRecord[] = [];
  for (const host of deps.drivers.hostNames()) {
    const docker = deps.drivers.docker(host);
    let owned;
    try {
      owned = await ownedContainersByEnv(docker);
    } catch (err) {
      deps.log.warn(`cannot list containers on ${host} to look for removed environments: ${asPulserError(err).message}`);
      continue;
    }
    for (const [env, containers] of owned) {
      if (known.has(env)) continue;
      const inv = await deps.inventory.get(env);
      if (!inv?.prune) {
        deps.log.warn(`environment ${env} is not in git any more; its ${containers.length} container(s) on ${host} are kept (sync.prune was not on)`);
        continue;
      }
      const started = now();
      const plan = planOrphanContainers(env, containers);
      const rec: PassRecord = {
        passId: deps.evidence?.newPassId(started) ?? String(started.getTime()),
        env,
        file: `environments/${env}.yaml`,
        trigger: 'environment removed from git',
        commit: 'unknown',
        startedAt: started.toISOString(),
        mode: 'apply',
        desiredYaml: null,
        specHash: null,
        usingLastGood: false,
        observed: { containers: { host, containers } },
        plan,
        apply: [],
        driftBefore: plan.changes.length,
        driftAfter: null,
        driftByReconciler: { containers: plan.changes.length },
        errors: [],
      };
      await deps.evidence?.beginApply(rec);
      for (const [index, change] of plan.changes.entries()) {
        const entry: PassRecord['apply'][number] = { index, subject: change.subject, action: change.action, summary: change.summary, startedAt: now().toISOString() };
        try {
          await docker.remove(String(change.op.id));
          entry.outcome = 'applied';
          entry.output = change.summary;
        } catch (err) {
          entry.outcome = 'failed';
          entry.error = asPulserError(err).toJSON();
          rec.errors.push(entry.error);
        }
        entry.endedAt = now().toISOString();
        rec.apply.push(entry);
        await deps.evidence?.appendApply(env, entry);
      }
      const failed = rec.apply.filter((a) => a.outcome === 'failed').length;
      rec.driftAfter = failed;
      rec.driftByReconciler = { containers: failed };
      rec.outcome = failed ? 'failed' : 'applied';
      rec.endedAt = now().toISOString();
      rec.durationMs = Date.parse(rec.endedAt) - started.getTime();
      await deps.evidence?.write(redact(rec, deps.secrets()));
      if (!failed) await deps.inventory.forget(env);
      deps.log.info(`pruned environment ${env}: removed ${containers.length - failed} container(s) on ${host}`);
      records.push(rec);
    }
  }
  return records;
}
