// What the Odoo container of an environment should be, derived purely from the desired spec:
// the rendered odoo.conf, the dockerode create options and the spec hash. Commands are data:
// these builders are golden-tested without an engine; only apply hands them to the driver.
import type Docker from 'dockerode';
import type { DesiredEnv } from '../../src/spec/model.ts';
import { LABEL } from '../../src/drivers/docker.ts';
import { canonicalJson, sha256Hex } from '../../src/core/canonical.ts';
import { addonsMounts } from '../addons/layout.ts';

export const ODOO_HTTP_PORT = 8069;
export const ODOO_CONF_DIR = '/etc/odoo';
export const ODOO_CONF_NAME = 'odoo.conf';

/** What may be shown of a container spec: secret values are replaced by their reference and a digest. */
export interface ShownSpec {
  image: string;
  port: number;
  bind: string;
  command: string[] | null;
  env: Record<string, string>;
  config: Record<string, string>;
}

export interface OdooContainerDesign {
  env: string;
  service: 'odoo';
  name: string;
  image: string;
  port: number;
  bind: string;
  command: string[] | null;
  /** read-only mounts of the addon repositories (`host:container:ro`) */
  binds: string[];
  /** real values: only for the container itself */
  environment: Record<string, string>;
  options: Record<string, string>;
  specHash: string;
  /**
   * The hash containers were labelled with before secrets counted by their keyed digest (real
   * values in the hash input): a container labelled so is still in sync, so an upgrade of pulser
   * restarts nothing. Known only where the values are (never in an untrusted plan).
   */
  legacySpecHash: string | null;
  shown: ShownSpec;
}

export function containerName(env: string, service = 'odoo'): string {
  return `pulser-${env}-${service}`;
}

/** `name.prev-<id12>`: where the previous container waits while its successor is probed. */
export function parkedName(name: string, id: string): string {
  return `${name}.prev-${id.slice(0, 12)}`;
}

function confValue(v: string | number | boolean): string {
  if (typeof v === 'boolean') return v ? 'True' : 'False';
  return String(v);
}

/** Whether a container's labels say it was made from this design. */
export function madeFrom(labels: Record<string, string>, d: OdooContainerDesign): boolean {
  const h = labels[LABEL.specHash];
  return h !== undefined && (h === d.specHash || (d.legacySpecHash !== null && h === d.legacySpecHash));
}

export function designOdooContainer(desired: DesiredEnv): OdooContainerDesign {
  const { spec, masked } = desired;
  const secret = new Set(desired.secretPaths);
  // The loader's keyed digest (SecretSource.digest); an inline password, in git anyway, by its sha256.
  const digestOf = (path: string, real: string): string => desired.secretDigests[path] ?? sha256Hex(`${desired.name}\0${path}\0${real}`).slice(0, 12);
  const show = (path: string, real: string, maskedText: string): string => (secret.has(path) ? `${maskedText} #${digestOf(path, real)}` : real);
  // What the spec hash is taken of: a secret by its digest, so that the hash never carries a
  // value and an untrusted plan (which holds references, not values) hashes the same.
  const sealed = (path: string, real: string): string => (secret.has(path) ? `\0secret#${digestOf(path, real)}` : real);

  const options: Record<string, string> = {
    db_host: spec.database.host,
    db_port: String(spec.database.port),
    db_user: spec.database.user,
    db_password: spec.database.password ?? 'False',
    db_name: spec.database.name,
    dbfilter: `^${spec.database.name}$`,
    list_db: 'False',
    http_port: String(ODOO_HTTP_PORT),
    workers: String(spec.odoo.workers),
  };
  const optionPath: Record<string, string> = { db_password: 'database.password', db_host: 'database.host', db_user: 'database.user' };
  const optionMasked: Record<string, string> = {
    ...options,
    db_host: masked.database.host,
    db_user: masked.database.user,
    // An inline password (not a secret reference) is still never shown.
    db_password: masked.database.password === undefined ? 'False' : secret.has('database.password') ? masked.database.password : '(inline)',
  };
  for (const [k, v] of Object.entries(spec.odoo.config)) {
    options[k] = confValue(v);
    optionMasked[k] = confValue(masked.odoo.config[k] ?? v);
    optionPath[k] = `odoo.config.${k}`;
  }
  const mounts = addonsMounts(desired);
  if (mounts.addonsPath) options.addons_path = optionMasked.addons_path = mounts.addonsPath;
  // Outside deliver mode the odoo.conf SMTP fallback (used when no ir_mail_server is active) is cut.
  if (spec.mail && spec.mail.mode !== 'deliver') {
    for (const k of ['smtp_server', 'smtp_user', 'smtp_password']) options[k] = optionMasked[k] = 'False';
    options.smtp_ssl = optionMasked.smtp_ssl = 'False';
  }
  const shownConfig: Record<string, string> = {};
  for (const k of Object.keys(options).sort()) {
    // The database password is never shown, even when written inline in the spec.
    const isSecret = k === 'db_password' || secret.has(optionPath[k] ?? '');
    shownConfig[k] = isSecret ? `${optionMasked[k]} #${digestOf(optionPath[k] ?? k, options[k]!)}` : options[k]!;
  }

  const environment: Record<string, string> = { ...spec.odoo.env };
  const shownEnv: Record<string, string> = {};
  for (const k of Object.keys(environment).sort()) shownEnv[k] = show(`odoo.env.${k}`, environment[k]!, masked.odoo.env[k] ?? '');

  const shown: ShownSpec = {
    image: spec.odoo.image,
    port: spec.odoo.port,
    bind: spec.odoo.bind,
    command: spec.odoo.command?.map((arg, i) => show(`odoo.command[${i}]`, arg, masked.odoo.command?.[i] ?? '')) ?? null,
    env: shownEnv,
    config: shownConfig,
  };
  const hashOf = (command: string[] | null, env: Record<string, string>, opts: Record<string, string>): string =>
    'sha256:' +
    sha256Hex(
      canonicalJson({
        image: spec.odoo.image,
        port: spec.odoo.port,
        bind: spec.odoo.bind,
        command,
        environment: env,
        options: opts,
        ...(mounts.binds.length ? { binds: mounts.binds } : {}),
      }),
    );
  const mapValues = (o: Record<string, string>, f: (k: string, v: string) => string) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, f(k, v)]));
  const specHash = hashOf(
    spec.odoo.command?.map((arg, i) => sealed(`odoo.command[${i}]`, arg)) ?? null,
    mapValues(environment, (k, v) => sealed(`odoo.env.${k}`, v)),
    mapValues(options, (k, v) => sealed(optionPath[k] ?? '', v)),
  );
  const legacySpecHash = desired.untrusted ? null : hashOf(spec.odoo.command ?? null, environment, options);
  return {
    env: desired.name,
    service: 'odoo',
    name: containerName(desired.name),
    image: spec.odoo.image,
    port: spec.odoo.port,
    bind: spec.odoo.bind,
    command: spec.odoo.command ?? null,
    binds: mounts.binds,
    environment,
    options,
    specHash,
    legacySpecHash,
    shown,
  };
}

