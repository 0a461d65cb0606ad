// The catalogue of coded errors. Every code is documented in README.md (a test checks it), and
// every error carries its class, which decides whether the loop retries, requeues or stalls.

export type ErrorClass = 'terminal' | 'transient' | 'waiting';

interface Entry {
  readonly class: ErrorClass;
  /** PascalCase reason shown in status and evidence (Flux-style). */
  readonly reason: string;
  /** One line on what it means, echoed in README. */
  readonly summary: string;
}

export const ERRORS = {
  PULSER_E_SPEC_YAML: { class: 'terminal', reason: 'SpecSyntaxError', summary: 'The file is not well-formed YAML (syntax error, duplicate key, several documents).' },
  PULSER_E_SPEC_INVALID: { class: 'terminal', reason: 'SpecInvalid', summary: 'A value breaks the schema (wrong type, out of range, bad pattern, missing required key).' },
  PULSER_E_SPEC_UNKNOWN_KEY: { class: 'terminal', reason: 'SpecUnknownKey', summary: 'A key the schema does not know (typo?). Free-form keys must start with `x-`.' },
  PULSER_E_SPEC_NAME_MISMATCH: { class: 'terminal', reason: 'SpecNameMismatch', summary: '`name` differs from the file name.' },
  PULSER_E_SPEC_CONFLICT: { class: 'terminal', reason: 'SpecConflict', summary: 'Two environments claim the same host port, container name or database on one host.' },
  PULSER_E_KV_MISSING: { class: 'terminal', reason: 'KvMissing', summary: '`${kv:KEY}` refers to `ops/kv/KEY.txt`, which does not exist.' },
  PULSER_E_KV_KEY_INVALID: { class: 'terminal', reason: 'KvKeyInvalid', summary: 'A kv key is empty, too long, or contains `/`, `..`, NUL, control or non-ASCII characters.' },
  PULSER_E_KV_VALUE_INVALID: { class: 'terminal', reason: 'KvValueInvalid', summary: 'A kv value is too large, spans several lines, or contains NUL or control characters.' },
  PULSER_E_REF_SYNTAX: { class: 'terminal', reason: 'ReferenceSyntax', summary: 'A `${…}` reference is malformed or of an unknown kind (only `kv:` and `secret:` exist).' },
  PULSER_E_SECRET_MISSING: { class: 'terminal', reason: 'SecretMissing', summary: '`${secret:NAME}` is neither in the secrets file nor in a process variable whose name starts with a prefix declared in `PULSER_SECRETS_ENV_PREFIX`.' },
  PULSER_E_SECRET_RESERVED: { class: 'terminal', reason: 'SecretReserved', summary: '`${secret:PULSER_…}` names one of pulser\'s own credentials (dispatch and webhook secrets, the GitHub App key…), which a spec can never read.' },
  PULSER_E_NOT_OBSERVED: { class: 'terminal', reason: 'NotObserved', summary: 'An untrusted plan (a pull request, `plan --untrusted`) would connect to a host, API, database or repository the tracked branch does not declare: it is named in the plan and never contacted.' },
  PULSER_E_SECRETS_FILE: { class: 'terminal', reason: 'SecretsFileInvalid', summary: 'The secrets file cannot be read or has a malformed line.' },
  PULSER_E_HOST_UNKNOWN: { class: 'terminal', reason: 'HostUnknown', summary: 'The environment names a host that `environments/hosts.yaml` does not declare.' },
  PULSER_E_ENV_UNKNOWN: { class: 'terminal', reason: 'EnvironmentUnknown', summary: 'The command names an environment that has no file in `environments/`.' },
  PULSER_E_DOCKER_UNREACHABLE: { class: 'transient', reason: 'DockerUnreachable', summary: 'The Docker engine of the host does not answer (socket missing, engine down). Retried with backoff.' },
  PULSER_E_DOCKER_API: { class: 'transient', reason: 'DockerApiError', summary: 'The Docker engine refused or failed a call. Retried with backoff.' },
  PULSER_E_IMAGE_NOT_FOUND: { class: 'terminal', reason: 'ImageNotFound', summary: 'The image is not on the host and the registry does not have it (or cannot be reached).' },
  PULSER_E_NAME_CONFLICT: { class: 'terminal', reason: 'NameConflict', summary: 'A container without pulser labels holds the name pulser needs. pulser never touches it: rename or remove it by hand.' },
  PULSER_E_HEALTH_CHECK_FAILED: { class: 'terminal', reason: 'HealthCheckFailed', summary: 'The new container never passed its health probe; the previous container was put back. Not retried until the spec changes (or `pulser apply`).' },
  PULSER_E_CONTAINER_EXITED: { class: 'terminal', reason: 'ContainerExited', summary: 'The new container exited while it was being probed; the previous container was put back.' },
  PULSER_E_ROLLBACK_FAILED: { class: 'terminal', reason: 'RollbackFailed', summary: 'A failed rollout could not put the previous container back. Needs a person.' },
  PULSER_E_DEPENDENCY_FAILED: { class: 'terminal', reason: 'DependencyFailed', summary: 'A change was skipped because a change it depends on failed in the same pass.' },
  PULSER_E_LEASE_HELD: { class: 'transient', reason: 'LeaseHeld', summary: 'Another process (named with its pid, host, command and start) is changing the environment; the daemon retries, the CLI waits (or fails with `--no-wait`).' },
  PULSER_E_STALLED: { class: 'terminal', reason: 'Stalled', summary: 'The last pass failed terminally for this exact desired state; pulser waits for a new spec or an explicit `pulser apply`.' },
  PULSER_E_PASS_INTERRUPTED: { class: 'transient', reason: 'PassInterrupted', summary: 'A pass was cut short (pulser was killed). Reported on restart; the next pass finishes the work.' },
  PULSER_E_DRIFT_REMAINS: { class: 'waiting', reason: 'DriftRemains', summary: 'After applying, observing again still found differences. Requeued.' },
  PULSER_E_TIMEOUT: { class: 'transient', reason: 'Timeout', summary: 'A remote call did not answer within its timeout.' },
  PULSER_E_ARGUMENT_UNSAFE: { class: 'terminal', reason: 'UnsafeArgument', summary: 'A value (database, module, ref, program name) would reach a command where the program reads it as an option (it starts with `-`) or as several words; refused before anything ran.' },
  // PostgreSQL
  PULSER_E_DB_UNREACHABLE: { class: 'transient', reason: 'DatabaseUnreachable', summary: 'The PostgreSQL server of the environment does not answer or dropped the connection. Retried with backoff.' },
  PULSER_E_DB_AUTH: { class: 'terminal', reason: 'DatabaseAuthFailed', summary: 'PostgreSQL refused the user or password the spec gives.' },
  PULSER_E_DB_MISSING: { class: 'terminal', reason: 'DatabaseMissing', summary: 'The database the spec names does not exist on the server.' },
  PULSER_E_DB_QUERY: { class: 'terminal', reason: 'DatabaseQueryFailed', summary: 'PostgreSQL rejected a statement (missing table, constraint, permission); the message and SQLSTATE are in the evidence.' },
  // Addon modules: manifests, dependency resolution, catalogue
  PULSER_E_MANIFEST_SYNTAX: { class: 'terminal', reason: 'ManifestSyntaxError', summary: 'A `__manifest__.py` (or `__openerp__.py`) is not one plain Python literal (a call, a name, an expression, two statements, unbalanced brackets, a bad string escape); the error gives file:line:col.' },
  PULSER_E_MANIFEST_INVALID: { class: 'terminal', reason: 'ManifestInvalid', summary: 'A manifest is a literal but not a dict, or a known key has the wrong type (`depends` not a list of strings, `installable` not a boolean, …).' },
  PULSER_E_MODULE_MISSING: { class: 'terminal', reason: 'ModuleMissing', summary: 'A requested module or a dependency is in no scanned addons folder and not a core module; the error names who needs it and the repositories that may provide it.' },
  PULSER_E_MODULE_CYCLE: { class: 'terminal', reason: 'ModuleCycle', summary: 'Module dependencies form a cycle; the error gives its path (`a → b → c → a`).' },
  PULSER_E_MODULE_AMBIGUOUS: { class: 'terminal', reason: 'ModuleAmbiguous', summary: 'Two addon repositories provide a module of the same name; the error names both. Remove one from the environment.' },
  PULSER_E_MODULE_NOT_INSTALLABLE: { class: 'terminal', reason: 'ModuleNotInstallable', summary: 'A module needed by the request declares `installable: False` in its manifest.' },
  PULSER_E_CATALOGUE_INVALID: { class: 'terminal', reason: 'CatalogueInvalid', summary: '`ops/addons-catalogue.yaml` or an `oca_dependencies.txt` file is malformed; the error gives file:line.' },
  // Mail catcher
  PULSER_E_MAIL_CATCHER: { class: 'transient', reason: 'MailCatcherUnavailable', summary: 'The built-in mail catcher cannot listen on its address (port taken, address not on this machine) or its store cannot be written.' },
  PULSER_E_MAIL_NOT_FOUND: { class: 'terminal', reason: 'MailNotFound', summary: 'No caught message has this id (it may have been evicted by the retention limits).' },
  // Odoo: addon repositories, module install/upgrade, mail servers
  PULSER_E_GIT_REF: { class: 'terminal', reason: 'GitRefNotFound', summary: 'The `ref` of an addon repository is no branch, tag or commit of that repository.' },
  PULSER_E_REPO_URL: { class: 'terminal', reason: 'RepoUrlRefused', summary: 'An addon repository URL is not one pulser fetches: only `https://`, `ssh://` and `user@host:path` (plus `file://` and absolute paths with `addons.allow_local_repos`); never a leading `-`, a transport helper (`ext::…`), whitespace or a control character. Refused when the spec is loaded (file:line:col) and again before git runs.' },
  PULSER_E_ODOO_RUN_FAILED: { class: 'terminal', reason: 'OdooRunFailed', summary: 'An Odoo command (`-i`/`-u … --stop-after-init`) exited non-zero or left the module uninstalled; Odoo\'s error lines are in status and evidence. The serving container keeps serving.' },
  PULSER_E_MAIL_POLICY: { class: 'terminal', reason: 'MailPolicyViolation', summary: 'A non-production environment set to `mail.mode: deliver`, or production set to `catch`/`block` without `mail.override: true`.' },
  PULSER_E_MAIL_CATCHER_OFF: { class: 'waiting', reason: 'MailCatcherOff', summary: '`mail.mode: catch` but this pulser runs no mail catcher to route the mail to.' },
  // Backups, restores and staging refreshes
  PULSER_E_BACKUP_POLICY: { class: 'terminal', reason: 'BackupPolicyInvalid', summary: 'The `backup` section cannot be used: a cron schedule that does not parse, or an unknown time zone.' },
  PULSER_E_BACKUP_FAILED: { class: 'transient', reason: 'BackupFailed', summary: 'Taking a backup failed (pg_dump exited with an error, the connection was lost, the filestore could not be read). Nothing partial is kept; older backups are untouched.' },
  PULSER_E_BACKUP_NO_SPACE: { class: 'transient', reason: 'BackupNoSpace', summary: 'The backup destination ran out of space. The partial backup was removed; older backups are untouched.' },
  PULSER_E_BACKUP_DESTINATION: { class: 'transient', reason: 'BackupDestinationError', summary: 'The backup destination cannot be read or written (missing folder, permissions).' },
  PULSER_E_BACKUP_NOT_FOUND: { class: 'terminal', reason: 'BackupNotFound', summary: 'No complete backup (a folder with its manifest) has that id, or the environment has none yet.' },
  PULSER_E_BACKUP_CORRUPT: { class: 'terminal', reason: 'BackupCorrupt', summary: 'A backup file does not match the size or sha256 its manifest records. It is never restored.' },
  PULSER_E_RESTORE_FAILED: { class: 'terminal', reason: 'RestoreFailed', summary: 'pg_restore or the filestore copy failed; the environment keeps its previous database and filestore.' },
  PULSER_E_RESTORE_PRODUCTION: { class: 'terminal', reason: 'RestoreOverProduction', summary: 'Restoring over a production environment needs `--force-production`.' },
  PULSER_E_DRILL_MISMATCH: { class: 'terminal', reason: 'RestoreDrillMismatch', summary: 'A restore drill restored the backup, but its row counts differ from the manifest.' },
  PULSER_E_STAGING_PRODUCTION: { class: 'terminal', reason: 'StagingRefreshOfProduction', summary: 'A production environment declares `staging`: production is never overwritten by a refresh.' },
  PULSER_E_STAGING_SOURCE: { class: 'terminal', reason: 'StagingSourceUnavailable', summary: '`staging.refresh_from` names an unknown environment, itself, or one without a backup policy or backup.' },
  PULSER_E_STAGING_VERIFY: { class: 'terminal', reason: 'StagingNotNeutralized', summary: 'After a refresh, the checks found the database not neutralized (an active mail server or cron, a missing flag, an unanonymized value).' },
  PULSER_E_USAGE: { class: 'terminal', reason: 'Usage', summary: 'The command line is wrong (unknown command or flag, missing argument).' },
  // Remote hosts (SSH, DigitalOcean), logs and the shell proxy
  PULSER_E_SSH_HOST_KEY: { class: 'terminal', reason: 'HostKeyMismatch', summary: 'The host presented an SSH host key whose SHA256 fingerprint differs from the pinned `hostKey`. Nothing is run on it until the pin or the host is fixed.' },
  PULSER_E_SSH_AUTH: { class: 'terminal', reason: 'SshAuthFailed', summary: 'The host refused the SSH key (or the key secret is not a usable private key).' },
  PULSER_E_SSH_UNREACHABLE: { class: 'transient', reason: 'SshUnreachable', summary: 'The SSH connection could not be made or was lost (refused, timed out, reset). Reconnected with backoff on the next call.' },
  PULSER_E_SSH_CHANNEL: { class: 'transient', reason: 'SshChannelFailed', summary: 'The host refused to open a channel (command, port forward or Docker socket forward), e.g. the socket does not exist.' },
  PULSER_E_DO_AUTH: { class: 'terminal', reason: 'DigitalOceanUnauthorized', summary: 'DigitalOcean refused the API token (401/403).' },
  PULSER_E_DO_INVALID: { class: 'terminal', reason: 'DigitalOceanInvalidRequest', summary: 'DigitalOcean refused the request as invalid (404 on a route, 422: unknown size, region or image…).' },
  PULSER_E_DO_RATE_LIMITED: { class: 'transient', reason: 'DigitalOceanRateLimited', summary: 'DigitalOcean answered 429; retried after its `ratelimit-reset` / `retry-after`.' },
  PULSER_E_DO_SERVER: { class: 'transient', reason: 'DigitalOceanServerError', summary: 'DigitalOcean answered 5xx or did not answer in time. Retried with backoff.' },
  PULSER_E_DROPLET_NOT_READY: { class: 'waiting', reason: 'DropletNotReady', summary: 'The droplet exists but is not active or not reachable over SSH yet. Requeued.' },
  PULSER_E_DROPLET_AMBIGUOUS: { class: 'terminal', reason: 'DropletAmbiguous', summary: 'Several droplets carry the declared name and the pulser tag; pulser will not guess which one is the host.' },
  PULSER_E_LOGS_QUERY: { class: 'terminal', reason: 'LogsQueryInvalid', summary: 'A log query is invalid (bad `--since`/`--until` time, bad `--grep` pattern, `-n` out of range, unknown service).' },
  PULSER_E_TEMPLATES_INVALID: { class: 'terminal', reason: 'TemplatesInvalid', summary: '`ops/templates.yaml` is not valid YAML or breaks its schema (reported as file:line:col).' },
  PULSER_E_TEMPLATE_UNKNOWN: { class: 'terminal', reason: 'TemplateUnknown', summary: '`pulser run` names a template that `ops/templates.yaml` does not declare.' },
  PULSER_E_TEMPLATE_PARAM: { class: 'terminal', reason: 'TemplateParameterInvalid', summary: 'A template parameter is unknown, missing, repeated, or breaks its type (enum, pattern, integer range).' },
  PULSER_E_TEMPLATE_TIER: { class: 'terminal', reason: 'TemplateNotAllowed', summary: 'The template is not allowed on the tier of the environment (production allows fewer).' },
  PULSER_E_TEMPLATE_TIMEOUT: { class: 'transient', reason: 'TemplateTimedOut', summary: 'A template ran longer than its timeout; the process was killed.' },
  PULSER_E_TEMPLATE_FAILED: { class: 'terminal', reason: 'TemplateFailed', summary: 'A template ran and exited non-zero (its output and exit code are in the run record).' },
  PULSER_E_INTERNAL: { class: 'terminal', reason: 'InternalError', summary: 'An unexpected error inside pulser. Please report it with the evidence pack.' },
  // alerts
  PULSER_E_ALERT_WEBHOOK: { class: 'transient', reason: 'AlertWebhookFailed', summary: 'An alert notification could not be delivered to `alerts.webhook.url` after its retries; pulser tries again 30 s later and never drops it.' },
  // GitOps intake: the tracked git source, signed dispatches, GitHub webhooks and the GitHub App
  PULSER_E_GIT: { class: 'transient', reason: 'GitFailed', summary: 'A git command failed or timed out (remote unreachable, push refused, clone, fetch or checkout of an addon repository); its stderr is in the evidence. Retried with backoff.' },
  PULSER_E_GIT_DIVERGED: { class: 'terminal', reason: 'GitDiverged', summary: 'The tracked branch no longer contains the commit pulser applied last (history rewritten). pulser only fast-forwards, never forces: fix the branch or the clone by hand.' },
  PULSER_E_POLICY_INVALID: { class: 'terminal', reason: 'PolicyInvalid', summary: '`ops/policy.yaml` is not valid YAML or breaks its schema; dispatches are refused until it is fixed.' },
  PULSER_E_WEBHOOK_SIGNATURE: { class: 'terminal', reason: 'WebhookSignatureInvalid', summary: 'A webhook or dispatch has no signature, a malformed one, or one that does not match its body (HTTP 401).' },
  PULSER_E_WEBHOOK_REPLAY: { class: 'terminal', reason: 'WebhookReplayed', summary: 'A delivery id (or, without one, a signature) that was already accepted: replays are refused (HTTP 409).' },
  PULSER_E_WEBHOOK_STALE: { class: 'terminal', reason: 'WebhookStale', summary: 'The signed timestamp of a dispatch is malformed or outside the freshness window (HTTP 401).' },
  PULSER_E_WEBHOOK_PAYLOAD: { class: 'terminal', reason: 'WebhookPayloadInvalid', summary: 'The body is not JSON of the expected shape, is too large, or has the wrong content type (HTTP 400, 413, 415).' },
  PULSER_E_WEBHOOK_DISABLED: { class: 'terminal', reason: 'WebhookDisabled', summary: 'The route needs a git source and its HMAC secret (`PULSER_DISPATCH_SECRET`, `PULSER_GITHUB_WEBHOOK_SECRET`), and one is missing (HTTP 503).' },
  PULSER_E_DISPATCH_INVALID: { class: 'terminal', reason: 'DispatchInvalid', summary: 'A dispatch names an invalid branch or commit message (HTTP 422; bad keys and values use the kv codes).' },
  PULSER_E_GITHUB_API: { class: 'transient', reason: 'GitHubApiError', summary: 'The GitHub API refused or failed a call (pull request, comment, status, deployment).' },
} as const satisfies Record<string, Entry>;

