/* Generated from schema/*.schema.json by `npm run gen:types`. Do not edit by hand. */

/**
 * The desired state of one Odoo environment. One file per environment: `environments/<name>.yaml`. Keys starting with `x-` are free-form and ignored. Any string may contain `${kv:KEY}` (the trimmed content of `ops/kv/KEY.txt`) and `${secret:NAME}` (from the process environment or the secrets file; never shown in plans, evidence, logs or metrics).
 */
export interface Environment {
  /**
   * Name of the environment. Must equal the file name without `.yaml`. Lower-case letters, digits and dashes; at most 40 characters.
   */
  name: string;
  /**
   * What the environment is for. Production gets the strictest policy; the other tiers are never allowed to reach real customers.
   */
  tier: 'production' | 'staging' | 'development' | 'preview';
  /**
   * Name of the host the environment runs on, as declared in `environments/hosts.yaml`.
   */
  host: string;
  sync?: Sync;
  odoo: Odoo;
  database: Database;
  addons?: Addons;
  mail?: Mail;
  /**
   * This interface was referenced by `Environment`'s JSON-Schema definition
   * via the `patternProperty` "^x-".
   */
  [k: string]: unknown;
}
/**
 * How pulser converges this environment.
 */
export interface Sync {
  /**
   * Apply changes automatically. When false, pulser plans and reports drift but applies only on `pulser apply`.
   */
  auto?: boolean;
  /**
   * How often the environment is reconciled even when nothing triggered it. Between 5s and 1d.
   */
  interval?: string;
  /**
   * Delete what pulser created for this environment when it is no longer desired (for example containers of an environment whose file was removed). Never touches anything without pulser's labels.
   */
  prune?: boolean;
  /**
   * This interface was referenced by `Sync`'s JSON-Schema definition
   * via the `patternProperty` "^x-".
   */
  [k: string]: unknown;
}
/**
 * The Odoo server container.
 */
export interface Odoo {
  /**
   * Image reference, for example `odoo:17.0` or `ghcr.io/acme/odoo:${kv:staging.image_tag}`. Changing it rolls out a new container.
   */
  image: string;
  /**
   * Odoo HTTP worker processes (`workers` in odoo.conf). 0 runs Odoo threaded.
   */
  workers?: number;
  /**
   * Extra `odoo.conf` options, written under `[options]`. Database connection options come from `database` and may not be set here.
   */
  config?: {
    [k: string]: string | number | boolean;
  };
  /**
   * Environment variables of the container. Use `${secret:NAME}` for anything sensitive.
   */
  env?: {
    [k: string]: string;
  };
  /**
   * Host port the Odoo HTTP port (8069 in the container) is published on.
   */
  port: number;
  /**
   * Host address the port is published on. Keep 127.0.0.1 behind a reverse proxy.
   */
  bind?: string;
  /**
   * Overrides the image's command (argv, never a shell string).
   *
   * @maxItems 64
   */
  command?: string[];
  health?: HealthCheck;
  /**
   * This interface was referenced by `Odoo`'s JSON-Schema definition
   * via the `patternProperty` "^x-".
   */
  [k: string]: unknown;
}
/**
 * The HTTP health probe that gates a rollout: a new container is kept only once the probe answers 2xx.
 */
export interface HealthCheck {
  /**
   * Path probed on the Odoo HTTP port.
   */
  path?: string;
  /**
   * Time between two probes.
   */
  interval?: string;
  /**
   * Time after which one probe counts as failed.
   */
  timeout?: string;
  /**
   * Failed probes tolerated before the rollout is declared failed and rolled back.
   */
  retries?: number;
  /**
   * This interface was referenced by `HealthCheck`'s JSON-Schema definition
   * via the `patternProperty` "^x-".
   */
  [k: string]: unknown;
}
/**
 * The PostgreSQL database Odoo uses. The server is external to the environment (a managed PostgreSQL, or one on the host).
 */
