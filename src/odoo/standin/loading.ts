// Module loading as Odoo does it for `-i`/`-u`: initialise an empty database with the base tables,
// refresh the module list from the addons path, mark what to install (dependencies first) or
// upgrade, load each module (its data files must exist), and record the installed version.
// Everything after the base initialisation runs in one transaction, so a failure changes nothing.
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { parseManifest, type Manifest } from '../manifest.ts';
import type { OdooLog } from './log.ts';

export type Query = <R = Record<string, unknown>>(sql: string, params?: unknown[]) => Promise<R[]>;

export interface ModuleInfo {
  name: string;
  dir: string | null;
  manifest: Pick<Manifest, 'version' | 'depends' | 'data' | 'installable' | 'auto_install' | 'summary' | 'author' | 'license' | 'application' | 'website'> & { name: string | null };
}

/** Modules shipped with the server itself (the stand-in has no Python addons of its own). */
const CORE: Record<string, { depends: string[]; version: string }> = { base: { depends: [], version: '1.3' }, web: { depends: ['base'], version: '1.0' } };

/** Odoo prefixes a manifest version with the server series unless it already starts with it. */
export function adaptVersion(version: string | null, series: string): string {
  const v = version ?? '1.0';
  return v === series || !v.startsWith(`${series}.`) ? `${series}.${v}` : v;
}

/** Raised for what Odoo reports as an exception while loading (logged CRITICAL with a traceback). */
export class LoadingFailure extends Error {
  constructor(
    readonly excType: string,
    message: string,
    readonly where: string,
  ) {
    super(message);
  }
}

export async function scanAddons(addonsPath: string[], log: OdooLog): Promise<Map<string, ModuleInfo>> {
  const found = new Map<string, ModuleInfo>();
  for (const [name, { depends, version }] of Object.entries(CORE)) {
    found.set(name, {
      name,
      dir: null,
      manifest: { name, version, depends, data: [], installable: true, auto_install: name === 'web', summary: null, author: 'Odoo S.A.', license: 'LGPL-3', application: false, website: null },
    });
  }
  for (const root of addonsPath) {
    let entries: string[];
    try {
      entries = (await readdir(root)).sort();
    } catch {
      log.warning('odoo.modules.module', `addons path does not exist: ${root}`);
      continue;
    }
    for (const entry of entries) {
      if (found.has(entry)) continue;
      const dir = path.join(root, entry);
      for (const file of ['__manifest__.py', '__openerp__.py']) {
        let text: string;
        try {
          text = await readFile(path.join(dir, file), 'utf8');
        } catch {
          continue;
        }
        try {
          const m = parseManifest(text, path.join(dir, file));
          found.set(entry, { name: entry, dir, manifest: m });
        } catch (err) {
          log.log('ERROR', 'odoo.modules.module', `Couldn't load module ${entry}: ${(err as Error).message}`);
        }
        break;
      }
    }
  }
  return found;
}

export async function isInitialized(q: Query): Promise<boolean> {
  const rows = await q<{ t: string | null }>("SELECT to_regclass('ir_module_module')::text AS t");
  return rows[0]?.t !== null && rows[0]?.t !== undefined;
}

/** `odoo.modules.db.initialize`: the base tables and the records `base` starts with. */
export async function initializeDatabase(q: Query, tablesSql: string, series: string, httpPort: string): Promise<void> {
  await q(tablesSql);
  await q(`INSERT INTO res_partner (id, name, complete_name, company_id, is_company, create_date) VALUES (1, 'My Company', 'My Company', 1, true, now() AT TIME ZONE 'UTC'), (2, 'Administrator', 'Administrator', 1, false, now() AT TIME ZONE 'UTC')`);
  await q(`SELECT setval('res_partner_id_seq', 2)`);
  await q(`INSERT INTO res_users (id, login, password, active, partner_id, company_id, create_date) VALUES (1, '__system__', NULL, false, 1, 1, now() AT TIME ZONE 'UTC'), (2, 'admin', 'admin', true, 2, 1, now() AT TIME ZONE 'UTC')`);
  await q(`SELECT setval('res_users_id_seq', 2)`);
  await q(`INSERT INTO ir_act_server (id, name, model_name, state, code) VALUES (1, '{"en_US": "Base: Auto-vacuum internal data"}', 'ir.autovacuum', 'code', 'model._run_vacuum_cleaner()')`);
  await q(`SELECT setval('ir_act_server_id_seq', 1)`);
  await q(`INSERT INTO ir_cron (id, ir_actions_server_id, cron_name, user_id, active, interval_number, interval_type, numbercall, nextcall, priority) VALUES (1, 1, 'Base: Auto-vacuum internal data', 1, true, 1, 'days', -1, now() AT TIME ZONE 'UTC', 5)`);
  await q(`SELECT setval('ir_cron_id_seq', 1)`);
  await q(
    `INSERT INTO ir_model_data (name, module, model, res_id, noupdate) VALUES
      ('main_partner', 'base', 'res.partner', 1, true), ('partner_admin', 'base', 'res.partner', 2, true),
      ('user_root', 'base', 'res.users', 1, true), ('user_admin', 'base', 'res.users', 2, true),
      ('autovacuum_job', 'base', 'ir.cron', 1, true)`,
  );
  await q(
    `INSERT INTO ir_config_parameter (key, value, create_date) VALUES
      ('database.uuid', gen_random_uuid()::text, now() AT TIME ZONE 'UTC'),
      ('database.create_date', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'), now() AT TIME ZONE 'UTC'),
      ('database.secret', md5(random()::text) || md5(random()::text), now() AT TIME ZONE 'UTC'),
      ('web.base.url', $1, now() AT TIME ZONE 'UTC')`,
    [`http://localhost:${httpPort}`],
  );
  await q(`INSERT INTO ir_module_module (name, state, latest_version, shortdesc, author, license, create_date) VALUES ('base', 'to install', $1, '{"en_US": "Base"}', 'Odoo S.A.', 'LGPL-3', now() AT TIME ZONE 'UTC')`, [adaptVersion('1.3', series)]);
}

