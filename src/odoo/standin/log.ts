// Odoo's log line format: `%(asctime)s %(pid)s %(levelname)s %(dbname)s %(name)s: %(message)s`,
// asctime as `YYYY-MM-DD HH:MM:SS,mmm` (UTC in containers), dbname `?` outside a database.

export type Level = 'DEBUG' | 'INFO' | 'WARNING' | 'ERROR' | 'CRITICAL';

export function asctime(d: Date): string {
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${d.getUTCFullYear()}-${p(d.getUTCMonth() + 1)}-${p(d.getUTCDate())} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())},${p(d.getUTCMilliseconds(), 3)}`;
}

export function formatLine(d: Date, pid: number, level: Level, dbname: string | null, logger: string, message: string): string {
  return `${asctime(d)} ${pid} ${level} ${dbname ?? '?'} ${logger}: ${message}`;
}

/** One line per record on stderr, like Odoo's default handler; a traceback follows its record. */
export class OdooLog {
  dbname: string | null = null;

  constructor(private readonly write: (line: string) => void = (l) => process.stderr.write(l + '\n')) {}

  log(level: Level, logger: string, message: string, traceback?: string[]): void {
    this.write(formatLine(new Date(), process.pid, level, this.dbname, logger, message));
    if (traceback) for (const l of traceback) this.write(l);
  }

  info(logger: string, message: string): void {
    this.log('INFO', logger, message);
  }

  warning(logger: string, message: string): void {
    this.log('WARNING', logger, message);
  }

  error(logger: string, message: string): void {
    this.log('ERROR', logger, message);
  }
}

/** A Python-looking traceback for an exception raised while loading modules. */
export function traceback(where: string, excType: string, message: string): string[] {
  return [
    'Traceback (most recent call last):',
    '  File "/usr/lib/python3/dist-packages/odoo/service/server.py", line 1302, in preload_registries',
    '    registry = Registry.new(dbname, update_module=update_module)',
    `  File "/usr/lib/python3/dist-packages/odoo/modules/loading.py", line 480, in load_modules`,
    `    ${where}`,
    ...`${excType}: ${message}`.split('\n'),
  ];
}
