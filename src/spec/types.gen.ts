/* Generated from schema/*.schema.json by `npm run gen:types`. Do not edit by hand. */

/**
 * The desired state of one Odoo environment. One file per environment: `environments/<name>.yaml`. Keys starting with `x-` are free-form and ignored. Any string may contain `${kv:KEY}` (the trimmed content of `ops/kv/KEY.txt`) and `${secret:NAME}` (from the secrets file or a process variable with a prefix declared in `PULSER_SECRETS_ENV_PREFIX`; names starting with `PULSER_` are refused; never shown in plans, evidence, logs or metrics).
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
  alerts?: Alerts;
  addons?: Addons;
  mail?: Mail;
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
 * Monitoring of the environment: pulser probes the health endpoint (`odoo.health.path`), reads the Odoo log, and evaluates these thresholds itself; the same thresholds are rendered as Prometheus alerting rules (`pulser render alerts`) and a Grafana dashboard (`pulser render dashboard`). Every key has a default, so an environment without this section is monitored with the defaults.
 */
export interface Alerts {
  /**
   * Evaluate, notify and render alerts for this environment. Probes and metrics run either way.
   */
  enabled?: boolean;
  /**
   * Time between two health probes of the running environment (not the rollout probe). Between 100ms and 1h.
   */
  probe_interval?: string;
  /**
   * Uptime the environment is meant to reach over 30 days (shown on the dashboard and the status page; not an alert by itself).
   */
  uptime_objective?: number;
  /**
   * Alert `PulserUptimeLow` when the share of successful probes over `uptime_window` falls below this.
   */
  uptime_min?: number;
  /**
   * Rolling window `uptime_min` is measured over.
   */
  uptime_window?: '1h' | '24h' | '30d';
  /**
   * Alert `PulserErrorRateHigh` when the error rate of the last 5 minutes passes this: (HTTP 5xx requests + ERROR/CRITICAL records outside request handling) / (requests + those records), read from the Odoo log.
   */
  error_rate_max?: number;
  /**
   * Alert `PulserLatencyHigh` when the 95th percentile of the health probe duration over the last 5 minutes passes this.
   */
  latency_p95_max?: string;
  /**
   * Alert `PulserBackupStale` when the last successful backup is older than this.
   */
  backup_age_max?: string;
  /**
   * Alert `PulserDiskFull` when the used share of the host's disk passes this.
   */
  disk_used_max?: number;
  for?: AlertFor;
  webhook?: AlertWebhook;
  /**
   * This interface was referenced by `Alerts`'s JSON-Schema definition
   * via the `patternProperty` "^x-".
   */
  [k: string]: unknown;
}
/**
 * How long a condition must hold before its alert fires (pending → firing, like Prometheus `for`).
 */
export interface AlertFor {
  /**
   * For `PulserEnvDown` (the health probe fails).
   */
  down?: string;
  /**
   * For `PulserUptimeLow`.
   */
  uptime?: string;
  /**
   * For `PulserErrorRateHigh`.
   */
  error_rate?: string;
  /**
   * For `PulserLatencyHigh`.
   */
  latency?: string;
  /**
   * For `PulserBackupStale`.
   */
  backup?: string;
  /**
   * For `PulserDiskFull`.
   */
  disk?: string;
  /**
   * This interface was referenced by `AlertFor`'s JSON-Schema definition
   * via the `patternProperty` "^x-".
   */
  [k: string]: unknown;
}
/**
 * Where pulser posts a notification once when an alert fires and once when it resolves: JSON with a `text` field (Slack-compatible) and structured fields (n8n), signed with `X-Pulser-Signature: sha256=<hex HMAC-SHA256 of the raw body>`.
 */
