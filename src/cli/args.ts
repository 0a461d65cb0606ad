// Argument parsing of the commands that parse their own flags: the options they all take, and a
// parse error turned into PULSER_E_USAGE followed by the command's usage.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { PulserError } from '../errors.ts';

type Options = NonNullable<ParseArgsConfig['options']>;

function commonOptions() {
  return {
    dir: { type: 'string', default: process.env.PULSER_DIR ?? '.' },
    'secrets-file': { type: 'string' },
    json: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  } as const;
}

/** `--dir`, `--secrets-file`, `--json` and `-h/--help` come with every command, next to `options`. */
export function parseCommandArgs<const O extends Options>(argv: string[], options: O, usage: string) {
  const config = { args: argv, allowPositionals: true, strict: true, options: { ...commonOptions(), ...options } } as const;
  try {
    return parseArgs(config);
  } catch (err) {
    throw new PulserError('PULSER_E_USAGE', `${(err as Error).message}\n${usage}`);
  }
}