/** `update_list`: every module of the addons path gets a row (and its dependency rows). */
export async function updateModuleList(q: Query, mods: Map<string, ModuleInfo>): Promise<void> {
  const rows = await q<{ id: number; name: string; state: string }>('SELECT id, name, state FROM ir_module_module');
  const byName = new Map(rows.map((r) => [r.name, r]));
  for (const m of mods.values()) {
    const st = m.manifest.installable ? 'uninstalled' : 'uninstallable';
    let id = byName.get(m.name)?.id;
    const values = [m.name, m.manifest.summary ? JSON.stringify({ en_US: m.manifest.summary }) : null, m.manifest.author, m.manifest.license, m.manifest.application, m.manifest.auto_install !== false, m.manifest.website];
    if (id === undefined) {
      const ins = await q<{ id: number }>(
        `INSERT INTO ir_module_module (name, summary, author, license, application, auto_install, website, shortdesc, state, create_date)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, now() AT TIME ZONE 'UTC') RETURNING id`,
        [...values, JSON.stringify({ en_US: m.manifest.name ?? m.name }), st],
      );
      id = ins[0]!.id;
    } else {
      await q(`UPDATE ir_module_module SET summary = $2, author = $3, license = $4, application = $5, auto_install = $6, website = $7, write_date = now() AT TIME ZONE 'UTC' WHERE name = $1`, values);
      if (byName.get(m.name)!.state === 'uninstallable' && m.manifest.installable) await q(`UPDATE ir_module_module SET state = 'uninstalled' WHERE id = $1`, [id]);
    }
    await q('DELETE FROM ir_module_module_dependency WHERE module_id = $1', [id]);
    for (const dep of m.manifest.depends) await q('INSERT INTO ir_module_module_dependency (name, module_id, auto_install_required) VALUES ($1, $2, true)', [dep, id]);
  }
}

/** `button_install` on each requested module: itself and, recursively, its dependencies. */
export async function markToInstall(q: Query, names: string[]): Promise<void> {
  const seen = new Set<string>();
  const visit = async (name: string): Promise<void> => {
    if (seen.has(name)) return;
    seen.add(name);
    const deps = await q<{ name: string; state: string | null }>(
      `SELECT d.name, m.state FROM ir_module_module_dependency d JOIN ir_module_module mm ON mm.id = d.module_id
        LEFT JOIN ir_module_module m ON m.name = d.name WHERE mm.name = $1 ORDER BY d.id`,
      [name],
    );
    for (const d of deps) {
      if (d.state === null || d.state === 'uninstallable') {
        throw new LoadingFailure(
          'odoo.exceptions.UserError',
          `You try to install module '${name}' that depends on module '${d.name}'.\nBut the latter module is not available in your system.`,
          "raise UserError(_(\"You try to install module %r that depends on module %r.\\nBut the latter module is not available in your system.\", module.name, dep.name))",
        );
      }
      await visit(d.name);
    }
    await q(`UPDATE ir_module_module SET state = 'to install' WHERE name = $1 AND state = 'uninstalled'`, [name]);
  };
  for (const n of names) await visit(n);
}

