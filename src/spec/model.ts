// The loaded, validated desired state that the rest of pulser works with. Nothing outside
// src/spec reads raw YAML: it gets a DesiredEnv with defaults applied and references resolved.
import type { Environment, Host } from './types.gen.ts';
import type { PulserError } from '../errors.ts';

/** An environment spec after defaults: every optional section the engine relies on is present. */
export interface EnvironmentSpec extends Environment {
  sync: Required<NonNullable<Environment['sync']>>;
  odoo: Environment['odoo'] & {
    workers: number;
    bind: string;
    config: Record<string, string | number | boolean>;
    env: Record<string, string>;
    health: Required<NonNullable<Environment['odoo']['health']>>;
  };
  database: Environment['database'] & { port: number };
}

export interface DesiredEnv {
  name: string;
  /** Path relative to the pulser root, e.g. `environments/staging.yaml`. */
  file: string;
  tier: Environment['tier'];
  hostName: string;
  host: Host;
  /** Fully resolved spec (kv and secrets substituted, defaults applied). Holds secret values: never print it. */
  spec: EnvironmentSpec;
  /** The same spec with every value that came from a secret replaced by its `${secret:…}` text. Safe to show. */
  masked: EnvironmentSpec;
  /** Dotted paths (e.g. `odoo.env.SMTP_PASSWORD`) of values that contain a secret. */
  secretPaths: string[];
  /** Keyed digest of each value of `secretPaths` (SecretSource.digest): shows a change, never the value. */
  secretDigests: Record<string, string>;
  /** sha256 of the spec with secrets as digests: changes when anything desired changes, secrets included. */
  specHash: string;
  /** Loaded from a spec nobody reviewed (a pull request): `spec` holds secret references, not values. */
  untrusted: boolean;
  /** kv keys the spec referenced, with the values read (kv values are not secret). */
  kvRefs: Record<string, string>;
}

export type EnvLoad =
  | { name: string; file: string; ok: true; desired: DesiredEnv }
  | { name: string; file: string; ok: false; errors: PulserError[] };

export interface SpecSnapshot {
  /** Root folder the paths are relative to. */
  root: string;
  hosts: Map<string, Host>;
  /** Errors of `environments/hosts.yaml` itself (then every environment is invalid too). */
  hostErrors: PulserError[];
  envs: Map<string, EnvLoad>;
  /** Every secret value resolved while loading: the redactor masks them wherever they appear. */
  secretValues: Set<string>;
  /** Secrets a load with `unsetSecrets: 'notice'` found unset: what apply and the daemon would refuse. */
  notices?: PulserError[];
}
