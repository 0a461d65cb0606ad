// The addons planner (pure): checkouts of repositories not at their resolved commit, one install
// of the declared modules missing from the database (dependencies first), one upgrade of installed
// modules whose manifest version or content changed, then a restart of the serving container.
import type { Change, Finding, Plan } from '../../src/core/reconciler.ts';
import type { DesiredEnv } from '../../src/spec/model.ts';
import type { ErrorRecord } from '../../src/errors.ts';
import { resolveModules, type AvailableModule } from '../../src/odoo/resolve.ts';
import { coreModules } from '../../src/odoo/catalogue.ts';

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

/** Which repository provides each module (the first declared one wins for checksums). */
function repoOfModules(observed: AddonsObserved): Map<string, RepoObserved> {
  const repoOf = new Map<string, RepoObserved>();
  for (const r of observed.repos) for (const m of Object.keys(r.modules)) if (!repoOf.has(m)) repoOf.set(m, r);
  return repoOf;
}

/**
 * The declared modules and their dependencies, dependencies first (src/odoo/resolve.ts); problems
 * as findings. Modules the database knows that no repository provides come with the image.
 */
export function resolveInstallOrder(declared: string[], observed: AddonsObserved, env: string): { order: string[]; findings: Finding[] } {
  const available: AvailableModule[] = observed.repos.flatMap((r) =>
    Object.entries(r.modules).map(([name, m]) => ({ name, repo: r.name, depends: m.depends, installable: m.installable, version: m.version })),
  );
  const fromRepos = new Set(available.map((a) => a.name));
  const core = coreModules(Object.keys(observed.db?.modules ?? {}).filter((m) => !fromRepos.has(m)));
  const { order, problems } = resolveModules({
    requested: declared,
    available,
    core,
    hints: {
      ocaDependencies: observed.repos.flatMap((r) => r.ocaDependencies.map((repo) => ({ repo, declaredIn: r.name }))).filter((o) => !observed.repos.some((r) => r.name === o.repo)),
      unscanned: observed.repos.filter((r) => r.error).map((r) => ({ repo: r.name })),
    },
  });
  return {
    order: order.map((m) => m.name),
    findings: problems.map((p) => ({ subject: `${env}/addons/module/${String(p.details?.module ?? 'modules')}`, error: p.toJSON() })),
  };
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

  const repoOf = repoOfModules(observed);
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
      op: { kind: 'install', modules: toInstall, checksums: Object.fromEntries(toInstall.flatMap((m) => { const c = repoOf.get(m)?.modules[m]?.checksum; return c ? [[m, c]] : []; })) },
    });
  }

  const upgrades: Array<{ name: string; why: string; checksum: string; version: string | null }> = [];
  if (db && (spec.upgrade ?? 'changed') === 'changed') {
    const series = seriesOf(db);
    for (const name of order) {
      if (!installed(name)) continue;
      const m = repoOf.get(name)?.modules[name];
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