/** Modules in a state that needs loading, dependencies first (Odoo's graph order). */
async function pendingInOrder(q: Query): Promise<Array<{ name: string; state: string }>> {
  const rows = await q<{ name: string; state: string }>(`SELECT name, state FROM ir_module_module WHERE state IN ('to install', 'to upgrade') ORDER BY name`);
  const deps = await q<{ module: string; dep: string }>(`SELECT m.name AS module, d.name AS dep FROM ir_module_module_dependency d JOIN ir_module_module m ON m.id = d.module_id`);
  const depsOf = new Map<string, string[]>();
  for (const d of deps) depsOf.set(d.module, [...(depsOf.get(d.module) ?? []), d.dep]);
  const pending = new Map(rows.map((r) => [r.name, r]));
  const out: Array<{ name: string; state: string }> = [];
  const done = new Set<string>();
  const visit = (n: string, stack: Set<string>) => {
    if (done.has(n) || stack.has(n) || !pending.has(n)) return;
    stack.add(n);
    for (const d of depsOf.get(n) ?? []) visit(d, stack);
    stack.delete(n);
    done.add(n);
    out.push(pending.get(n)!);
  };
  for (const r of rows) visit(r.name, new Set());
  return out;
}

/** Loads every module marked to install or upgrade; a missing data file fails like Odoo's file_open. */
export async function loadMarkedModules(q: Query, mods: Map<string, ModuleInfo>, series: string, log: OdooLog): Promise<string[]> {
  const todo = await pendingInOrder(q);
  if (todo.length === 0) return [];
  log.info('odoo.modules.loading', `loading ${todo.length} modules...`);
  const t0 = Date.now();
  for (const [i, { name, state }] of todo.entries()) {
    const info = mods.get(name);
    if (!info) throw new LoadingFailure('FileNotFoundError', `Invalid module name: ${name}`, 'module_path = get_module_path(package.name)');
    log.info('odoo.modules.loading', `Loading module ${name} (${i + 1}/${todo.length})`);
    if (info.dir) {
      for (const file of info.manifest.data) {
        const full = path.join(info.dir, file);
        const ok = await stat(full).then(
          (s) => s.isFile(),
          () => false,
        );
        if (!ok) throw new LoadingFailure('FileNotFoundError', `File not found: ${name}/${file}`, `fp = file_open(pathname, 'rb')`);
        log.info('odoo.modules.loading', `loading ${name}/${file}`);
      }
    }
    log.info('odoo.modules.registry', `module ${name}: creating or updating database tables`);
    await q(`UPDATE ir_module_module SET state = 'installed', latest_version = $2, write_date = now() AT TIME ZONE 'UTC' WHERE name = $1`, [name, adaptVersion(info.manifest.version, series)]);
    if (state === 'to upgrade') log.info('odoo.modules.loading', `module ${name}: upgraded to ${adaptVersion(info.manifest.version, series)}`);
  }
  log.info('odoo.modules.loading', `${todo.length} modules loaded in ${((Date.now() - t0) / 1000).toFixed(2)}s, 0 queries (+0 extra)`);
  return todo.map((t) => t.name);
}

/** `-i` names Odoo does not know are ignored with a warning (and the command still succeeds). */
export async function checkModuleNames(q: Query, names: string[], log: OdooLog): Promise<string[]> {
  if (names.length === 0) return [];
  const rows = await q<{ name: string }>('SELECT name FROM ir_module_module WHERE name = ANY($1)', [names]);
  const known = new Set(rows.map((r) => r.name));
  const wrong = names.filter((n) => n !== 'all' && !known.has(n));
  if (wrong.length) log.warning('odoo.modules.loading', `invalid module names, ignored: ${wrong.join(', ')}`);
  return names.filter((n) => known.has(n));
}

/** The closing checks of load_modules: what stayed half-done or is installed but not loadable. */
export async function reportInconsistencies(q: Query, mods: Map<string, ModuleInfo>, log: OdooLog): Promise<void> {
  const pending = await q<{ name: string }>(`SELECT name FROM ir_module_module WHERE state IN ('to install', 'to upgrade') ORDER BY name`);
  if (pending.length) log.error('odoo.modules.loading', `Some modules have inconsistent states, some dependencies may be missing: ${pyList(pending.map((p) => p.name))}`);
  const installed = await q<{ name: string }>(`SELECT name FROM ir_module_module WHERE state = 'installed' ORDER BY name`);
  const missing = installed.map((r) => r.name).filter((n) => !mods.has(n));
  if (missing.length) log.error('odoo.modules.loading', `Some modules are not loaded, some dependencies or manifest may be missing: ${pyList(missing)}`);
}

export function pyList(items: string[]): string {
  return `[${items.map((i) => `'${i}'`).join(', ')}]`;
}