export type ErrorCode = keyof typeof ERRORS;

export interface SourceLocation {
  file: string;
  line: number;
  col: number;
}

export class PulserError extends Error {
  readonly code: ErrorCode;
  readonly class: ErrorClass;
  readonly reason: string;
  readonly location?: SourceLocation;
  /** Structured details (already free of secrets) for status and evidence. */
  readonly details?: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, opts: { location?: SourceLocation; details?: Record<string, unknown>; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'PulserError';
    this.code = code;
    this.class = ERRORS[code].class;
    this.reason = ERRORS[code].reason;
    this.location = opts.location;
    this.details = opts.details;
  }

  /** `environments/x.yaml:14:7 odoo.workers: must be integer` when located, else the message. */
  toString(): string {
    const where = this.location ? `${this.location.file}:${this.location.line}:${this.location.col} ` : '';
    return `${where}${this.message}`;
  }

  toJSON(): ErrorRecord {
    return {
      code: this.code,
      class: this.class,
      reason: this.reason,
      message: this.message,
      ...(this.location ? { location: this.location } : {}),
      ...(this.details ? { details: this.details } : {}),
    };
  }
}

export interface ErrorRecord {
  code: ErrorCode;
  class: ErrorClass;
  reason: string;
  message: string;
  location?: SourceLocation;
  details?: Record<string, unknown>;
}

/** Wraps anything thrown into a PulserError, keeping coded errors as they are. */
export function asPulserError(err: unknown, fallback: ErrorCode = 'PULSER_E_INTERNAL'): PulserError {
  if (err instanceof PulserError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new PulserError(fallback, message, { cause: err });
}
