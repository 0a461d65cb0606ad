// The addons planner (pure): checkouts of repositories not at their resolved commit, one install
// of the declared modules missing from the database (dependencies first), one upgrade of installed
// modules whose manifest version or content changed, then a restart of the serving container.
import type { Change, Finding, Plan } from '../../src/core/reconciler.ts';
import type { DesiredEnv } from '../../src/spec/model.ts';
import { PulserError, type ErrorRecord } from '../../src/errors.ts';
import { repoName } from './layout.ts';

export const RECONCILER = 'addons';

export interface ModuleAtCommit {
  version: string | null;
  depends: string[];
  installable: boolean;
  /** git tree id of the module folder: changes whenever any file in it changes */
  checksum: string;
}

export interface RepoObserved {
  name: string;
  ref: string;
  commit: string | null;
  checkedOut: string | null;
  modules: Record<string, ModuleAtCommit>;
  /** repositories `oca_dependencies.txt` names */
  ocaDependencies: string[];
  error?: ErrorRecord;
}

export interface DbModule {
  state: string;
  latestVersion: string | null;
}

export interface AddonsObserved {
  declared: boolean;
  repos: RepoObserved[];
  /** null: the database does not exist or has no Odoo tables yet */
  db: { modules: Record<string, DbModule>; dependencies: Record<string, string[]>; checksums: Record<string, string> } | null;
  dbError?: ErrorRecord;
  /** installed modules from the repositories that nothing declared asks for (never uninstalled by pulser) */
  undeclared?: string[];
}

/** Odoo stores a manifest version prefixed by the server series (`1.0` → `17.0.1.0`). */
export function sameVersion(manifest: string | null, installed: string | null, series: string | null): boolean {
  if (installed === null) return false;
  const v = manifest ?? '1.0';
  if (v === installed) return true;
  if (series) return installed === (v === series || !v.startsWith(`${series}.`) ? `${series}.${v}` : v);
  return installed.endsWith(`.${v}`);
}

function seriesOf(db: NonNullable<AddonsObserved['db']>): string | null {
  const base = db.modules.base?.latestVersion;
  const m = base ? /^(\d+\.\d+)\./.exec(base) : null;
  return m ? m[1]! : null;
}

interface Catalogue {
  depends: (name: string) => string[] | null;
  repoOf: Map<string, RepoObserved>;
}

function catalogue(observed: AddonsObserved): Catalogue {
  const repoOf = new Map<string, RepoObserved>();
  for (const r of observed.repos) for (const m of Object.keys(r.modules)) if (!repoOf.has(m)) repoOf.set(m, r);
  return {
    repoOf,
    depends: (name) => {
      const fromRepo = repoOf.get(name)?.modules[name];
      if (fromRepo) return fromRepo.depends;
      if (observed.db?.modules[name]) return observed.db.dependencies[name] ?? [];
      // A fresh database knows none of the server's own modules yet: Odoo resolves them itself.
      if (!observed.db) return [];
      return null;
    },
  };
}

/** The declared modules and their dependencies, dependencies first; problems as findings. */
export function resolveInstallOrder(declared: string[], observed: AddonsObserved, env: string): { order: string[]; findings: Finding[] } {
  const cat = catalogue(observed);
  const order: string[] = [];
  const findings: Finding[] = [];
  const done = new Set<string>();
  const visit = (name: string, path: string[]): void => {
    if (done.has(name)) return;
    if (path.includes(name)) {
      const cycle = [...path.slice(path.indexOf(name)), name].join(' → ');
      findings.push({ subject: `${env}/addons/module/${name}`, error: new PulserError('PULSER_E_MODULE_CYCLE', `module dependencies form a cycle: ${cycle}`).toJSON() });
      done.add(name);
      return;
    }
    const deps = cat.depends(name);
    if (deps === null) {
      const neededBy = path.at(-1);
      const hints = [...new Set(observed.repos.flatMap((r) => r.ocaDependencies))].filter((d) => !observed.repos.some((r) => r.name === d));
      const hint = hints.length ? `; oca_dependencies.txt names repositories not declared in addons.repos: ${hints.join(', ')}` : '';
      findings.push({
        subject: `${env}/addons/module/${name}`,
        error: new PulserError('PULSER_E_MODULE_MISSING', `module ${name}${neededBy ? ` (needed by ${neededBy})` : ''} is in no declared repository and not known to the database${hint}`, {
          details: { module: name, neededBy: neededBy ?? null, candidates: hints },
        }).toJSON(),
      });
      done.add(name);
      return;
    }
    for (const d of deps) visit(d, [...path, name]);
    done.add(name);
    order.push(name);
  };
  for (const m of declared) visit(m, []);
  return { order, findings };
}

