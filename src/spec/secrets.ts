// Where `${secret:NAME}` values come from: a dotenv-like secrets file that must live outside the
// pulser root (which is a git checkout), and process variables whose names start with a declared
// prefix. Names in pulser's own namespace (`PULSER_…`: dispatch and webhook secrets, the GitHub App
// key…) are pulser's credentials, never a spec's. Digests of secret values are keyed with a
// per-installation key, so a digest shown in evidence cannot be used to test a guess offline.
import { createHmac, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { readFile, realpath } from 'node:fs/promises';
import path from 'node:path';
import { PulserError } from '../errors.ts';

export const SECRET_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
export const SECRETS_FILE_ENV = 'PULSER_SECRETS_FILE';
/** Comma-separated prefixes of the process variables a spec may read as secrets (`ODOO_,SMTP_`). */
export const SECRETS_ENV_PREFIX_ENV = 'PULSER_SECRETS_ENV_PREFIX';
/** pulser's own namespace: never resolvable from a spec. */
export const RESERVED_SECRET_PREFIX = 'PULSER_';
const DIGEST_KEY_FILE = 'secret-digest.key';
/** Digests of sources given no installation key agree within one process, and with no other. */
const PROCESS_DIGEST_KEY = randomBytes(32);

export function isReservedSecretName(name: string): boolean {
  return name.toUpperCase().startsWith(RESERVED_SECRET_PREFIX);
}

/** Parses `PULSER_SECRETS_ENV_PREFIX`: each prefix a valid name start, none in pulser's namespace. */
export function parseEnvPrefixes(text: string | undefined): string[] {
  if (text === undefined) return [];
  const out: string[] = [];
  for (const raw of text.split(',')) {
    const p = raw.trim();
    if (p === '') continue;
    if (!/^[A-Za-z_][A-Za-z0-9_]{0,63}$/.test(p)) {
      throw new PulserError('PULSER_E_SECRETS_FILE', `${SECRETS_ENV_PREFIX_ENV}: "${p.slice(0, 64)}" is no variable name prefix (letters, digits and _, not starting with a digit)`);
    }
    if (isReservedSecretName(p) || RESERVED_SECRET_PREFIX.startsWith(p.toUpperCase())) {
      throw new PulserError('PULSER_E_SECRETS_FILE', `${SECRETS_ENV_PREFIX_ENV}: "${p}" would expose pulser's own ${RESERVED_SECRET_PREFIX}… variables to specs`);
    }
    out.push(p);
  }
  return out;
}

/**
 * The per-installation key of secret digests, kept in the state folder (created on first use,
 * readable by its owner only). Every process sharing the state folder shows the same digests.
 * Synchronous: read once where a process is put together.
 */
export function installationDigestKey(stateDir: string): Buffer {
  const file = path.join(stateDir, DIGEST_KEY_FILE);
  const fail = (what: string, err: unknown) =>
    new PulserError('PULSER_E_SECRETS_FILE', `${file} cannot be ${what} (${(err as NodeJS.ErrnoException).code ?? 'error'})`, { cause: err });
  try {
    mkdirSync(stateDir, { recursive: true });
    // 'wx': two processes starting at once agree on whichever key was written first.
    writeFileSync(file, randomBytes(32).toString('hex') + '\n', { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw fail('written', err);
  }
  let key: Buffer;
  try {
    key = Buffer.from(readFileSync(file, 'utf8').trim(), 'hex');
  } catch (err) {
    throw fail('read', err);
  }
  if (key.length < 32) throw new PulserError('PULSER_E_SECRETS_FILE', `${file} holds no key of 32 bytes in hex: remove it and a new one is made (digests shown before change once)`);
  return key;
}

export function isValidSecretName(name: string): boolean {
  return SECRET_NAME.test(name);
}

export interface SecretSourceOptions {
  /** Secrets file; defaults to `$PULSER_SECRETS_FILE` of `env`. Relative paths resolve against the cwd. */
  file?: string;
  /** Variables looked up first; defaults to `process.env`. */
  env?: Record<string, string | undefined>;
  /**
   * Prefixes of the variables of `env` a spec may read. Defaults to `$PULSER_SECRETS_ENV_PREFIX`
   * when `env` is the process environment (none declared: no variable is read), and to every
   * name when the caller hands over its own `env` map.
   */
  envPrefixes?: string[];
  /** The pulser root: a secrets file inside it is refused. */
  root?: string;
  /** Key of the secret digests (see installationDigestKey); one random key per process when absent. */
  digestKey?: Buffer;
}

/**
 * Parses `NAME=value` lines. Values are taken literally (no inline comments, no escapes) so that
 * a password containing `#` or `\` survives; one pair of matching surrounding quotes is removed.
 * Messages name the line, never its content.
 */
export function parseSecretsFile(text: string, file: string): Map<string, string> {
  const out = new Map<string, string>();
  const lines = text.split('\n');
  const bad = (n: number, why: string) =>
    new PulserError('PULSER_E_SECRETS_FILE', `secrets file ${file}:${n}: ${why}`, { location: { file, line: n, col: 1 } });
  for (let i = 0; i < lines.length; i++) {
    const n = i + 1;
    const line = lines[i].replace(/\r$/, '');
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    const body = trimmed.startsWith('export ') ? trimmed.slice('export '.length).trimStart() : trimmed;
    const eq = body.indexOf('=');
    if (eq < 0) throw bad(n, 'expected NAME=value');
    const name = body.slice(0, eq).trim();
    if (!isValidSecretName(name)) throw bad(n, 'invalid name (letters, digits and _, not starting with a digit, at most 128)');
    let value = body.slice(eq + 1).trim();
    const q = value[0];
    if (q === '"' || q === "'") {
      if (value.length < 2 || value[value.length - 1] !== q) throw bad(n, `${name}: unbalanced ${q === '"' ? 'double' : 'single'} quote`);
      value = value.slice(1, -1);
    }
    if (value.includes('\0')) throw bad(n, `${name}: value contains a NUL character`);
    if (out.has(name)) throw bad(n, `${name} is defined twice`);
    out.set(name, value);
  }
  return out;
}

function isInside(parent: string, child: string): boolean {
  const rel = path.relative(parent, child);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

export class SecretSource {
  readonly file: string | undefined;
  readonly envPrefixes: readonly string[];
  private readonly env: Record<string, string | undefined>;
  private readonly root: string | undefined;
  private readonly digestKey: Buffer;
  private loaded: Promise<Map<string, string>> | undefined;

  constructor(opts: SecretSourceOptions = {}) {
    this.env = opts.env ?? process.env;
    this.envPrefixes = opts.envPrefixes ?? (opts.env ? [''] : parseEnvPrefixes(this.env[SECRETS_ENV_PREFIX_ENV]));
    const file = opts.file ?? this.env[SECRETS_FILE_ENV];
    this.file = file ? path.resolve(file) : undefined;
    this.root = opts.root;
    this.digestKey = opts.digestKey ?? PROCESS_DIGEST_KEY;
  }

  /** The same source, guarded against a secrets file inside `root`. */
  forRoot(root: string): SecretSource {
    if (this.root === root) return this;
    return new SecretSource({ file: this.file, env: this.env, envPrefixes: [...this.envPrefixes], root, digestKey: this.digestKey });
  }

  /** The same source with digests keyed by the installation's key. */
  withDigestKey(digestKey: Buffer): SecretSource {
    return new SecretSource({ file: this.file, env: this.env, envPrefixes: [...this.envPrefixes], root: this.root, digestKey });
  }

  /** Where a spec's secret is looked for, for messages. */
  describe(): string {
    const vars =
      this.envPrefixes.length === 0
        ? `process variables (none: ${SECRETS_ENV_PREFIX_ENV} declares no prefix)`
        : this.envPrefixes.includes('')
          ? 'the pulser process environment'
          : `process variables starting with ${this.envPrefixes.join(', ')}`;
    return this.file ? `${this.file} or ${vars}` : `${vars} (no secrets file: ${SECRETS_FILE_ENV} is not set)`;
  }

  /**
   * A spec's `${secret:NAME}`: only from the secrets file or a variable with a declared prefix,
   * never a name of pulser's own namespace (PULSER_E_SECRET_RESERVED). Throws PULSER_E_SECRETS_FILE.
   */
  async forSpec(name: string): Promise<string | undefined> {
    if (!isValidSecretName(name)) return undefined;
    if (isReservedSecretName(name)) {
      throw new PulserError('PULSER_E_SECRET_RESERVED', `\${secret:${name}} names one of pulser's own credentials (the ${RESERVED_SECRET_PREFIX}… namespace), which a spec can never read`);
    }
    if (this.envPrefixes.some((p) => name.startsWith(p))) {
      const fromEnv = this.env[name];
      if (fromEnv !== undefined) return fromEnv;
    }
    if (!this.file) return undefined;
    return (await this.load()).get(name);
  }

  /** Keyed digest of a value: tells two values apart, proves nothing to whoever lacks the key. */
  digest(scope: string, value: string): string {
    return createHmac('sha256', this.digestKey).update(scope).update('\0').update(value).digest('hex').slice(0, 12);
  }

  /** Reads and checks the secrets file once; throws PULSER_E_SECRETS_FILE. */
  load(): Promise<Map<string, string>> {
    this.loaded ??= this.readFile();
    return this.loaded;
  }

  /**
   * pulser's own credentials (dispatch secret, GitHub App key, host keys of hosts.yaml): the
   * process environment first, then the secrets file. Never reached by an environment spec.
   * Throws PULSER_E_SECRETS_FILE.
   */
  async get(name: string): Promise<string | undefined> {
    if (!isValidSecretName(name)) return undefined;
    const fromEnv = this.env[name];
    if (fromEnv !== undefined) return fromEnv;
    if (!this.file) return undefined;
    return (await this.load()).get(name);
  }

  private async readFile(): Promise<Map<string, string>> {
    const file = this.file;
    if (!file) return new Map();
    let real: string;
    try {
      real = await realpath(file);
    } catch (err) {
      throw new PulserError('PULSER_E_SECRETS_FILE', `secrets file ${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`, { cause: err });
    }
    if (this.root !== undefined) {
      const realRoot = await realpath(this.root).catch(() => path.resolve(this.root as string));
      if (isInside(realRoot, real)) {
        throw new PulserError('PULSER_E_SECRETS_FILE', `secrets file ${file} is inside the pulser root ${this.root}, so it would be committed to git: move it outside`);
      }
    }
    let text: string;
    try {
      text = await readFile(real, 'utf8');
    } catch (err) {
      throw new PulserError('PULSER_E_SECRETS_FILE', `secrets file ${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`, { cause: err });
    }
    return parseSecretsFile(text, file);
  }
}
