// The addons reconciler: addon repositories checked out on the host at the commit their ref
// resolves to, and the declared modules installed (dependencies first) and kept upgraded in the
// database through the Odoo CLI, run in a one-off container of the environment's own image.
import { randomBytes } from 'node:crypto';
import type { ApplyResult, Change, ReconcileContext, Reconciler } from '../../src/core/reconciler.ts';
import { asPulserError, PulserError } from '../../src/errors.ts';
import { describeProbe } from '../../src/drivers/index.ts';
import { checkout, checkoutHead, listTree, mirrorDir, readAt, resolveRef } from '../../src/drivers/gitrepo.ts';
import { MODULE_NAME, parseManifest } from '../../src/odoo/manifest.ts';
import { parseOcaDependencies } from '../../src/odoo/catalogue.ts';
import { envDb } from '../../src/odoo/db.ts';
import { parseDuration } from '../../src/core/duration.ts';
import type { AddonRepo } from '../../src/spec/types.gen.ts';
import { containerName, renderOdooConf, ODOO_CONF_DIR, ODOO_CONF_NAME } from '../containers/design.ts';
import { addonsRoot, repoCheckoutDir, repoName } from './layout.ts';
import { CHECKSUM_KEY_PREFIX, designOneOff, odooErrorLines, SQL, type OdooRunKind } from './design.ts';
import { planAddons, RECONCILER, undeclaredModules, type AddonsObserved, type ModuleAtCommit, type RepoObserved } from './plan.ts';

export { planAddons, type AddonsObserved } from './plan.ts';

const ODOO_RUN_TIMEOUT_MS = 10 * 60_000;

async function observeRepo(ctx: ReconcileContext, r: AddonRepo): Promise<RepoObserved> {
  const { desired } = ctx;
  const name = repoName(r);
  const out: RepoObserved = { name, ref: r.ref, commit: null, checkedOut: null, modules: {}, ocaDependencies: [] };
  try {
    const mirror = mirrorDir(addonsRoot(desired), r.url);
    await ctx.drivers.fetchMirror(mirror, r.url, { allowLocal: desired.spec.addons?.allow_local_repos === true });
    const commit = await resolveRef(mirror, r.ref, r.url);
    out.commit = commit;
    out.checkedOut = await checkoutHead(repoCheckoutDir(desired, r));
    const tree = await listTree(mirror, commit);
    // As in the addons scan of `pulser deps`: a folder whose name is no module name (`-x`, `a,b`) holds no module.
    const folders = tree.filter((e) => e.type === 'tree' && MODULE_NAME.test(e.name));
    const manifests = await Promise.all(folders.map(async (f) => ({ f, text: (await readAt(mirror, commit, `${f.name}/__manifest__.py`)) ?? (await readAt(mirror, commit, `${f.name}/__openerp__.py`)) })));
    for (const { f, text } of manifests) {
      if (text === null) continue;
      const m = parseManifest(text, `${name}/${f.name}/__manifest__.py`);
      const mod: ModuleAtCommit = { version: m.version, depends: m.depends, installable: m.installable, checksum: f.oid };
      out.modules[f.name] = mod;
    }
    const oca = tree.find((e) => e.type === 'blob' && e.name === 'oca_dependencies.txt');
    if (oca) out.ocaDependencies = parseOcaDependencies((await readAt(mirror, commit, 'oca_dependencies.txt')) ?? '', `${name}/oca_dependencies.txt`).map((d) => d.repo);
  } catch (err) {
    out.error = asPulserError(err).toJSON();
  }
  return out;
}

