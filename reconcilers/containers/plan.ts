// The pure planner of the containers reconciler: desired design + observed containers → changes.
// No I/O, no clock: everything it needs is in its arguments, so it is golden-tested.
import type { DesiredEnv } from '../../src/spec/model.ts';
import type { Change, FieldDiff, Finding, Plan } from '../../src/core/reconciler.ts';
import type { ContainerSummary, ProbeResult } from '../../src/drivers/index.ts';
import { LABEL } from '../../src/drivers/docker.ts';
import { PulserError } from '../../src/errors.ts';
import { describeProbe } from '../../src/drivers/http.ts';
import { designOdooContainer, madeFrom, shownSpecOf, ODOO_HTTP_PORT, type OdooContainerDesign, type ShownSpec } from './design.ts';

export interface ContainersObserved {
  host: string;
  /** containers labelled for this environment and service, newest first */
  containers: ContainerSummary[];
  /** a container pulser does not own (or owned by another environment) that holds the wanted name */
  nameHolder: ContainerSummary | null;
  /** probe of the current container, taken only when a rollout was left unfinished */
  probe: ProbeResult | null;
}

export const RECONCILER = 'containers';

export function subjectOf(env: string, service = 'odoo'): string {
  return `${env}/${RECONCILER}/${service}`;
}

function isRunning(c: ContainerSummary): boolean {
  return c.state === 'running' || c.state === 'restarting';
}

function publishes(c: ContainerSummary, d: OdooContainerDesign): boolean {
  return c.ports.some((p) => p.privatePort === ODOO_HTTP_PORT && p.publicPort === d.port);
}

function outsideChanges(c: ContainerSummary, d: OdooContainerDesign): string {
  const what = [c.image !== d.image ? `image ${c.image}` : null, publishes(c, d) ? null : `port ${d.port} not published`];
  return what.filter(Boolean).join(', ');
}

function short(id: string): string {
  return id.slice(0, 12);
}

/** Field-by-field differences of two shown specs; secrets compare by digest and print as "(secret)". */
export function diffShown(before: ShownSpec | null, after: ShownSpec): Record<string, FieldDiff> {
  const out: Record<string, FieldDiff> = {};
  const scalar = (k: 'image' | 'port' | 'bind') => {
    if (!before || before[k] !== after[k]) out[k] = { before: before ? before[k] : undefined, after: after[k] };
  };
  scalar('image');
  scalar('port');
  scalar('bind');
  if (!before || JSON.stringify(before.command) !== JSON.stringify(after.command)) {
    out.command = { before: before?.command?.map(showValue) ?? undefined, after: after.command?.map(showValue) ?? undefined };
  }
  for (const group of ['env', 'config'] as const) {
    const b = before?.[group] ?? {};
    const a = after[group];
    for (const k of new Set([...Object.keys(b), ...Object.keys(a)])) {
      if (b[k] === a[k]) continue;
      out[`${group}.${k}`] = { before: showValue(b[k]), after: showValue(a[k]) };
    }
  }
  return out;
}

const SECRET_SHOWN = / #[0-9a-f]{12}$/;

function showValue(v: string | undefined): string | undefined {
  if (v === undefined) return undefined;
  return SECRET_SHOWN.test(v) ? `${v.replace(SECRET_SHOWN, '')} (secret)` : v;
}

export function summarize(diff: Record<string, FieldDiff>): string {
  const parts = Object.entries(diff).map(([k, d]) => {
    const secret = [d.before, d.after].flat().some((x) => typeof x === 'string' && x.endsWith(' (secret)'));
    if (secret) return `${k} changed (secret)`;
    if (d.before === undefined) return `${k} added`;
    if (d.after === undefined) return `${k} removed`;
    return `${k} ${String(d.before)} → ${String(d.after)}`;
  });
  if (parts.length === 0) return 'no visible difference';
  return parts.length <= 3 ? parts.join('; ') : `${parts.slice(0, 3).join('; ')}; ${parts.length - 3} more`;
}

