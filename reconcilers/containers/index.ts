// The containers reconciler: the Odoo container of each environment on its host's Docker engine.
// Rollout order: park the previous container, start the new one, wait for its health probe, and
// only then remove the previous one; on failure the previous container is put back.
import type { ApplyResult, Change, ReconcileContext, Reconciler } from '../../src/core/reconciler.ts';
import type { ContainerSummary, DockerDriver, ProbeResult } from '../../src/drivers/index.ts';
import { describeProbe, LABEL } from '../../src/drivers/index.ts';
import { asPulserError, PulserError, type ErrorCode } from '../../src/errors.ts';
import { parseDuration } from '../../src/core/duration.ts';
import type { DesiredEnv } from '../../src/spec/model.ts';
import { containerName, designOdooContainer, madeFrom, parkedName, probationCreateOptions, renderOdooConf, ODOO_CONF_DIR, ODOO_CONF_NAME, STEADY_RESTART_POLICY, type OdooContainerDesign } from './design.ts';
import { planContainers, RECONCILER, type ContainersObserved } from './plan.ts';

export { planContainers, planOrphanContainers, type ContainersObserved } from './plan.ts';
export { designOdooContainer, createOptions, renderOdooConf, containerName } from './design.ts';

function ownedBy(env: string, service = 'odoo') {
  return (c: ContainerSummary) => c.labels[LABEL.managedBy] === 'pulser' && c.labels[LABEL.env] === env && c.labels[LABEL.service] === service;
}

/** An environment's Odoo containers (newest first), and a container not its own holding their name. */
function sortOut(all: ContainerSummary[], env: string): { mine: ContainerSummary[]; holder: ContainerSummary | null } {
  const name = containerName(env);
  const mine = all.filter(ownedBy(env)).sort((a, b) => b.created - a.created);
  return { mine, holder: all.find((c) => c.name === name && !mine.includes(c)) ?? null };
}

/** All containers pulser created on a host, grouped by environment (for pruning). */
export async function ownedContainersByEnv(docker: DockerDriver): Promise<Map<string, ContainerSummary[]>> {
  const out = new Map<string, ContainerSummary[]>();
  for (const c of await docker.containers()) {
    const env = c.labels[LABEL.env];
    if (c.labels[LABEL.managedBy] !== 'pulser' || !env) continue;
    out.set(env, [...(out.get(env) ?? []), c]);
  }
  return out;
}

async function observe(ctx: ReconcileContext): Promise<ContainersObserved> {
  const { desired, drivers } = ctx;
  let all: ContainerSummary[];
  try {
    all = await drivers.docker(desired.hostName).containers();
  } catch (err) {
    // A droplet that does not exist yet has no containers; the hosts reconciler creates it first.
    if (err instanceof PulserError && err.code === 'PULSER_E_DROPLET_NOT_READY') return { host: desired.hostName, containers: [], nameHolder: null, probe: null };
    throw err;
  }
  const { mine: containers, holder: nameHolder } = sortOut(all, desired.name);
  // An unfinished rollout (more than one container) is the only case where observing needs the
  // new container's health; a single container, the usual case, costs no design and no probe.
  let probe: ProbeResult | null = null;
  if (containers.length > 1) {
    const design = designOdooContainer(desired);
    if (containers.some((c) => madeFrom(c.labels, design) && c.state === 'running')) probe = await probeOnce(ctx, desired);
  }
  return { host: desired.hostName, containers, nameHolder, probe };
}

function probeOnce(ctx: ReconcileContext, desired: DesiredEnv): Promise<ProbeResult> {
  const h = desired.spec.odoo.health;
  return ctx.drivers.probe(desired.hostName, desired.spec.odoo.port, h.path, parseDuration(h.timeout), desired.spec.odoo.bind);
}

interface HealthWait {
  ok: boolean;
  attempts: number;
  last: ProbeResult | null;
  exited: { exitCode: number } | null;
}

