// `pulser deps <module…>`: the install order of modules and their dependencies, from addons folders
// on disk (or the repositories an environment declares), and the Odoo commands that install what
// is not installed yet.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { PulserError } from '../errors.ts';
import { createPulser } from '../app.ts';
import { scanAddonsFolders, type AddonsFolder } from '../odoo/scan.ts';
import { coreModules, loadCatalogue } from '../odoo/catalogue.ts';
import { installPlan, resolveModules, type ResolvedModule } from '../odoo/resolve.ts';
import { MODULE_NAME } from '../odoo/manifest.ts';
import { envDb } from '../odoo/db.ts';
import { repoCheckoutDir, repoName } from '../../reconcilers/addons/layout.ts';
import { odooRunArgv } from '../../reconcilers/addons/design.ts';
import { databaseName } from '../core/argv.ts';
import type { Io } from './main.ts';
import { parseCommandArgs } from './args.ts';

const DEPS_USAGE = `Usage: pulser deps <module…> [--addons PATH]… [--env ENV] [--installed a,b] [--database DB] [--json]

  Resolves the modules and their dependencies from addons folders (each holding module folders
  with a __manifest__.py), prints the install order and the Odoo command installing what is not
  installed yet. Core modules of the Odoo image (and \`core:\` of ops/addons-catalogue.yaml) are
  taken as provided; missing modules are reported with the repositories that may provide them.

  --addons PATH     an addons folder (repeatable)
  --env ENV         use the repositories ENV declares (as checked out on this machine), its
                    database name, and the modules installed in its database
  --installed LIST  modules already installed (comma-separated; overrides the database)
  --database DB     database name in the printed command (default: the environment's, else DB)
  --dir DIR         the GitOps root (default: current folder)
  --json            machine-readable output
`;

interface DepsFlags {
  addons: string[];
  env?: string;
  installed?: string;
  database?: string;
  dir: string;
  json: boolean;
  help: boolean;
  'secrets-file'?: string;
}

const INSTALLED_STATES = ['installed', 'to upgrade', 'to remove'];

export async function cmdDeps(args: string[], io: Io): Promise<number> {
  const parsed = parseCommandArgs(
    args,
    {
      addons: { type: 'string', multiple: true, default: [] },
      env: { type: 'string' },
      installed: { type: 'string' },
      database: { type: 'string' },
    },
    DEPS_USAGE,
  );
  const flags = parsed.values as DepsFlags;
  if (flags.help) {
    io.out(DEPS_USAGE);
    return 0;
  }
  const requested = parsed.positionals;
  if (requested.length === 0) throw new PulserError('PULSER_E_USAGE', `deps needs at least one module\n${DEPS_USAGE}`);
  const bad = requested.find((m) => !MODULE_NAME.test(m));
  if (bad) throw new PulserError('PULSER_E_USAGE', `${JSON.stringify(bad)} is not a module name`);
  if (!flags.env && flags.addons.length === 0) throw new PulserError('PULSER_E_USAGE', `give --addons PATH (repeatable) or --env ENV\n${DEPS_USAGE}`);
  // The printed command is meant to be pasted: no option may hide in its database name.
  if (flags.database !== undefined) databaseName(flags.database);

  const root = path.resolve(flags.dir);
  const folders: AddonsFolder[] = flags.addons.map((p) => ({ path: p }));
  const unscanned: { repo: string; url: string; branch: string }[] = [];
  let installed: Set<string> | null = flags.installed !== undefined ? new Set(flags.installed.split(',').map((s) => s.trim()).filter(Boolean)) : null;
  let database = flags.database ?? 'DB';
  const warnings: string[] = [];

  if (flags.env) {
    const p = createPulser({ root, evidenceDir: null, secretsFile: flags['secrets-file'], logLevel: 'error' });
    try {
      const snap = await p.load();
      const load = snap.envs.get(flags.env);
      if (!load) throw new PulserError('PULSER_E_ENV_UNKNOWN', `no environment ${JSON.stringify(flags.env)} in environments/`);
      if (!load.ok) throw load.errors[0]!;
      const desired = load.desired;
      database = flags.database ?? desired.spec.database.name;
      for (const r of desired.spec.addons?.repos ?? []) {
        const dir = repoCheckoutDir(desired, r);
        if (existsSync(dir)) folders.push({ path: dir, repo: repoName(r) });
        else {
          unscanned.push({ repo: repoName(r), url: r.url, branch: r.ref });
          warnings.push(`repository ${repoName(r)} is not checked out at ${dir} (run \`pulser apply ${flags.env}\`)`);
        }
      }
      if (installed === null) {
        const rows = await envDb(p.drivers(), desired).query<{ name: string }>(`SELECT name FROM ir_module_module WHERE state = ANY($1) ORDER BY name`, [INSTALLED_STATES]);
        installed = new Set(rows.map((r) => r.name));
      }
    } finally {
      await p.close();
    }
  }

  const [scan, catalogue] = await Promise.all([scanAddonsFolders(folders), loadCatalogue(root)]);
  const { order, problems } = resolveModules({
    requested,
    available: scan.modules,
    core: coreModules(catalogue.core),
    hints: { catalogue: catalogue.modules, ocaDependencies: scan.ocaDependencies, unscanned },
  });
  // A module whose manifest could not be read is reported for what it is, not as missing.
  const reported = problems.map((p) => {
    const name = p.details?.module;
    return p.code === 'PULSER_E_MODULE_MISSING' && typeof name === 'string' && scan.broken.has(name) ? scan.broken.get(name)! : p;
  });
  const toInstall = reported.length ? [] : installPlan(order, installed ?? new Set());
  const argv = toInstall.length ? odooRunArgv('install', database, toInstall) : null;

  if (flags.json) {
    io.out(
      JSON.stringify(
        {
          requested,
          order: order.map((m) => ({ ...m, installed: installed?.has(m.name) ?? null })),
          install: toInstall,
          argv,
          problems: reported.map((p) => p.toJSON()),
          warnings,
        },
        null,
        2,
      ),
    );
  } else io.out(renderDeps(order, toInstall, argv, reported, warnings, installed));
  return reported.length ? 1 : 0;
}

function renderDeps(order: ResolvedModule[], toInstall: string[], argv: string[] | null, problems: PulserError[], warnings: string[], installed: Set<string> | null): string {
  const lines: string[] = [];
  for (const w of warnings) lines.push(`warning: ${w}`);
  if (problems.length) {
    lines.push(`${problems.length} problem${problems.length > 1 ? 's' : ''}:`);
    for (const p of problems) lines.push(`  ${p.code}: ${p.toString()}`);
    return lines.join('\n');
  }
  const width = Math.max(...order.map((m) => m.name.length));
  lines.push(`Install order (${order.length} module${order.length === 1 ? '' : 's'}, dependencies first):`);
  order.forEach((m, i) => {
    const from = m.core ? 'core (image)' : `${m.repo}${m.version ? ` ${m.version}` : ''}`;
    const state = installed?.has(m.name) ? '  installed' : '';
    lines.push(`  ${String(i + 1).padStart(String(order.length).length)}. ${m.name.padEnd(width)}  ${from}${state}`);
  });
  lines.push('');
  if (!argv) lines.push(`Nothing to install: all ${order.length} modules are installed.`);
  else {
    lines.push(`To install (${toInstall.length}):`);
    lines.push(`  ${argv.map(shellWord).join(' ')}`);
  }
  return lines.join('\n');
}

function shellWord(w: string): string {
  return /^[\w@%+=:,./-]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`;
}