async function observeDb(ctx: ReconcileContext): Promise<Pick<AddonsObserved, 'db' | 'dbError'>> {
  const db = envDb(ctx.drivers, ctx.desired);
  try {
    const [{ ready } = { ready: false }] = await db.query<{ ready: boolean }>(SQL.tablesExist);
    if (!ready) return { db: null };
    const [mods, deps, sums] = await Promise.all([
      db.query<{ name: string; state: string; latest_version: string | null }>(SQL.modules),
      db.query<{ module: string; depends: string }>(SQL.dependencies),
      db.query<{ key: string; value: string }>(SQL.checksums),
    ]);
    const dependencies: Record<string, string[]> = {};
    for (const d of deps) (dependencies[d.module] ??= []).push(d.depends);
    return {
      db: {
        modules: Object.fromEntries(mods.map((m) => [m.name, { state: m.state, latestVersion: m.latest_version }])),
        dependencies,
        checksums: Object.fromEntries(sums.map((s) => [s.key.slice(CHECKSUM_KEY_PREFIX.length), s.value])),
      },
    };
  } catch (err) {
    const e = asPulserError(err);
    if (e.code === 'PULSER_E_DB_MISSING') return { db: null };
    return { db: null, dbError: e.toJSON() };
  }
}

async function observe(ctx: ReconcileContext): Promise<AddonsObserved> {
  const spec = ctx.desired.spec.addons;
  if (!spec) return { declared: false, repos: [], db: null };
  const [repos, db] = await Promise.all([Promise.all((spec.repos ?? []).map((r) => observeRepo(ctx, r))), observeDb(ctx)]);
  const observed: AddonsObserved = { declared: true, repos, ...db };
  observed.undeclared = undeclaredModules(ctx.desired, observed);
  return observed;
}

async function applyCheckout(ctx: ReconcileContext, op: Record<string, unknown>): Promise<ApplyResult> {
  const r = (ctx.desired.spec.addons?.repos ?? []).find((x) => repoName(x) === op.repo);
  if (!r) throw new PulserError('PULSER_E_INTERNAL', `addons: repository ${String(op.repo)} is no longer declared`);
  const dir = repoCheckoutDir(ctx.desired, r);
  const mirror = mirrorDir(addonsRoot(ctx.desired), r.url);
  ctx.progress(`checking out ${repoName(r)} at ${String(op.commit).slice(0, 12)}`);
  await checkout(dir, mirror, String(op.commit));
  const head = await checkoutHead(dir);
  if (!head || head !== op.commit) throw new PulserError('PULSER_E_GIT', `checkout of ${repoName(r)} ended at ${head ?? 'nothing'} instead of ${String(op.commit)}`);
  return { outcome: 'applied', output: `${repoName(r)} at ${head.slice(0, 12)}`, detail: { repo: repoName(r), ref: r.ref, commit: head, dir } };
}

