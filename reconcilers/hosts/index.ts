// The hosts reconciler: reachability and facts of the host an environment runs on (status and
// metrics), and for digitalocean hosts the droplet itself. Hosts are shared by environments: every
// environment's pass observes its host (facts are shared for a few seconds), while creating a
// droplet is deduplicated — one create at a time per host, and a lookup by name and tag right
// before it, so a droplet is never created twice. Droplets are never deleted by a pass.
import type { ApplyResult, ReconcileContext, Reconciler } from '../../src/core/reconciler.ts';
import type { Drivers } from '../../src/drivers/index.ts';
import { DigitalOceanClient, publicIpv4, type Droplet } from '../../src/drivers/digitalocean.ts';
import { asPulserError, PulserError } from '../../src/errors.ts';
import { hostFacts } from './facts.ts';
import { dropletCreateRequest, OWNER_TAG, planHosts, RECONCILER, type DigitalOceanHostSpec, type HostsObserved, type ObservedDroplet } from './plan.ts';

export { planHosts, dropletCreateRequest, DEFAULT_USER_DATA, OWNER_TAG, type HostsObserved, type HostFacts } from './plan.ts';
export { parseMeminfo } from './facts.ts';

/** Pause between two looks at a droplet that is not ready yet, and how long to wait in all. */
export const DROPLET_POLL_MS = 1_000;
export const DROPLET_READY_TIMEOUT_MS = 5 * 60_000;

const creating = new WeakMap<Drivers, Map<string, Promise<ApplyResult>>>();

function perDrivers<T>(map: WeakMap<Drivers, Map<string, T>>, drivers: Drivers): Map<string, T> {
  let m = map.get(drivers);
  if (!m) map.set(drivers, (m = new Map()));
  return m;
}

function view(d: Droplet): ObservedDroplet {
  return { id: d.id, name: d.name, status: d.status, address: publicIpv4(d), tags: d.tags };
}

async function findDroplets(api: DigitalOceanClient, host: DigitalOceanHostSpec): Promise<ObservedDroplet[]> {
  return (await api.dropletsByTag(OWNER_TAG)).filter((d) => d.name === host.droplet.name).map(view);
}

async function observe(ctx: ReconcileContext): Promise<HostsObserved> {
  const { desired, drivers } = ctx;
  const host = desired.host;
  const out: HostsObserved = { host: desired.hostName, kind: host.kind, droplets: [], facts: null };
  if (host.kind === 'digitalocean') {
    const spec = host as DigitalOceanHostSpec;
    out.droplets = await findDroplets(drivers.digitalOcean(desired.hostName), spec);
    const d = out.droplets.length === 1 ? out.droplets[0]! : null;
    if (!d || d.status !== 'active' || !(spec.address ?? d.address)) {
      ctx.metrics?.recordHost(desired.hostName, false, null);
      return out;
    }
    if (!spec.address) drivers.learnAddress(desired.hostName, d.address!);
  }
  try {
    // Reachability is checked on every observation; the facts may come from a few seconds ago.
    await drivers.docker(desired.hostName).ping();
    out.facts = await hostFacts(drivers, desired.hostName);
  } catch (err) {
    ctx.metrics?.recordHost(desired.hostName, false, null);
    throw err;
  }
  ctx.metrics?.recordHost(desired.hostName, true, out.facts.diskUsedRatio);
  return out;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Waits until the droplet is active with an address, then until SSH and Docker answer on it. */
async function awaitReady(ctx: ReconcileContext, api: DigitalOceanClient, id: number): Promise<ApplyResult> {
  const { desired, drivers } = ctx;
  const spec = desired.host as DigitalOceanHostSpec;
  const deadline = Date.now() + DROPLET_READY_TIMEOUT_MS;
  let last = 'not looked at yet';
  for (;;) {
    const d = await api.droplet(id);
    if (!d) throw new PulserError('PULSER_E_DROPLET_NOT_READY', `droplet ${id} of host ${desired.hostName} disappeared while waiting for it`);
    const address = spec.address ?? publicIpv4(d);
    if (d.status === 'active' && address) {
      if (!spec.address) drivers.learnAddress(desired.hostName, address);
      try {
        const facts = await hostFacts(drivers, desired.hostName);
        ctx.metrics?.recordHost(desired.hostName, true, facts.diskUsedRatio);
        return { outcome: 'applied', output: `droplet ${d.name} (${id}) active at ${address}, Docker ${facts.dockerVersion}`, detail: { dropletId: id, address, dockerVersion: facts.dockerVersion } };
      } catch (err) {
        const e = asPulserError(err);
        // A host key other than the pinned one will not change by waiting.
        if (e.class === 'terminal') throw e;
        last = `active at ${address}, not reachable yet: ${e.message}`;
      }
    } else last = `status ${d.status}${address ? '' : ', no public address yet'}`;
    if (Date.now() >= deadline) throw new PulserError('PULSER_E_DROPLET_NOT_READY', `droplet ${id} of host ${desired.hostName} is not ready after ${DROPLET_READY_TIMEOUT_MS / 1000} s (${last})`);
    ctx.progress(`waiting for droplet ${d.name}: ${last}`);
    await sleep(DROPLET_POLL_MS);
  }
}

async function createDroplet(ctx: ReconcileContext): Promise<ApplyResult> {
  const { desired, drivers } = ctx;
  const spec = desired.host as DigitalOceanHostSpec;
  const api = drivers.digitalOcean(desired.hostName);
  // Another pass (or pulser before a restart) may have created it since this pass observed.
  const found = await findDroplets(api, spec);
  if (found.length > 1) throw new PulserError('PULSER_E_DROPLET_AMBIGUOUS', `droplets ${found.map((d) => d.id).join(', ')} are all named ${spec.droplet.name} and tagged ${OWNER_TAG}`);
  let id: number;
  if (found[0]) {
    id = found[0].id;
    ctx.log.info(`droplet ${spec.droplet.name} already exists (${id}); not creating it again`);
  } else {
    const req = dropletCreateRequest(spec);
    ctx.progress(`creating droplet ${req.name} (${req.size}, ${req.region})`);
    id = (await api.createDroplet(req)).id;
  }
  return awaitReady(ctx, api, id);
}

export const hosts: Reconciler<HostsObserved> = {
  name: RECONCILER,
  dependsOn: [],
  observe,
  plan: (desired, observed) => planHosts(desired, observed),
  summarize(observed) {
    return { kind: observed.kind, facts: observed.facts, droplet: observed.droplets[0] ?? null };
  },
  async apply(ctx, change) {
    const op = change.op;
    switch (op.kind) {
      case 'create-droplet': {
        // One create per host at a time: passes of other environments on the host wait for it.
        const inFlight = perDrivers(creating, ctx.drivers);
        const key = ctx.desired.hostName;
        let p = inFlight.get(key);
        if (!p) {
          p = createDroplet(ctx).finally(() => inFlight.delete(key));
          inFlight.set(key, p);
        }
        return p;
      }
      case 'await-droplet':
        return awaitReady(ctx, ctx.drivers.digitalOcean(ctx.desired.hostName), Number(op.id));
      default:
        throw new PulserError('PULSER_E_INTERNAL', `hosts: unknown operation ${String(op.kind)}`);
    }
  },
};