export interface Database {
  /**
   * Database name.
   */
  name: string;
  /**
   * Server address as seen from the Odoo container (for example `host.docker.internal` or the Docker bridge gateway).
   */
  host: string;
  /**
   * Server port.
   */
  port?: number;
  /**
   * Role Odoo connects as.
   */
  user: string;
  /**
   * Password of that role; use `${secret:NAME}`.
   */
  password?: string;
  /**
   * Server address as seen from the host pulser reaches the database from, when it differs from `host` (which is seen from the Odoo container). Defaults to `host`, except that `host.docker.internal`, `host-gateway` and `localhost` become `127.0.0.1` on a local host.
   */
  address?: string;
  /**
   * This interface was referenced by `Database`'s JSON-Schema definition
   * via the `patternProperty` "^x-".
   */
  [k: string]: unknown;
}
/**
 * Addon repositories checked out on the host (read-only in the Odoo containers, listed in `addons_path`) and the modules installed in the database.
 */
export interface Addons {
  /**
   * Git repositories of addons, each checked out at the commit its `ref` resolves to (recorded in evidence).
   *
   * @maxItems 64
   */
  repos?: AddonRepo[];
  /**
   * Modules that must be installed; their dependencies are installed first.
   *
   * @maxItems 1000
   */
  install?: string[];
  /**
   * `changed`: upgrade installed modules whose manifest version or content changed; `never`: leave them.
   */
  upgrade?: 'changed' | 'never';
  /**
   * This interface was referenced by `Addons`'s JSON-Schema definition
   * via the `patternProperty` "^x-".
   */
  [k: string]: unknown;
}
export interface AddonRepo {
  /**
   * Clone URL (https, ssh or a local path).
   */
  url: string;
  /**
   * Branch, tag or commit to check out.
   */
  ref: string;
  /**
   * Folder name of the checkout. Defaults to the last part of the URL without `.git`.
   */
  name?: string;
  /**
   * This interface was referenced by `AddonRepo`'s JSON-Schema definition
   * via the `patternProperty` "^x-".
   */
  [k: string]: unknown;
}
/**
 * Where the environment's outgoing mail goes, enforced in the database (`ir_mail_server`).
 */
export interface Mail {
  /**
   * `deliver`: the database's own outgoing servers stay active (those pulser deactivated for catch or block are reactivated); `catch`: all mail goes to pulser's built-in catcher; `block`: no outgoing server is active and the odoo.conf SMTP fallback is cut. Only production may deliver.
   */
  mode: 'deliver' | 'catch' | 'block';
  /**
   * Required (true) to set a production environment to `catch` or `block`.
   */
  override?: boolean;
  /**
   * Address of pulser's mail catcher as seen from the Odoo container.
   */
  catcher_host?: string;
  /**
   * This interface was referenced by `Mail`'s JSON-Schema definition
   * via the `patternProperty` "^x-".
   */
  [k: string]: unknown;
}

/**
 * A machine environments run on. Declared once in `environments/hosts.yaml` and referenced by name from environments.
 */
export type Host = LocalHost;

/**
 * `environments/hosts.yaml`: every host environments may run on, by name.
 */
export interface HostsFile {
  /**
   * Hosts by name (lower-case letters, digits and dashes).
   */
  hosts: {
    [k: string]: Host;
  };
  /**
   * This interface was referenced by `HostsFile`'s JSON-Schema definition
   * via the `patternProperty` "^x-".
   */
  [k: string]: unknown;
}
/**
 * The Docker engine of the machine pulser runs on.
 */
export interface LocalHost {
  /**
   * Host kind.
   */
  kind: 'local';
  /**
   * Folder where addon repositories are checked out (one folder per environment and repository). Defaults to `.pulser/addons` under the pulser root.
   */
  addons_dir?: string;
  docker?: LocalDocker;
  /**
   * This interface was referenced by `LocalHost`'s JSON-Schema definition
   * via the `patternProperty` "^x-".
   */
  [k: string]: unknown;
}
/**
 * How to reach the Docker engine.
 */
export interface LocalDocker {
  /**
   * Path of the Docker socket. Defaults to `$DOCKER_HOST` (unix://…) or `/var/run/docker.sock`.
   */
  socket?: string;
}
