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
  backup?: Backup;
  staging?: Staging;
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
   * This interface was referenced by `Database`'s JSON-Schema definition
   * via the `patternProperty` "^x-".
   */
  [k: string]: unknown;
}
/**
 * Scheduled backups of the database (pg_dump, custom format) and the filestore, with grandfather-father-son retention and restore drills. Only backups pulser made (a folder with its manifest) are ever deleted.
 */
export interface Backup {
  /**
   * When a backup is due: a five-field cron expression (minute hour day-of-month month day-of-week), read in `timezone`. A backup is taken when the latest scheduled time has no backup after it.
   */
  schedule: string;
  /**
   * IANA time zone of `schedule` and of the retention days, weeks and months, for example `Europe/Berlin`.
   */
  timezone?: string;
  retention?: Retention;
  /**
   * Also back up the Odoo filestore (`/var/lib/odoo/filestore/<database>` of the Odoo container, read through the Docker API).
   */
  filestore?: boolean;
  destination: BackupDestination;
  /**
   * How often the newest backup is restored into a scratch database and compared with its manifest (row counts, checksums).
   */
  verify?: 'daily' | 'weekly' | 'never';
  /**
   * This interface was referenced by `Backup`'s JSON-Schema definition
   * via the `patternProperty` "^x-".
   */
  [k: string]: unknown;
}
/**
 * How many backups are kept: the newest of each of the last `daily` local days, `weekly` ISO weeks and `monthly` months (in `timezone`). The newest backup is always kept.
 */
export interface Retention {
  /**
   * Days for which the newest backup of the day is kept.
   */
  daily?: number;
  /**
   * ISO weeks for which the newest backup of the week is kept.
   */
  weekly?: number;
  /**
   * Months for which the newest backup of the month is kept.
   */
  monthly?: number;
  /**
   * This interface was referenced by `Retention`'s JSON-Schema definition
   * via the `patternProperty` "^x-".
   */
  [k: string]: unknown;
}
/**
 * Where backups are stored: a folder on the machine pulser runs on (one sub-folder per environment and backup).
 */
export interface BackupDestination {
  /**
   * Destination kind.
   */
  type: 'local';
  /**
   * Absolute path of the folder holding the backups.
   */
  path: string;
  /**
   * This interface was referenced by `BackupDestination`'s JSON-Schema definition
   * via the `patternProperty` "^x-".
   */
  [k: string]: unknown;
}
/**
 * Refresh this environment from another environment's newest backup, then neutralize it like `odoo-bin neutralize` (outgoing mail servers off, crons off except the autovacuum, `database.is_neutralized`, a new `database.uuid`, this environment's `web.base.url`) and anonymize the declared columns. Never allowed on a production environment.
 */
export interface Staging {
  /**
   * Name of the environment whose newest backup is restored here.
   */
  refresh_from: string;
  /**
   * Any value, usually `${kv:staging.refresh}`: when it differs from the value of the last refresh, a refresh runs.
   */
  refresh: string;
  /**
   * `web.base.url` written into the refreshed database. Defaults to `http://<odoo.bind>:<odoo.port>`.
   */
  base_url?: string;
  /**
   * Columns rewritten after each refresh, deterministically (the same input gives the same output).
   *
   * @maxItems 200
   */
  anonymize?: AnonymizeRule[];
  /**
   * This interface was referenced by `Staging`'s JSON-Schema definition
   * via the `patternProperty` "^x-".
   */
  [k: string]: unknown;
}
export interface AnonymizeRule {
  /**
   * Table name.
   */
  table: string;
  /**
   * Column name.
   */
  column: string;
  /**
   * `hash-email`: `<hash>@example.invalid`; `hash`: a hex digest of the value; `blank`: NULL; `fake-name`: a name picked from a fixed list by a hash of the row id.
   */
  with: 'hash-email' | 'hash' | 'blank' | 'fake-name';
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