/** Probes until healthy, the retries run out, or the container exits. */
async function waitHealthy(ctx: ReconcileContext, docker: DockerDriver, id: string, retries?: number): Promise<HealthWait> {
  const h = ctx.desired.spec.odoo.health;
  const interval = parseDuration(h.interval);
  const max = retries ?? h.retries;
  let last: ProbeResult | null = null;
  for (let attempt = 1; attempt <= max; attempt++) {
    last = await probeOnce(ctx, ctx.desired);
    if (last.ok) return { ok: true, attempts: attempt, last, exited: null };
    // The pause before the next probe runs while the container is inspected, not after it.
    const pause = attempt < max ? sleep(interval) : null;
    const info = await docker.inspect(id);
    // A container on probation has no restart policy; a healed one has: a restart is an exit too.
    if (!info || !info.State.Running || info.State.Restarting || info.RestartCount > 0) {
      return { ok: false, attempts: attempt, last, exited: { exitCode: info?.State.ExitCode ?? -1 } };
    }
    ctx.progress(`waiting for ${ctx.desired.name} to be healthy: probe ${attempt}/${max} — ${describeProbe(last)}`);
    await pause;
  }
  return { ok: false, attempts: max, last, exited: null };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function failed(code: ErrorCode, message: string, detail: Record<string, unknown>): ApplyResult {
  return { outcome: 'failed', error: new PulserError(code, message, { details: detail }).toJSON(), detail };
}

async function ensureImage(ctx: ReconcileContext, docker: DockerDriver, image: string): Promise<string> {
  const have = await docker.image(image);
  if (have) return have.id;
  ctx.progress(`pulling ${image} on ${docker.host}`);
  await docker.pull(image, (line) => ctx.progress(`pull ${image}: ${line}`));
  const pulled = await docker.image(image);
  if (!pulled) throw new PulserError('PULSER_E_IMAGE_NOT_FOUND', `image ${image} is still missing on host ${docker.host} after pulling`);
  return pulled.id;
}

function describeFailure(wait: HealthWait, retries: number): { code: ErrorCode; text: string } {
  if (wait.exited) {
    return { code: 'PULSER_E_CONTAINER_EXITED', text: `exited with code ${wait.exited.exitCode} after ${wait.attempts} probe(s)${wait.last ? ` (last: ${describeProbe(wait.last)})` : ''}` };
  }
  return { code: 'PULSER_E_HEALTH_CHECK_FAILED', text: `failed ${retries} health probe(s); last: ${wait.last ? describeProbe(wait.last) : 'none'}` };
}

async function applyRollout(ctx: ReconcileContext, op: Record<string, unknown>): Promise<ApplyResult> {
  const design = designOdooContainer(ctx.desired);
  const docker = ctx.drivers.docker(ctx.desired.hostName);
  const imageId = await ensureImage(ctx, docker, design.image);

  docker.invalidate();
  const { mine, holder } = sortOut(await docker.containers(), design.env);
  if (holder) {
    return failed('PULSER_E_NAME_CONFLICT', `container ${holder.name} (${holder.id.slice(0, 12)}) is not pulser's; refusing to touch it`, { container: holder.id });
  }
  // A candidate left by an interrupted attempt is not trusted: it is recreated.
  for (const c of mine.filter((c) => c.labels[LABEL.specHash] === design.specHash)) await docker.remove(c.id);
  const olds = mine.filter((c) => c.labels[LABEL.specHash] !== design.specHash);
  const previous = olds.find((c) => c.state === 'running') ?? olds[0] ?? null;
  if (op.previous && previous && previous.id !== op.previous) ctx.log.info('previous container changed since planning', { planned: op.previous, found: previous.id });

  const previousWasRunning = previous?.state === 'running';
  if (previous && previous.name !== parkedName(design.name, previous.id)) await docker.rename(previous.id, parkedName(design.name, previous.id));

  const id = await docker.create(probationCreateOptions(design));
  const h = ctx.desired.spec.odoo.health;
  try {
    // odoo.conf is copied in while the previous container stops: neither waits for the other.
    const copy = docker.putFiles(id, ODOO_CONF_DIR, [{ name: ODOO_CONF_NAME, content: renderOdooConf(design.options), mode: 0o640 }]);
    let stop: Promise<void> = Promise.resolve();
    if (previous && previousWasRunning) {
      ctx.progress(`stopping previous container ${previous.id.slice(0, 12)}`);
      stop = docker.stop(previous.id);
    }
    for (const step of await Promise.allSettled([copy, stop])) if (step.status === 'rejected') throw step.reason;
    ctx.progress(`starting ${design.name} (${design.image})`);
    await docker.start(id);
  } catch (err) {
    return rollBack(ctx, docker, design, id, previous, previousWasRunning, {
      code: asPulserError(err).code,
      text: `could not start: ${asPulserError(err).message}`,
    }, null);
  }
  const wait = await waitHealthy(ctx, docker, id);
  if (!wait.ok) return rollBack(ctx, docker, design, id, previous, previousWasRunning, describeFailure(wait, h.retries), wait);

  await docker.setRestartPolicy(id, STEADY_RESTART_POLICY);
  for (const c of olds) await docker.remove(c.id);
  return {
    outcome: 'applied',
    output: `${design.name} ${id.slice(0, 12)} healthy after ${wait.attempts} probe(s): ${describeProbe(wait.last!)}`,
    detail: { containerId: id, image: design.image, imageId, specHash: design.specHash, probes: wait.attempts, removed: olds.map((c) => c.id) },
  };
}

async function rollBack(
  ctx: ReconcileContext,
  docker: DockerDriver,
  design: OdooContainerDesign,
  newId: string,
  previous: ContainerSummary | null,
  previousWasRunning: boolean,
  failure: { code: ErrorCode; text: string },
  wait: HealthWait | null,
): Promise<ApplyResult> {
  const logTail = await docker.logTail(newId, 20).catch((e: unknown) => `(logs unavailable: ${asPulserError(e).message})`);
  await docker.remove(newId);
  const probe = wait?.last ? { url: wait.last.url, status: wait.last.status, body: wait.last.body, error: wait.last.error, attempts: wait.attempts } : null;
  const detail: Record<string, unknown> = { failedContainer: newId, image: design.image, probe, logTail, rolledBackTo: previous?.id ?? null };
  if (!previous) return failed(failure.code, `${design.name} (${design.image}) ${failure.text}; there was no previous container to put back`, detail);
  try {
    await docker.rename(previous.id, design.name);
    if (previousWasRunning) {
      await docker.start(previous.id);
      const back = await waitHealthy(ctx, docker, previous.id);
      detail.previousProbe = back.last ? describeProbe(back.last) : null;
      if (!back.ok) {
        return failed('PULSER_E_ROLLBACK_FAILED', `${design.name} (${design.image}) ${failure.text}; the previous container ${previous.id.slice(0, 12)} was put back but is not healthy either`, detail);
      }
    }
  } catch (err) {
    return failed('PULSER_E_ROLLBACK_FAILED', `${design.name} (${design.image}) ${failure.text}; putting back ${previous.id.slice(0, 12)} failed: ${asPulserError(err).message}`, detail);
  }
  return failed(failure.code, `${design.name} (${design.image}) ${failure.text}; rolled back to ${previous.id.slice(0, 12)} (${previous.image})`, detail);
}

async function applyStart(ctx: ReconcileContext, op: Record<string, unknown>): Promise<ApplyResult> {
  const docker = ctx.drivers.docker(ctx.desired.hostName);
  const id = String(op.id);
  const info = await docker.inspect(id);
  if (info?.State.Paused) await docker.unpause(id);
  else await docker.start(id);
  const wait = await waitHealthy(ctx, docker, id);
  if (!wait.ok) {
    const f = describeFailure(wait, ctx.desired.spec.odoo.health.retries);
    const logTail = await docker.logTail(id, 20).catch(() => '');
    return failed(f.code, `restarted ${id.slice(0, 12)} but it ${f.text}`, { containerId: id, logTail });
  }
  return { outcome: 'applied', output: `started ${id.slice(0, 12)}: ${describeProbe(wait.last!)}`, detail: { containerId: id } };
}

async function applyFinishRollout(ctx: ReconcileContext, op: Record<string, unknown>): Promise<ApplyResult> {
  const docker = ctx.drivers.docker(ctx.desired.hostName);
  const id = String(op.id);
  const others = (op.others as string[]) ?? [];
  const wait = await waitHealthy(ctx, docker, id);
  if (wait.ok) {
    await docker.setRestartPolicy(id, STEADY_RESTART_POLICY);
    for (const o of others) await docker.remove(o);
    return { outcome: 'applied', output: `kept ${id.slice(0, 12)} (${describeProbe(wait.last!)}), removed ${others.length}`, detail: { containerId: id, removed: others } };
  }
  // The interrupted rollout's container is unhealthy: go back to the newest previous container.
  docker.invalidate();
  const all = await docker.containers();
  const previous = all.filter((c) => others.includes(c.id)).sort((a, b) => b.created - a.created)[0] ?? null;
  const design = designOdooContainer(ctx.desired);
  return rollBack(ctx, docker, design, id, previous, true, describeFailure(wait, ctx.desired.spec.odoo.health.retries), wait);
}

async function applyRemove(ctx: ReconcileContext, op: Record<string, unknown>): Promise<ApplyResult> {
  const docker = ctx.drivers.docker(ctx.desired.hostName);
  await docker.remove(String(op.id));
  return { outcome: 'applied', output: `removed ${String(op.name)} (${String(op.id).slice(0, 12)})`, detail: { containerId: op.id } };
}

export const containers: Reconciler<ContainersObserved> = {
  name: RECONCILER,
  dependsOn: ['hosts'],
  observe,
  plan: (desired, observed) => planContainers(desired, observed),
  summarize(observed) {
    const c = observed.containers.find((x) => x.state === 'running') ?? observed.containers[0];
    if (!c) return { running: null };
    return { running: { containerId: c.id, name: c.name, image: c.image, imageId: c.imageId, state: c.state, status: c.status } };
  },
  async apply(ctx, change: Change) {
    switch (change.op.kind) {
      case 'rollout':
        return applyRollout(ctx, change.op);
      case 'start':
        return applyStart(ctx, change.op);
      case 'finish-rollout':
        return applyFinishRollout(ctx, change.op);
      case 'remove':
        return applyRemove(ctx, change.op);
      default:
        throw new PulserError('PULSER_E_INTERNAL', `containers: unknown operation ${String(change.op.kind)}`);
    }
  },
};
