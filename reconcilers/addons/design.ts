// Commands of the addons reconciler as data: the Odoo CLI argv of an install or upgrade, the
// one-off container that runs it (the environment's own image, odoo.conf, mounts and env), and
// the SQL that reads and records module state. Golden-tested without an engine.
import type Docker from 'dockerode';
import type { DesiredEnv } from '../../src/spec/model.ts';
import { LABEL } from '../../src/drivers/docker.ts';
import { databaseName, moduleList } from '../../src/core/argv.ts';
import { createOptions, designOdooContainer, type OdooContainerDesign } from '../containers/design.ts';
import { ODOO_CONF_DIR, ODOO_CONF_NAME } from '../containers/design.ts';

export const RUN_SERVICE = 'odoo-run';
export const CHECKSUM_KEY_PREFIX = 'pulser.addons.checksum.';

export type OdooRunKind = 'install' | 'upgrade';

/**
 * `odoo -c CONF -d DB -i a,b --stop-after-init` (or `-u`), modules in dependency order. Odoo's
 * option parser has no use for `--` here (these are values of -d and -i), so a database or
 * module name that would read as an option, or a module name that would split the list, is refused.
 */
export function odooRunArgv(kind: OdooRunKind, database: string, modules: string[]): string[] {
  return ['odoo', '-c', `${ODOO_CONF_DIR}/${ODOO_CONF_NAME}`, '-d', databaseName(database), kind === 'install' ? '-i' : '-u', moduleList(modules), '--stop-after-init'];
}

export function runContainerName(env: string, kind: OdooRunKind, nonce: string): string {
  return `pulser-${env}-odoo-${kind}-${nonce}`;
}

/**
 * A one-off container of the environment's own design: same image, environment, config and addon
 * mounts as the serving container, but no published port, no restart policy and its own labels.
 */
export function oneOffOptions(design: OdooContainerDesign, argv: string[], name: string): Docker.ContainerCreateOptions {
  const base = createOptions(design);
  return {
    name,
    Image: design.image,
    Cmd: argv,
    Env: base.Env,
    Labels: { [LABEL.managedBy]: 'pulser', [LABEL.env]: design.env, [LABEL.service]: RUN_SERVICE },
    HostConfig: {
      Init: true,
      RestartPolicy: { Name: 'no' },
      ExtraHosts: base.HostConfig?.ExtraHosts ?? [],
      ...(design.binds.length ? { Binds: design.binds } : {}),
    },
  };
}

export function designOneOff(desired: DesiredEnv, kind: OdooRunKind, modules: string[], nonce: string): { design: OdooContainerDesign; options: Docker.ContainerCreateOptions; argv: string[] } {
  const design = designOdooContainer(desired);
  const argv = odooRunArgv(kind, desired.spec.database.name, modules);
  return { design, argv, options: oneOffOptions(design, argv, runContainerName(desired.name, kind, nonce)) };
}

export const SQL = {
  tablesExist: `SELECT to_regclass('ir_module_module') IS NOT NULL AS ready`,
  modules: `SELECT name, state, latest_version FROM ir_module_module ORDER BY name`,
  dependencies: `SELECT m.name AS module, d.name AS depends FROM ir_module_module_dependency d JOIN ir_module_module m ON m.id = d.module_id ORDER BY m.name, d.name`,
  checksums: `SELECT key, value FROM ir_config_parameter WHERE key LIKE 'pulser.addons.checksum.%' ORDER BY key`,
  recordChecksum: `INSERT INTO ir_config_parameter (key, value, create_date, write_date) VALUES ($1, $2, now() AT TIME ZONE 'UTC', now() AT TIME ZONE 'UTC')
ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, write_date = EXCLUDED.write_date`,
  moduleStates: `SELECT name, state, latest_version FROM ir_module_module WHERE name = ANY($1)`,
} as const;

/** Odoo's own error lines in a log: WARNING and worse records, with the traceback lines after them. */
export function odooErrorLines(log: string, max = 40): string[] {
  const out: string[] = [];
  let inRecord = false;
  for (const line of log.split('\n')) {
    const rec = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} \d+ (\w+) /.exec(line);
    if (rec) inRecord = rec[1] !== 'INFO' && rec[1] !== 'DEBUG';
    if (inRecord && line.trim()) out.push(line);
  }
  return out.slice(-max);
}
