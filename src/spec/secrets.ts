// Where `${secret:NAME}` values come from: the pulser process environment first, then a
// dotenv-like secrets file that must live outside the pulser root (which is a git checkout).
import { readFile, realpath } from 'node:fs/promises';
import path from 'node:path';
import { PulserError } from '../errors.ts';

export const SECRET_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
export const SECRETS_FILE_ENV = 'PULSER_SECRETS_FILE';

export function isValidSecretName(name: string): boolean {
  return SECRET_NAME.test(name);
}

export interface SecretSourceOptions {
  /** Secrets file; defaults to `$PULSER_SECRETS_FILE` of `env`. Relative paths resolve against the cwd. */
  file?: string;
  /** Variables looked up first; defaults to `process.env`. */
  env?: Record<string, string | undefined>;
  /** The pulser root: a secrets file inside it is refused. */
  root?: string;
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
  private readonly env: Record<string, string | undefined>;
  private readonly root: string | undefined;
  private loaded: Promise<Map<string, string>> | undefined;

  constructor(opts: SecretSourceOptions = {}) {
    this.env = opts.env ?? process.env;
    const file = opts.file ?? this.env[SECRETS_FILE_ENV];
    this.file = file ? path.resolve(file) : undefined;
    this.root = opts.root;
  }

  /** The same source, guarded against a secrets file inside `root`. */
  forRoot(root: string): SecretSource {
    if (this.root === root) return this;
    return new SecretSource({ file: this.file, env: this.env, root });
  }

  /** Where a secret is looked for, for messages. */
  describe(): string {
    return this.file ? `the pulser process environment or ${this.file}` : `the pulser process environment (no secrets file: ${SECRETS_FILE_ENV} is not set)`;
  }

  /** Reads and checks the secrets file once; throws PULSER_E_SECRETS_FILE. */
  load(): Promise<Map<string, string>> {
    this.loaded ??= this.readFile();
    return this.loaded;
  }

  /** The value of `name`, or undefined when defined nowhere. Throws PULSER_E_SECRETS_FILE. */
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