export interface AlertWebhook {
  /**
   * http(s) URL the notification is POSTed to. May hold a `${secret:NAME}` (Slack webhook URLs carry a token).
   */
  url: string;
  /**
   * HMAC key of the signature; use `${secret:NAME}`. Without it the header is left out.
   */
  secret?: string;
  /**
   * Time after which one delivery attempt counts as failed.
   */
  timeout?: string;
  /**
   * Further attempts after a failed delivery, with exponential backoff.
   */
  retries?: number;
  /**
   * This interface was referenced by `AlertWebhook`'s JSON-Schema definition
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
   * Allow `file://` URLs and absolute paths in `repos`: repositories on the disk of the machine pulser runs on (a single-machine set-up, tests). Off by default, so a URL (one taken from a kv value, say) never points pulser at its own disk unless the environment says so in a reviewed line.
   */
  allow_local_repos?: boolean;
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
   * Clone URL: `https://host/path`, `ssh://[user@]host[:port]/path` or `[user@]host:path`; with `allow_local_repos`, also `file:///path` or an absolute path. Plain `http://` and `git://` (unauthenticated), transport helpers (`name::address`), a leading `-`, whitespace and control characters are refused.
   */
  url: string;
  /**
   * Branch, tag or commit to check out (not starting with `-`).
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
 * Where backups are stored (one sub-folder per environment and backup): a folder on the machine pulser runs on (`type: local`), or a folder on another host over SFTP (`type: sftp`, the host declared in `environments/hosts.yaml` as `ssh` or `digitalocean`; its pinned host key and key are used, and nothing but SFTP runs there).
 */
export interface BackupDestination {
  /**
   * Destination kind: `local` or `sftp`.
   */
  type: 'local' | 'sftp';
  /**
   * For `sftp`: the host holding the folder, as declared in `environments/hosts.yaml`: kind `ssh`, or `digitalocean` with its `address` declared. Restores copy the backup from it into this machine's temporary folder (`$TMPDIR`) first.
   */
  host?: string;
  /**
   * Absolute path of the folder holding the backups (on the SFTP host for `sftp`).
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
export type Host = {
  /**
   * Host kind: `local`, `ssh` or `digitalocean`.
   */
  kind: 'local' | 'ssh' | 'digitalocean';
} & (LocalHost | SshHost | DigitalOceanHost);

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
/**
 * A machine reached over SSH: one persistent connection carries Docker API calls, commands and port forwards.
 */
export interface SshHost {
  /**
   * Host kind.
   */
  kind: 'ssh';
  /**
   * Host name or IP address (not starting with `-`).
   */
  address: string;
  /**
   * SSH port.
   */
  port?: number;
  /**
   * SSH user (must be allowed to use the Docker socket).
   */
  user: string;
  /**
   * Private key (OpenSSH or PEM text) as `${secret:NAME}`.
   */
  key: string;
  /**
   * SHA256 fingerprint of the host's SSH host key, exactly as `ssh-keygen -lf KEY.pub` prints it (`SHA256:…`). A host presenting another key is refused and nothing runs on it.
   */
  hostKey: string;
  docker?: RemoteDocker;
  /**
   * This interface was referenced by `SshHost`'s JSON-Schema definition
   * via the `patternProperty` "^x-".
   */
  [k: string]: unknown;
}
/**
 * How to reach the Docker engine on the host (through the SSH connection).
 */
export interface RemoteDocker {
  /**
   * Path of the Docker socket on the host.
   */
  socket?: string;
}
/**
 * A DigitalOcean droplet, created when missing (with its tags and cloud-init) and then reached over SSH like an `ssh` host. pulser never deletes a droplet.
 */
export interface DigitalOceanHost {
  /**
   * Host kind.
   */
  kind: 'digitalocean';
  /**
   * DigitalOcean API token as `${secret:NAME}`.
   */
  token: string;
  /**
   * Base URL of the DigitalOcean API.
   */
  api?: string;
  droplet: DropletSpec;
  /**
   * Address to reach the droplet at. Defaults to its public IPv4 address.
   */
  address?: string;
  /**
   * SSH port.
   */
  port?: number;
  /**
   * SSH user.
   */
  user: string;
  /**
   * Private key (OpenSSH or PEM text) as `${secret:NAME}`.
   */
  key: string;
  /**
   * SHA256 fingerprint of the host's SSH host key, exactly as `ssh-keygen -lf KEY.pub` prints it (`SHA256:…`). A host presenting another key is refused and nothing runs on it.
   */
  hostKey: string;
  docker?: RemoteDocker;
  /**
   * This interface was referenced by `DigitalOceanHost`'s JSON-Schema definition
   * via the `patternProperty` "^x-".
   */
  [k: string]: unknown;
}
/**
 * The droplet. It is found by name and the `pulser` tag; a droplet is never created twice.
 */
export interface DropletSpec {
  /**
   * Droplet name (also its host name).
   */
  name: string;
  /**
   * Size slug, e.g. `s-2vcpu-4gb`.
   */
  size: string;
  /**
   * Region slug, e.g. `sgp1`.
   */
  region: string;
  /**
   * Image slug, e.g. `debian-12-x64`.
   */
  image: string;
  /**
   * Tags put on the droplet (pulser adds `pulser`).
   */
  tags?: string[];
  /**
   * Ids or fingerprints of SSH keys registered in the DigitalOcean account, installed for root.
   */
  sshKeys?: (string | number)[];
  /**
   * cloud-init user data. Defaults to a cloud-config that installs and starts Docker (`docker.io`).
   */
  userData?: string;
}

/**
 * `ops/templates.yaml`: the only commands `pulser run` executes. Each template is a fixed argv (or read-only SQL) with named, typed parameters, allowed on some tiers, with a timeout. Parameters are substituted into single argv elements (`{{name}}`), never into a shell string.
 */
export interface TemplatesFile {
  /**
   * Templates by name (lower-case letters, digits and dashes).
   */
  templates: {
    [k: string]: RunTemplate;
  };
  /**
   * This interface was referenced by `TemplatesFile`'s JSON-Schema definition
   * via the `patternProperty` "^x-".
   */
  [k: string]: unknown;
}
export interface RunTemplate {
  /**
   * What the template does, shown by `pulser run --list`.
   */
  description: string;
  /**
   * `exec`: argv inside the environment's Odoo container (docker exec). `host`: argv on the host (over SSH for remote hosts). `sql`: read-only SQL on the environment's database. `restart`: restart the Odoo container. `status`: the Odoo container's state. `logs`: the last error records of the Odoo log.
   */
  kind: 'exec' | 'host' | 'sql' | 'restart' | 'status' | 'logs';
  /**
   * argv for `exec` and `host`. An element may hold `{{param}}`, `{{db}}` or `{{env}}`; each stays one literal argument.
   *
   * @minItems 1
   */
  command?: [string, ...string[]];
  /**
   * One read-only statement for `sql`, with `$1`, `$2`… placeholders.
   */
  sql?: string;
  /**
   * Values of `$1`, `$2`… (same `{{…}}` substitution as `command`).
   */
  sqlParams?: string[];
  /**
   * Named parameters, given as `name=value` on the command line.
   */
  params?: {
    [k: string]: RunTemplateParam;
  };
  /**
   * Tiers of the environments the template may run on.
   *
   * @minItems 1
   */
  tiers: [
    'production' | 'staging' | 'development' | 'preview',
    ...('production' | 'staging' | 'development' | 'preview')[]
  ];
  /**
   * Time after which the process is killed (at most 5m).
   */
  timeout?: string;
  /**
   * Bytes of output kept (the rest is dropped and the run marked truncated).
   */
  maxOutput?: number;
  /**
   * This interface was referenced by `RunTemplate`'s JSON-Schema definition
   * via the `patternProperty` "^x-".
   */
  [k: string]: unknown;
}
export interface RunTemplateParam {
  /**
   * `string` or `integer`.
   */
  type: 'string' | 'integer';
  description?: string;
  /**
   * The allowed values.
   *
   * @minItems 1
   */
  enum?: [string | number, ...(string | number)[]];
  /**
   * Regular expression the whole value must match (strings).
   */
  pattern?: string;
  /**
   * Longest string accepted.
   */
  maxLength?: number;
  /**
   * Smallest integer accepted.
   */
  minimum?: number;
  /**
   * Largest integer accepted.
   */
  maximum?: number;
  /**
   * Value when the parameter is not given (otherwise it is required).
   */
  default?: string | number;
}