export function renderOdooConf(options: Record<string, string>): string {
  const lines = ['; Written by pulser from the environment spec. Changes here are overwritten.', '[options]'];
  for (const k of Object.keys(options).sort()) lines.push(`${k} = ${options[k]}`);
  return lines.join('\n') + '\n';
}

export function containerLabels(d: OdooContainerDesign): Record<string, string> {
  return {
    [LABEL.managedBy]: 'pulser',
    [LABEL.env]: d.env,
    [LABEL.service]: d.service,
    [LABEL.specHash]: d.specHash,
    [LABEL.spec]: JSON.stringify(d.shown),
  };
}

export function createOptions(d: OdooContainerDesign): Docker.ContainerCreateOptions {
  const portKey = `${ODOO_HTTP_PORT}/tcp`;
  return {
    name: d.name,
    Image: d.image,
    ...(d.command ? { Cmd: d.command } : {}),
    Env: [...Object.entries(d.environment).map(([k, v]) => `${k}=${v}`), `ODOO_RC=${ODOO_CONF_DIR}/${ODOO_CONF_NAME}`],
    Labels: containerLabels(d),
    ExposedPorts: { [portKey]: {} },
    HostConfig: {
      PortBindings: { [portKey]: [{ HostIp: d.bind, HostPort: String(d.port) }] },
      Init: true,
      RestartPolicy: { Name: STEADY_RESTART_POLICY },
      ExtraHosts: ['host.docker.internal:host-gateway'],
      ...(d.binds.length ? { Binds: d.binds } : {}),
    },
  };
}

/** The restart policy of a container in service. */
export const STEADY_RESTART_POLICY = 'unless-stopped';

/**
 * Create options of a container on probation: the engine must not restart it while it is probed,
 * or a crash would look like a container that runs. It gets the steady policy once healthy.
 */
export function probationCreateOptions(d: OdooContainerDesign): Docker.ContainerCreateOptions {
  const o = createOptions(d);
  return { ...o, HostConfig: { ...o.HostConfig, RestartPolicy: { Name: 'no' } } };
}

/** Reads back the shown spec a container was created with; null when the label is absent or damaged. */
export function shownSpecOf(labels: Record<string, string>): ShownSpec | null {
  const raw = labels[LABEL.spec];
  if (!raw) return null;
  try {
    const v = JSON.parse(raw) as ShownSpec;
    return typeof v.image === 'string' && v.env && v.config ? v : null;
  } catch {
    return null;
  }
}