export function planContainers(desired: DesiredEnv, observed: ContainersObserved): Plan {
  const design = designOdooContainer(desired);
  const subject = subjectOf(desired.name);
  const findings: Finding[] = [];
  const changes: Change[] = [];

  if (observed.nameHolder) {
    const h = observed.nameHolder;
    const owner = h.labels[LABEL.env];
    const msg = owner
      ? `container ${h.name} (${short(h.id)}) belongs to environment ${owner}; pulser will not take it over`
      : `container ${h.name} (${short(h.id)}) exists without pulser labels; pulser never touches it — rename or remove it by hand`;
    findings.push({ subject, error: new PulserError('PULSER_E_NAME_CONFLICT', msg, { details: { container: h.id, name: h.name } }).toJSON() });
    return { changes, findings };
  }

  const mine = observed.containers;
  const current = mine.filter((c) => madeFrom(c.labels, design));
  const running = current.find(isRunning);
  const others = mine.filter((c) => c !== running);

  if (running) {
    const leftovers = others.map((c) => c.id);
    const tampered = running.image !== design.image || !publishes(running, design);
    if (tampered) {
      changes.push(
        rollout(desired, design, running, leftovers, `container ${running.name} no longer matches its spec (changed outside pulser: ${outsideChanges(running, design)})`),
      );
    } else if (leftovers.length > 0) {
      const probeOk = observed.probe?.ok === true;
      changes.push({
        subject,
        reconciler: RECONCILER,
        action: 'update',
        risk: probeOk ? 'safe' : 'disruptive',
        summary: `finish interrupted rollout: keep ${short(running.id)}, remove ${leftovers.length} previous container(s)`,
        diff: { containers: { before: mine.map((c) => short(c.id)), after: [short(running.id)] } },
        reason: `a rollout was cut short: the new container runs next to ${leftovers.length} previous one(s)${observed.probe ? ` (probe: ${describeProbe(observed.probe)})` : ''}`,
        op: { kind: 'finish-rollout', id: running.id, others: leftovers, specHash: design.specHash },
      });
    }
    return { changes, findings };
  }

  const stopped = current[0];
  if (stopped && mine.length === 1) {
    changes.push({
      subject,
      reconciler: RECONCILER,
      action: 'update',
      risk: 'safe',
      summary: `${stopped.state === 'paused' ? 'unpause' : 'start'} ${stopped.name} (${stopped.state})`,
      diff: { state: { before: stopped.state, after: 'running' } },
      reason: `the container is ${stopped.state} (${stopped.status}); it was stopped or killed outside pulser`,
      op: { kind: 'start', id: stopped.id, specHash: design.specHash },
    });
    return { changes, findings };
  }

  const previous = mine.find((c) => !madeFrom(c.labels, design) && isRunning(c)) ?? mine.find((c) => !madeFrom(c.labels, design)) ?? null;
  const leftovers = mine.filter((c) => c !== previous).map((c) => c.id);
  const reason = previous ? `spec changed: ${previous.labels[LABEL.specHash]?.slice(0, 19) ?? 'unlabelled'} → ${design.specHash.slice(0, 19)}` : 'no Odoo container exists for this environment';
  changes.push(rollout(desired, design, previous, leftovers, reason));
  return { changes, findings };
}

function rollout(desired: DesiredEnv, design: OdooContainerDesign, previous: ContainerSummary | null, leftovers: string[], reason: string): Change {
  const before = previous ? shownSpecOf(previous.labels) : null;
  const diff = diffShown(before, design.shown);
  if (previous && Object.keys(diff).length === 0) diff.container = { before: short(previous.id), after: 'recreated' };
  return {
    subject: subjectOf(desired.name),
    reconciler: RECONCILER,
    action: previous ? 'update' : 'create',
    risk: previous ? 'disruptive' : 'safe',
    summary: previous ? summarize(diff) : `create ${design.name} from ${design.image} on ${design.bind}:${design.port}`,
    diff,
    reason,
    op: {
      kind: 'rollout',
      name: design.name,
      image: design.image,
      specHash: design.specHash,
      previous: previous?.id ?? null,
      leftovers,
    },
  };
}

/** Containers pulser created for an environment that is no longer in git. */
export function planOrphanContainers(env: string, containers: ContainerSummary[]): Plan {
  return {
    findings: [],
    changes: containers.map((c) => ({
      subject: subjectOf(env, c.labels[LABEL.service] ?? 'odoo'),
      reconciler: RECONCILER,
      action: 'delete' as const,
      risk: 'destructive' as const,
      summary: `remove ${c.name} (${short(c.id)}, ${c.image})`,
      diff: { container: { before: short(c.id), after: undefined } },
      reason: `environment ${env} is no longer in git and pruning is on`,
      op: { kind: 'remove', id: c.id, name: c.name },
    })),
  };
}
