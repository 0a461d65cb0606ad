// The command line and configuration file of the stand-in Odoo, read the way odoo-bin reads them:
// `odoo [neutralize] -c CONF -d DB -i a,b -u c --stop-after-init [--test-enable]`, and odoo.conf's
// [options] section, where command-line values win over the file.

export interface StandInArgs {
  command: 'server' | 'neutralize' | 'version';
  config: string;
  database: string | null;
  init: string[];
  update: string[];
  stopAfterInit: boolean;
  testEnable: boolean;
  /** `--db_host`, `--http-port`… given on the command line (they override odoo.conf) */
  overrides: Record<string, string>;
}

export class UsageError extends Error {
  override name = 'UsageError';
}

const LONG_WITH_VALUE: Record<string, string> = {
  '--db_host': 'db_host',
  '--db_port': 'db_port',
  '--db_user': 'db_user',
  '--db_password': 'db_password',
  '--http-port': 'http_port',
  '--addons-path': 'addons_path',
  '--data-dir': 'data_dir',
  '--smtp': 'smtp_server',
  '--smtp-port': 'smtp_port',
  '--smtp-user': 'smtp_user',
  '--smtp-password': 'smtp_password',
  '--email-from': 'email_from',
  '--from-filter': 'from_filter',
  '--log-level': 'log_level',
  '--workers': 'workers',
};
const SHORT: Record<string, string> = { '-p': '--http-port', '-r': '--db_user', '-w': '--db_password' };

function modules(value: string): string[] {
  return value
    .split(',')
    .map((m) => m.trim())
    .filter(Boolean);
}

export function parseArgs(argv: readonly string[], env: Record<string, string | undefined> = {}): StandInArgs {
  const out: StandInArgs = {
    command: 'server',
    config: env.ODOO_RC ?? '/etc/odoo/odoo.conf',
    database: null,
    init: [],
    update: [],
    stopAfterInit: false,
    testEnable: false,
    overrides: {},
  };
  const args = [...argv];
  if (args[0] === 'neutralize' || args[0] === 'server') out.command = args.shift() as 'neutralize' | 'server';
  for (let i = 0; i < args.length; i++) {
    let arg = args[i]!;
    let inline: string | undefined;
    const eq = arg.startsWith('--') ? arg.indexOf('=') : -1;
    if (eq > 0) {
      inline = arg.slice(eq + 1);
      arg = arg.slice(0, eq);
    }
    arg = SHORT[arg] ?? arg;
    const value = (): string => {
      if (inline !== undefined) return inline;
      const v = args[++i];
      if (v === undefined) throw new UsageError(`option ${arg} requires a value`);
      return v;
    };
    switch (arg) {
      case '--version':
        out.command = 'version';
        break;
      case '-c':
      case '--config':
        out.config = value();
        break;
      case '-d':
      case '--database':
        out.database = value();
        break;
      case '-i':
      case '--init':
        out.init.push(...modules(value()));
        break;
      case '-u':
      case '--update':
        out.update.push(...modules(value()));
        break;
      case '--stop-after-init':
        out.stopAfterInit = true;
        break;
      case '--test-enable':
        out.testEnable = true;
        break;
      case '--without-demo':
      case '--no-http':
      case '--dev':
        if (arg !== '--no-http' && inline === undefined && args[i + 1] && !args[i + 1]!.startsWith('-')) i++;
        break;
      default: {
        const key = LONG_WITH_VALUE[arg];
        if (!key) throw new UsageError(`odoo: error: no such option: ${arg}`);
        out.overrides[key] = value();
      }
    }
  }
  return out;
}

/** The [options] section of an odoo.conf (`key = value`, `;`/`#` comments). */
export function parseOdooConf(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  let section = '';
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith(';') || line.startsWith('#')) continue;
    const sect = /^\[(.+)\]$/.exec(line);
    if (sect) {
      section = sect[1]!.trim();
      continue;
    }
    if (section !== 'options') continue;
    const i = line.search(/[=:]/);
    if (i <= 0) continue;
    out[line.slice(0, i).trim()] = line.slice(i + 1).trim();
  }
  return out;
}

/** Odoo's `False`/`None` in a conf file mean "not set". */
export function confValue(options: Record<string, string>, key: string): string | null {
  const v = options[key];
  if (v === undefined || v === '' || v === 'False' || v === 'None') return null;
  return v;
}