export function planAddons(desired: DesiredEnv, observed: AddonsObserved): Plan {
  const spec = desired.spec.addons;
  if (!spec || !observed.declared) return { changes: [], findings: [] };
  const env = desired.name;
  const changes: Change[] = [];
  const findings: Finding[] = [];
  const change = (c: Omit<Change, 'reconciler'>) => changes.push({ ...c, reconciler: RECONCILER });

  for (const r of observed.repos) {
    if (r.error) {
      findings.push({ subject: `${env}/addons/repo/${r.name}`, error: r.error });
      continue;
    }
    if (r.commit && r.checkedOut !== r.commit) {
      change({
        subject: `${env}/addons/repo/${r.name}`,
        action: r.checkedOut ? 'update' : 'create',
        risk: 'safe',
        summary: `checkout ${r.name} ${r.ref} at ${r.commit.slice(0, 12)}${r.checkedOut ? ` (was ${r.checkedOut.slice(0, 12)})` : ''}`,
        diff: { commit: { before: r.checkedOut, after: r.commit } },
        reason: r.checkedOut ? `${r.ref} moved` : 'repository not checked out on the host yet',
        op: { kind: 'checkout', repo: r.name, commit: r.commit },
      });
    }
  }
  if (observed.dbError) findings.push({ subject: `${env}/addons/database`, error: observed.dbError });
  if (findings.length > 0) return { changes, findings };

  const declared = spec.install ?? [];
  const { order, findings: resolveFindings } = resolveInstallOrder(declared, observed, env);
  if (resolveFindings.length) return { changes, findings: resolveFindings };

  const cat = catalogue(observed);
  const db = observed.db;
  const installed = (m: string) => db?.modules[m]?.state === 'installed';
  const toInstall = order.filter((m) => !installed(m));
  if (toInstall.length) {
    change({
      subject: `${env}/addons/install`,
      action: 'create',
      risk: 'disruptive',
      summary: `install ${toInstall.join(', ')}`,
      diff: Object.fromEntries(toInstall.map((m) => [m, { before: db?.modules[m]?.state ?? 'absent', after: 'installed' }])),
      reason: `declared in addons.install${toInstall.some((m) => !declared.includes(m)) ? ' (with the dependencies they need)' : ''}`,
      op: { kind: 'install', modules: toInstall, checksums: Object.fromEntries(toInstall.flatMap((m) => { const c = cat.repoOf.get(m)?.modules[m]?.checksum; return c ? [[m, c]] : []; })) },
    });
  }

  const upgrades: Array<{ name: string; why: string; checksum: string; version: string | null }> = [];
  if (db && (spec.upgrade ?? 'changed') === 'changed') {
    const series = seriesOf(db);
    for (const name of order) {
      if (!installed(name)) continue;
      const m = cat.repoOf.get(name)?.modules[name];
      if (!m) continue;
      const have = db.modules[name]!;
      const recorded = db.checksums[name];
      if (!sameVersion(m.version, have.latestVersion, series)) upgrades.push({ name, why: `version ${have.latestVersion ?? 'none'} → ${m.version ?? '1.0'}`, checksum: m.checksum, version: m.version });
      else if (recorded !== m.checksum) upgrades.push({ name, why: recorded ? 'code changed without a version bump' : 'no content checksum recorded yet', checksum: m.checksum, version: m.version });
    }
  }
  if (upgrades.length) {
    change({
      subject: `${env}/addons/upgrade`,
      action: 'update',
      risk: 'disruptive',
      summary: `upgrade ${upgrades.map((u) => u.name).join(', ')}`,
      diff: Object.fromEntries(upgrades.map((u) => [u.name, { before: db!.modules[u.name]!.latestVersion, after: u.version ?? '1.0' }])),
      reason: upgrades.map((u) => `${u.name}: ${u.why}`).join('; '),
      op: { kind: 'upgrade', modules: upgrades.map((u) => u.name), checksums: Object.fromEntries(upgrades.map((u) => [u.name, u.checksum])) },
    });
  }
  if (toInstall.length || upgrades.length) {
    change({
      subject: `${env}/addons/restart`,
      action: 'run',
      risk: 'disruptive',
      summary: 'restart the Odoo container to load the new module code',
      diff: {},
      reason: 'modules were installed or upgraded',
      op: { kind: 'restart' },
    });
  }
  return { changes, findings };
}

/** Installed modules from the repositories that addons.install does not ask for, directly or not. */
export function undeclaredModules(desired: DesiredEnv, observed: AddonsObserved): string[] {
  if (!observed.db || !desired.spec.addons) return [];
  const { order } = resolveInstallOrder(desired.spec.addons.install ?? [], observed, desired.name);
  const wanted = new Set(order);
  const fromRepos = new Set(observed.repos.flatMap((r) => Object.keys(r.modules)));
  return Object.entries(observed.db.modules)
    .filter(([name, m]) => m.state === 'installed' && fromRepos.has(name) && !wanted.has(name))
    .map(([name]) => name)
    .sort();
}

export { repoName };