/** Runs `odoo … -i/-u … --stop-after-init` in a one-off container, then checks the database. */
async function applyOdooRun(ctx: ReconcileContext, kind: OdooRunKind, op: Record<string, unknown>): Promise<ApplyResult> {
  const modules = op.modules as string[];
  const checksums = (op.checksums ?? {}) as Record<string, string>;
  const docker = ctx.drivers.docker(ctx.desired.hostName);
  const { design, options, argv } = designOneOff(ctx.desired, kind, modules, randomBytes(4).toString('hex'));
  ctx.progress(`${kind} ${modules.join(', ')}: ${argv.join(' ')}`);
  const id = await docker.create(options);
  let exitCode: number;
  let logText: string;
  try {
    await docker.putFiles(id, ODOO_CONF_DIR, [{ name: ODOO_CONF_NAME, content: renderOdooConf(design.options), mode: 0o640 }]);
    await docker.start(id);
    exitCode = await docker.waitExit(id, ODOO_RUN_TIMEOUT_MS);
    logText = await docker.logTail(id, 400);
  } finally {
    await docker.remove(id).catch((e: unknown) => ctx.log.warn(`could not remove ${id.slice(0, 12)}: ${asPulserError(e).message}`));
  }
  const errorLines = odooErrorLines(logText);
  const db = envDb(ctx.drivers, ctx.desired);
  const states = exitCode === 0 ? await db.query<{ name: string; state: string; latest_version: string | null }>(SQL.moduleStates, [modules]) : [];
  const notInstalled = modules.filter((m) => states.find((s) => s.name === m)?.state !== 'installed');
  const detail: Record<string, unknown> = { argv, exitCode, modules, errorLines, versions: Object.fromEntries(states.map((s) => [s.name, s.latest_version])) };
  if (exitCode !== 0 || notInstalled.length) {
    const why = exitCode !== 0 ? `odoo exited with code ${exitCode}` : `${notInstalled.join(', ')} not installed afterwards`;
    const message = `${kind} of ${modules.join(', ')} failed: ${why}${errorLines.length ? `: ${errorLines.filter((l) => /^\d{4}-/.test(l) || /^\S+(Error|Exception)\b/.test(l)).slice(-3).join(' | ')}` : ''}`;
    return { outcome: 'failed', error: new PulserError('PULSER_E_ODOO_RUN_FAILED', message, { details: { exitCode, errorLines } }).toJSON(), detail };
  }
  await db.transaction(async (q) => {
    for (const [m, sum] of Object.entries(checksums)) await q(SQL.recordChecksum, [`${CHECKSUM_KEY_PREFIX}${m}`, sum]);
  });
  return { outcome: 'applied', output: `${kind === 'install' ? 'installed' : 'upgraded'} ${modules.join(', ')}`, detail };
}

async function applyRestart(ctx: ReconcileContext): Promise<ApplyResult> {
  const docker = ctx.drivers.docker(ctx.desired.hostName);
  const name = containerName(ctx.desired.name);
  const c = (await docker.containers()).find((x) => x.name === name);
  if (!c) return { outcome: 'applied', output: 'no serving container to restart', detail: {} };
  await docker.restart(c.id);
  const h = ctx.desired.spec.odoo.health;
  let last = null;
  for (let i = 0; i < h.retries; i++) {
    last = await ctx.drivers.probe(ctx.desired.hostName, ctx.desired.spec.odoo.port, h.path, parseDuration(h.timeout), ctx.desired.spec.odoo.bind);
    if (last.ok) return { outcome: 'applied', output: `restarted ${name}: ${describeProbe(last)}`, detail: { containerId: c.id, probes: i + 1 } };
    await new Promise((r) => setTimeout(r, parseDuration(h.interval)));
  }
  return {
    outcome: 'failed',
    error: new PulserError('PULSER_E_HEALTH_CHECK_FAILED', `${name} is not healthy after the restart: ${last ? describeProbe(last) : 'no probe'}`).toJSON(),
    detail: { containerId: c.id, logTail: await docker.logTail(c.id, 20).catch(() => '') },
  };
}

export const addons: Reconciler<AddonsObserved> = {
  name: RECONCILER,
  dependsOn: ['containers'],
  observe,
  plan: (desired, observed) => planAddons(desired, observed),
  summarize(observed) {
    if (!observed.declared) return {};
    return {
      repos: observed.repos.map((r) => ({ name: r.name, ref: r.ref, commit: r.commit, checkedOut: r.checkedOut })),
      undeclared: observed.undeclared ?? [],
      modules: observed.db ? Object.fromEntries(Object.entries(observed.db.modules).filter(([, m]) => m.state === 'installed').map(([n, m]) => [n, m.latestVersion])) : {},
    };
  },
  async apply(ctx, change: Change) {
    switch (change.op.kind) {
      case 'checkout':
        return applyCheckout(ctx, change.op);
      case 'install':
        return applyOdooRun(ctx, 'install', change.op);
      case 'upgrade':
        return applyOdooRun(ctx, 'upgrade', change.op);
      case 'restart':
        return applyRestart(ctx);
      default:
        throw new PulserError('PULSER_E_INTERNAL', `addons: unknown operation ${String(change.op.kind)}`);
    }
  },
};
