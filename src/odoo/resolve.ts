// The module dependency resolver (pure): from the modules the addon repositories provide, the
// modules the image provides and the modules asked for, the install order — dependencies first,
// ties broken by name — or every problem at once (missing, ambiguous, cyclic, not installable).
import { PulserError } from '../errors.ts';

export interface AvailableModule {
  name: string;
  /** the repository (or addons folder) that provides it */
  repo: string;
  depends: readonly string[];
  installable?: boolean;
  version?: string | null;
}

/** A repository that may provide a missing module, and why pulser thinks so. */
export interface RepoHint {
  repo: string;
  url?: string;
  branch?: string;
  source: 'catalogue' | 'oca_dependencies' | 'declared';
  /** the repository whose oca_dependencies.txt names it */
  declaredIn?: string;
}

export interface ResolveInput {
  requested: readonly string[];
  available: readonly AvailableModule[];
  /** modules the Odoo image provides; their own dependencies are the image's business */
  core: ReadonlySet<string>;
  hints?: {
    /** module → repository that provides it (ops/addons-catalogue.yaml) */
    catalogue?: ReadonlyMap<string, { url: string; branch?: string }>;
    /** entries of the oca_dependencies.txt files of the scanned repositories */
    ocaDependencies?: readonly { repo: string; url?: string; branch?: string; declaredIn: string }[];
    /** repositories the environment declares but that were not scanned (not checked out) */
    unscanned?: readonly { repo: string; url?: string; branch?: string }[];
  };
}

export interface ResolvedModule {
  name: string;
  /** null for a core module of the image */
  repo: string | null;
  core: boolean;
  depends: string[];
  version: string | null;
}

export interface Resolution {
  /** every module needed, dependencies first, ties broken by name (core modules included) */
  order: ResolvedModule[];
  problems: PulserError[];
}

/** Resolves the requested modules; problems are returned, never thrown, so all can be shown. */
export function resolveModules(input: ResolveInput): Resolution {
  const providers = new Map<string, AvailableModule[]>();
  for (const m of input.available) {
    const list = providers.get(m.name);
    if (list) {
      if (!list.some((p) => p.repo === m.repo)) list.push(m);
    } else providers.set(m.name, [m]);
  }

  const problems: PulserError[] = [];
  const nodes = new Map<string, ResolvedModule>();
  // Breadth-first from the requested modules (sorted): the parent links give the shortest chain
  // that explains why a missing module is needed.
  const parent = new Map<string, string | null>();
  const queue: string[] = [];
  for (const r of [...new Set(input.requested)].sort()) {
    parent.set(r, null);
    queue.push(r);
  }
  const unusable = new Set<string>();
  for (let qi = 0; qi < queue.length; qi++) {
    const name = queue[qi]!;
    const found = providers.get(name) ?? [];
    const isCore = input.core.has(name);
    if (found.length + (isCore ? 1 : 0) > 1) {
      const who = [...(isCore ? ['the Odoo image (core module)'] : []), ...found.map((f) => f.repo).sort()];
      problems.push(
        new PulserError('PULSER_E_MODULE_AMBIGUOUS', `module ${name} is provided by ${who.slice(0, -1).join(', ')} and ${who[who.length - 1]}; keep only one of them`, {
          details: { module: name, providers: who, neededBy: chain(parent, name) },
        }),
      );
      unusable.add(name);
      continue;
    }
    if (isCore) {
      nodes.set(name, { name, repo: null, core: true, depends: [], version: null });
      continue;
    }
    const mod = found[0];
    if (!mod) {
      problems.push(missing(name, chain(parent, name), input.hints));
      unusable.add(name);
      continue;
    }
    if (mod.installable === false) {
      problems.push(
        new PulserError('PULSER_E_MODULE_NOT_INSTALLABLE', `module ${name} (${mod.repo}) declares installable: False${describeChain(chain(parent, name))}`, {
          details: { module: name, repo: mod.repo, neededBy: chain(parent, name) },
        }),
      );
      unusable.add(name);
      continue;
    }
    const depends = [...new Set(mod.depends)].sort();
    nodes.set(name, { name, repo: mod.repo, core: false, depends, version: mod.version ?? null });
    for (const d of depends) {
      if (!parent.has(d)) {
        parent.set(d, name);
        queue.push(d);
      }
    }
  }

  const { order, cyclic } = topologicalOrder(nodes, unusable);
  if (cyclic.size) problems.push(...cycles(nodes, cyclic));
  return { order, problems };
}

/** The resolution, or the first problem thrown (the others are in its details). */
export function resolveOrThrow(input: ResolveInput): ResolvedModule[] {
  const { order, problems } = resolveModules(input);
  if (problems.length) {
    const [first, ...rest] = problems;
    if (!rest.length) throw first;
    throw new PulserError(first!.code, `${first!.message} (and ${rest.length} more: ${rest.map((p) => p.message).join('; ')})`, {
      details: { ...first!.details, problems: problems.map((p) => p.toJSON()) },
    });
  }
  return order;
}

/** Modules of the resolution that still need installing, in order. Running the result again
 *  against the installed set it produces gives an empty plan. */
export function installPlan(order: readonly ResolvedModule[], installed: ReadonlySet<string>): string[] {
  return order.filter((m) => !installed.has(m.name)).map((m) => m.name);
}

function chain(parent: ReadonlyMap<string, string | null>, name: string): string[] {
  const out: string[] = [];
  for (let p = parent.get(name) ?? null; p !== null; p = parent.get(p) ?? null) out.unshift(p);
  return out;
}

function describeChain(via: string[]): string {
  return via.length ? ` (needed by ${via[via.length - 1]}${via.length > 1 ? `, via ${via.join(' → ')}` : ''})` : ' (requested)';
}

