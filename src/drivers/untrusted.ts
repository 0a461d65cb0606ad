// The drivers of an untrusted plan (a pull request, `pulser plan --untrusted`): they reach only
// what the tracked branch already declares — its hosts as it declares them, the database servers
// its environments use, the repositories they fetch — and refuse everything else with
// PULSER_E_NOT_OBSERVED before any connection is made. A pull request writes its own spec: were
// its addresses contacted, it would choose where pulser sends credentials and requests.
import type { Duplex } from 'node:stream';
import type { Host } from '../spec/types.gen.ts';
import type { DesiredEnv, SpecSnapshot } from '../spec/model.ts';
import { canonicalJson } from '../core/canonical.ts';
import { PulserError } from '../errors.ts';
import { dbTarget } from '../odoo/db.ts';
import { stripCredentials } from './git.ts';
import type { Db, Drivers, PgTarget } from './index.ts';

/** What an untrusted plan may reach: derived from the tracked branch's loaded spec. */
export interface TrustBoundary {
  /** host names whose declaration the untrusted spec leaves exactly as the tracked branch has it */
  hosts: Set<string>;
  /** `[host, address, port, user, password as written]` → the tracked target, real password included */
  databases: Map<string, PgTarget>;
  /** repository URL as written (secrets as references) → the URL git fetches */
  repos: Map<string, string>;
  /** why a host is outside the boundary, for the plan */
  hostProblems: Map<string, string>;
}

/** A local host's addons_dir defaults to a folder of the checkout: not a difference between two checkouts. */
function comparableHost(h: Host, root: string): string {
  const c = structuredClone(h) as Host & { addons_dir?: string };
  if (c.kind === 'local' && c.addons_dir === `${root}/.pulser/addons`) delete c.addons_dir;
  return canonicalJson(c);
}

function hostAddress(h: Host): string {
  if (h.kind === 'local') return 'this machine';
  if (h.kind === 'ssh') return `${h.user}@${h.address}:${h.port ?? 22}`;
  return `droplet ${h.droplet.name} through ${h.api ?? 'https://api.digitalocean.com'}`;
}

function dbKey(host: string, t: PgTarget): string {
  return canonicalJson([host, t.address, t.port, t.user, t.password ?? null]);
}

/** The target an untrusted spec names, with each secret as its reference text (never a value). */
function writtenTarget(d: DesiredEnv): PgTarget {
  return dbTarget({ ...d, spec: d.masked });
}

/**
 * The boundary for `untrusted` given the tracked branch's snapshot (null: nothing is trusted, as
 * for `pulser plan --untrusted` on a checkout of unknown origin).
 */
export function trustBoundary(tracked: SpecSnapshot | null, untrusted: SpecSnapshot): TrustBoundary {
  const out: TrustBoundary = { hosts: new Set(), databases: new Map(), repos: new Map(), hostProblems: new Map() };
  for (const [name, h] of untrusted.hosts) {
    const mine = tracked?.hosts.get(name);
    if (!mine) out.hostProblems.set(name, `host ${name} (${hostAddress(h)}) is not declared on the tracked branch`);
    else if (comparableHost(mine, tracked!.root) !== comparableHost(h, untrusted.root)) out.hostProblems.set(name, `host ${name} (${hostAddress(h)}) is declared differently on the tracked branch`);
    else out.hosts.add(name);
  }
  for (const load of tracked?.envs.values() ?? []) {
    if (!load.ok) continue;
    const d = load.desired;
    out.databases.set(dbKey(d.hostName, writtenTarget(d)), dbTarget(d));
    const written = d.masked.addons?.repos ?? [];
    (d.spec.addons?.repos ?? []).forEach((r, i) => out.repos.set(written[i]?.url ?? r.url, r.url));
  }
  return out;
}

/** The desired state an untrusted pass uses: a trusted host's declaration is the tracked one. */
export function withTrackedHost(d: DesiredEnv, tracked: SpecSnapshot | null, boundary: TrustBoundary): DesiredEnv {
  const h = tracked?.hosts.get(d.hostName);
  return boundary.hosts.has(d.hostName) && h ? { ...d, host: h } : d;
}

function notObserved(what: string, why: string): PulserError {
  return new PulserError('PULSER_E_NOT_OBSERVED', `would connect to ${what}: ${why}; not contacted by an untrusted plan`, { details: { target: what } });
}

function refusedDb(target: PgTarget, why: string): Db {
  const what = `database ${target.database} as ${target.user} at ${target.address}:${target.port}`;
  const fail = async (): Promise<never> => {
    throw notObserved(what, why);
  };
  return { target: { address: target.address, port: target.port, user: target.user, database: target.database }, query: fail, transaction: fail };
}

/** `inner` limited to `boundary`: every refusal happens before a connection is opened. */
export function untrustedDrivers(inner: Drivers, boundary: TrustBoundary): Drivers {
  const host = (name: string): void => {
    if (boundary.hosts.has(name)) return;
    throw notObserved(`host ${name}`, boundary.hostProblems.get(name) ?? `host ${name} is not declared on the tracked branch`);
  };
  const tracksServer = (name: string, address: string, port: number) =>
    [...boundary.databases].some(([k, t]) => (JSON.parse(k) as unknown[])[0] === name && t.address === address && t.port === port);
  return {
    docker: (name) => (host(name), inner.docker(name)),
    probe: async (name, port, path, timeoutMs, bind) => (host(name), inner.probe(name, port, path, timeoutMs, bind)),
    async tcp(name, address, port): Promise<Duplex> {
      host(name);
      if (!tracksServer(name, address, port)) throw notObserved(`${address}:${port} from host ${name}`, 'no environment of the tracked branch uses that server');
      return inner.tcp(name, address, port);
    },
    exec: async (name, argv, opts) => (host(name), inner.exec(name, argv, opts)),
    fsStats: async (name, path) => (host(name), inner.fsStats(name, path)),
    readHostFile: async (name, path) => (host(name), inner.readHostFile(name, path)),
    ssh: (name) => (host(name), inner.ssh(name)),
    async secret(_ref, what) {
      throw notObserved(what, 'an untrusted plan resolves no secret');
    },
    digitalOcean: (name) => (host(name), inner.digitalOcean(name)),
    async fetchMirror(dir, url, policy, timeoutMs) {
      const real = boundary.repos.get(url);
      if (real === undefined) throw notObserved(`repository ${stripCredentials(url)}`, 'no environment of the tracked branch fetches it');
      return inner.fetchMirror(dir, real, policy, timeoutMs);
    },
    learnAddress: (name, address) => (host(name), inner.learnAddress(name, address)),
    db(name, target) {
      if (!boundary.hosts.has(name)) return refusedDb(target, boundary.hostProblems.get(name) ?? `host ${name} is not declared on the tracked branch`);
      const known = boundary.databases.get(dbKey(name, target));
      if (!known) return refusedDb(target, 'no environment of the tracked branch reaches that server with these credentials');
      return inner.db(name, { ...known, database: target.database });
    },
    hostNames: () => inner.hostNames().filter((n) => boundary.hosts.has(n)),
    invalidate: (name) => inner.invalidate(name),
    close: () => inner.close(),
  };
}
