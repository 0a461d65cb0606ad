// Checks for values that command builders put into argv where the program cannot be told "this is
// data" (an option's separate value, a program name): such a value must not look like an option
// or carry control characters. Where a program takes `--`, builders use that instead.
import { PulserError } from '../errors.ts';

const CONTROL = /[\u0000-\u001f\u007f]/;

function refuse(what: string, value: string, why: string): PulserError {
  return new PulserError('PULSER_E_ARGUMENT_UNSAFE', `${what} ${JSON.stringify(value.slice(0, 80))} ${why}`, { details: { what } });
}

/** `value` unchanged when it can stand alone as an argv element that is not an option. */
export function operand(value: string, what: string): string {
  if (value === '') throw refuse(what, value, 'is empty');
  if (value.startsWith('-')) throw refuse(what, value, 'starts with "-": the program would read it as an option');
  if (CONTROL.test(value)) throw refuse(what, value, 'contains a control character');
  return value;
}

/**
 * A database name for PostgreSQL's programs and Odoo's `-d`: besides being no option, libpq reads
 * a name holding `=` or starting with `postgres://` as a connection string (another host, user…),
 * and the name is also the folder of the database's filestore.
 */
export function databaseName(value: string): string {
  operand(value, 'database name');
  if (value.includes('=') || /^postgres(?:ql)?:\/\//i.test(value)) throw refuse('database name', value, 'would be read as a connection string');
  if (value.includes('/') || value === '.' || value === '..') throw refuse('database name', value, 'is no folder name (it names the filestore folder too)');
  return value;
}

/** A path that can never read as an option, since it starts with `/`. */
export function absolutePath(value: string, what: string): string {
  if (!value.startsWith('/')) throw refuse(what, value, 'is not an absolute path');
  if (CONTROL.test(value)) throw refuse(what, value, 'contains a control character');
  return value;
}

/** Odoo module names joined for `-i`/`-u`: a comma would split one name into several. */
export function moduleList(modules: readonly string[]): string {
  for (const m of modules) {
    operand(m, 'module name');
    if (/[,\s]/.test(m)) throw refuse('module name', m, 'contains a comma or whitespace');
  }
  return modules.join(',');
}

/** The program of an argv (`timeout -s KILL N <program> …`). */
export function program(argv: readonly string[]): readonly string[] {
  operand(argv[0] ?? '', 'program');
  return argv;
}