function missing(name: string, via: string[], hints: ResolveInput['hints']): PulserError {
  const candidates: RepoHint[] = [];
  const cat = hints?.catalogue?.get(name);
  if (cat) candidates.push({ repo: repoNameOf(cat.url), url: cat.url, ...(cat.branch ? { branch: cat.branch } : {}), source: 'catalogue' });
  for (const u of hints?.unscanned ?? []) candidates.push({ ...u, source: 'declared' });
  for (const o of hints?.ocaDependencies ?? []) {
    if (!candidates.some((c) => c.repo === o.repo)) candidates.push({ repo: o.repo, ...(o.url ? { url: o.url } : {}), ...(o.branch ? { branch: o.branch } : {}), source: 'oca_dependencies', declaredIn: o.declaredIn });
  }
  const said = candidates.map((c) => {
    const where = `${c.repo}${c.url && c.url !== c.repo ? ` (${c.url}${c.branch ? ` ${c.branch}` : ''})` : ''}`;
    if (c.source === 'catalogue') return `the catalogue maps it to ${where}`;
    if (c.source === 'declared') return `declared repository ${where} is not checked out`;
    return `${c.declaredIn}'s oca_dependencies.txt names ${where}`;
  });
  const hint = said.length ? `; ${said.join('; ')}` : '; no catalogue entry or oca_dependencies.txt names a repository for it';
  return new PulserError('PULSER_E_MODULE_MISSING', `module ${name}${describeChain(via)} is in no addons folder and not a core module${hint}`, {
    details: { module: name, neededBy: via, candidates },
  });
}

/** `https://github.com/OCA/queue.git` → `queue` */
export function repoNameOf(url: string): string {
  return url.replace(/\/+$/, '').replace(/\.git$/, '').split(/[/:]/).pop() || url;
}

/** Kahn's algorithm with the ready set kept in name order: deterministic, iterative (no recursion
 *  depth to blow on long chains). Modules left over sit on or behind a cycle. */
function topologicalOrder(nodes: ReadonlyMap<string, ResolvedModule>, unusable: ReadonlySet<string>): { order: ResolvedModule[]; cyclic: Set<string> } {
  const pending = new Map<string, number>();
  const dependents = new Map<string, string[]>();
  const blocked = new Set<string>();
  for (const n of nodes.values()) {
    let count = 0;
    for (const d of n.depends) {
      if (unusable.has(d)) blocked.add(n.name);
      if (!nodes.has(d)) continue;
      count++;
      const list = dependents.get(d);
      if (list) list.push(n.name);
      else dependents.set(d, [n.name]);
    }
    pending.set(n.name, count);
  }
  const ready = new NameHeap();
  for (const [name, count] of pending) if (count === 0) ready.push(name);
  const order: ResolvedModule[] = [];
  const placed = new Set<string>();
  while (ready.size) {
    const name = ready.pop();
    placed.add(name);
    order.push(nodes.get(name)!);
    for (const dep of dependents.get(name) ?? []) {
      const left = pending.get(dep)! - 1;
      pending.set(dep, left);
      if (left === 0) ready.push(dep);
    }
  }
  const cyclic = new Set([...nodes.keys()].filter((n) => !placed.has(n)));
  // A module whose dependency is missing cannot be installed either; it stays out of the order.
  const blockedAll = new Set(blocked);
  for (const m of order) if (m.depends.some((d) => blockedAll.has(d))) blockedAll.add(m.name);
  return { order: order.filter((m) => !blockedAll.has(m.name)), cyclic };
}

/** One problem per cycle among the leftover modules, each starting at its smallest name. */
function cycles(nodes: ReadonlyMap<string, ResolvedModule>, left: ReadonlySet<string>): PulserError[] {
  const out: PulserError[] = [];
  const done = new Set<string>();
  for (const start of [...left].sort()) {
    if (done.has(start)) continue;
    // Walk the first leftover dependency until a module repeats: every leftover module has one.
    const path: string[] = [];
    const at = new Map<string, number>();
    let cur = start;
    while (!at.has(cur) && !done.has(cur)) {
      at.set(cur, path.length);
      path.push(cur);
      cur = nodes.get(cur)!.depends.find((d) => left.has(d))!;
    }
    for (const p of path) done.add(p);
    if (!at.has(cur)) continue;
    const loop = path.slice(at.get(cur)!);
    const min = loop.indexOf([...loop].sort()[0]!);
    const rotated = [...loop.slice(min), ...loop.slice(0, min)];
    const text = [...rotated, rotated[0]].join(' → ');
    out.push(new PulserError('PULSER_E_MODULE_CYCLE', `module dependencies form a cycle: ${text}`, { details: { cycle: [...rotated, rotated[0]] } }));
  }
  return out;
}

class NameHeap {
  private items: string[] = [];
  get size(): number {
    return this.items.length;
  }
  push(v: string): void {
    const a = this.items;
    a.push(v);
    for (let i = a.length - 1; i > 0; ) {
      const p = (i - 1) >> 1;
      if (a[p]! <= a[i]!) break;
      [a[p], a[i]] = [a[i]!, a[p]!];
      i = p;
    }
  }
  pop(): string {
    const a = this.items;
    const top = a[0]!;
    const last = a.pop()!;
    if (a.length) {
      a[0] = last;
      for (let i = 0; ; ) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && a[l]! < a[m]!) m = l;
        if (r < a.length && a[r]! < a[m]!) m = r;
        if (m === i) break;
        [a[m], a[i]] = [a[i]!, a[m]!];
        i = m;
      }
    }
    return top;
  }
}
