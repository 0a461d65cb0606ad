// Entry point of the stand-in Odoo server (bundled into one file inside the stand-in image).
// Same contract as odoo-bin: options and odoo.conf, database creation and `-i base` initialisation,
// `-i`/`-u` with `--stop-after-init`, `neutralize`, Odoo's log format and exit codes (0 on success,
// 255 when loading raises, 1 on a usage error), and an HTTP server with /web/health and /web/login.
// POST /standin/send-mail makes it send a message the way Odoo's mail queue would.
import http from 'node:http';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { confValue, parseArgs, parseOdooConf, UsageError, type StandInArgs } from './cli.ts';
import { OdooLog, traceback } from './log.ts';
import {
  checkModuleNames,
  initializeDatabase,
  isInitialized,
  LoadingFailure,
  loadMarkedModules,
  markToInstall,
  reportInconsistencies,
  scanAddons,
  updateModuleList,
  type Query,
} from './loading.ts';
import { sendMail, type OutgoingMail } from './mail.ts';

const SERIES = process.env.ODOO_VERSION ?? '17.0';
const RELEASE = process.env.ODOO_RELEASE ?? `${SERIES}.0`;
const TABLES_SQL = process.env.ODOO_STANDIN_TABLES ?? path.join(path.dirname(process.argv[1] ?? '.'), 'tables.sql');
/** sys.exit(-1) as Python reports it. */
const EXIT_LOAD_FAILED = 255;

const log = new OdooLog();

interface Settings {
  options: Record<string, string | null>;
  dbname: string | null;
}

async function settings(args: StandInArgs): Promise<Settings> {
  let file: Record<string, string> = {};
  try {
    file = parseOdooConf(await readFile(args.config, 'utf8'));
  } catch {
    log.warning('odoo.tools.config', `Could not read configuration file ${args.config}`);
  }
  const options: Record<string, string | null> = {};
  for (const k of Object.keys(file)) options[k] = confValue(file, k);
  for (const [k, v] of Object.entries(args.overrides)) options[k] = v === 'False' ? null : v;
  return { options, dbname: args.database ?? options.db_name ?? null };
}

function pgConfig(o: Record<string, string | null>, database: string): pg.ClientConfig {
  return {
    host: o.db_host ?? undefined,
    port: o.db_port ? Number(o.db_port) : 5432,
    user: o.db_user ?? undefined,
    password: o.db_password ?? undefined,
    database,
    connectionTimeoutMillis: 10_000,
    application_name: 'odoo',
  };
}

async function withClient<T>(cfg: pg.ClientConfig, fn: (q: Query, c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client(cfg);
  await c.connect();
  try {
    const q: Query = async <R,>(sql: string, params: unknown[] = []) => (await c.query(sql, params)).rows as R[];
    return await fn(q, c);
  } finally {
    await c.end().catch(() => undefined);
  }
}

/** `_create_empty_database`: creates the database unless it exists (template0, unaccent-free). */
async function createEmptyDatabase(o: Record<string, string | null>, dbname: string): Promise<boolean> {
  return withClient(pgConfig(o, 'postgres'), async (q) => {
    const exists = await q('SELECT 1 FROM pg_database WHERE datname = $1', [dbname]);
    if (exists.length) return false;
    await q(`CREATE DATABASE "${dbname.replace(/"/g, '""')}" ENCODING 'unicode' LC_COLLATE 'C' TEMPLATE template0`);
    log.info('odoo.service.db', `Create database \`${dbname}\`.`);
    return true;
  });
}

/** `preload_registries` for one database: init, update list, install/upgrade. Returns the exit code. */
async function loadRegistry(args: StandInArgs, s: Settings, dbname: string): Promise<number> {
  log.dbname = dbname;
  const o = s.options;
  const addonsPath = (o.addons_path ?? '/mnt/extra-addons').split(',').map((p) => p.trim()).filter(Boolean);
  log.info('odoo', `addons paths: ${JSON.stringify(addonsPath)}`);
  try {
    await createEmptyDatabase(o, dbname);
    return await withClient(pgConfig(o, dbname), async (q) => {
      let init = [...args.init];
      if (!(await isInitialized(q))) {
        log.info('odoo.modules.loading', 'init db');
        await q('BEGIN');
        await initializeDatabase(q, await readFile(TABLES_SQL, 'utf8'), SERIES, o.http_port ?? '8069');
        await q('COMMIT');
        init = ['base', 'web', ...init];
      }
      const mods = await scanAddons(addonsPath, log);
      await q('BEGIN');
      try {
        if (init.length || args.update.length) {
          log.info('odoo.modules.loading', 'updating modules list');
          await updateModuleList(q, mods);
        }
        const toInstall = await checkModuleNames(q, init, log);
        await markToInstall(q, toInstall);
        const toUpdate = args.update.includes('all') ? (await q<{ name: string }>(`SELECT name FROM ir_module_module WHERE state = 'installed'`)).map((r) => r.name) : await checkModuleNames(q, args.update, log);
        if (toUpdate.length) await q(`UPDATE ir_module_module SET state = 'to upgrade' WHERE state = 'installed' AND name = ANY($1)`, [toUpdate]);
        await loadMarkedModules(q, mods, SERIES, log);
        await reportInconsistencies(q, mods, log);
        await q('COMMIT');
      } catch (err) {
        await q('ROLLBACK').catch(() => undefined);
        throw err;
      }
      if (args.testEnable) log.info('odoo.service.server', 'Starting post tests');
      log.info('odoo.modules.loading', 'Modules loaded.');
      return 0;
    });
  } catch (err) {
    const f = err instanceof LoadingFailure ? err : new LoadingFailure((err as { code?: string }).code ? 'psycopg2.OperationalError' : 'Exception', (err as Error).message, 'cr = db.cursor()');
    log.log('CRITICAL', 'odoo.service.server', `Failed to initialize database \`${dbname}\`.`, traceback(f.where, f.excType, f.message));
    return EXIT_LOAD_FAILED;
  }
}

async function neutralize(s: Settings): Promise<number> {
  if (!s.dbname) {
    log.error('odoo.cli.neutralize', 'Neutralize command needs a database name. Use "-d" argument');
    return 1;
  }
  log.dbname = s.dbname;
  log.info('odoo.cli.neutralize', `Starting ${s.dbname} database neutralization`);
  try {
    await withClient(pgConfig(s.options, s.dbname), async (q) => {
      await q('BEGIN');
      await q(`UPDATE ir_cron SET active = 'f' WHERE id NOT IN (SELECT res_id FROM ir_model_data WHERE name = 'autovacuum_job' AND module = 'base')`);
      await q(`UPDATE ir_mail_server SET active = 'f'`);
      await q(
        `INSERT INTO ir_config_parameter (key, value, create_date) VALUES ('database.is_neutralized', 'True', now() AT TIME ZONE 'UTC')
         ON CONFLICT (key) DO UPDATE SET value = 'True', write_date = now() AT TIME ZONE 'UTC'`,
      );
      await q('COMMIT');
    });
  } catch (err) {
    log.log('CRITICAL', 'odoo.cli.neutralize', 'An error occurred during the neutralization. THE DATABASE IS NOT NEUTRALIZED!', traceback('cr.execute(query)', 'Exception', (err as Error).message));
    return 1;
  }
  log.info('odoo.cli.neutralize', 'Neutralization finished');
  return 0;
}

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => {
      body += c;
      if (body.length > 1 << 20) req.destroy(new Error('body too large'));
    });
    req.on('end', () => resolve(body));
    req.on('error', reject);
  });
}

function serve(s: Settings): void {
  const port = Number(s.options.http_port ?? 8069);
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://odoo');
    const done = (status: number, type: string, body: string) => {
      res.writeHead(status, { 'content-type': type });
      res.end(body);
      log.info('werkzeug', `${req.socket.remoteAddress ?? '-'} - - "${req.method} ${url.pathname} HTTP/1.1" ${status} - 0 0.000 0.001`);
    };
    if (url.pathname === '/web/health') return done(200, 'application/json', '{"status": "pass"}');
    if (url.pathname === '/web/login') {
      return done(200, 'text/html; charset=utf-8', `<!DOCTYPE html><html><head><title>Odoo</title></head><body><form method="post" action="/web/login"><input name="login"><input name="password" type="password"><button>Log in</button></form><p>Odoo ${RELEASE}</p></body></html>`);
    }
    if (url.pathname === '/standin/send-mail' && req.method === 'POST') {
      void (async () => {
        try {
          const mail = JSON.parse(await readBody(req)) as OutgoingMail;
          if (!s.dbname) return done(400, 'application/json', JSON.stringify({ error: 'no database' }));
          const result = await withClient(pgConfig(s.options, s.dbname), (q) => sendMail(q, s.options, { ...mail, to: [mail.to].flat() }, log));
          done(result.sent ? 200 : 502, 'application/json', JSON.stringify(result));
        } catch (err) {
          done(500, 'application/json', JSON.stringify({ error: (err as Error).message }));
        }
      })();
      return;
    }
    done(404, 'text/html', '<h1>Not Found</h1>');
  });
  server.listen(port, '0.0.0.0', () => log.info('odoo.service.server', `HTTP service (werkzeug) running on 0.0.0.0:${port}`));
  const stop = () => {
    log.info('odoo.service.server', 'Initiating shutdown');
    server.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

async function main(argv: string[]): Promise<number> {
  let args: StandInArgs;
  try {
    args = parseArgs(argv, process.env);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`Usage: odoo [options]\n\n${err.message}\n`);
      return 2;
    }
    throw err;
  }
  if (args.command === 'version') {
    process.stdout.write(`Odoo Server ${RELEASE}\n`);
    return 0;
  }
  const s = await settings(args);
  if (args.command === 'neutralize') return neutralize(s);
  log.info('odoo', `Odoo version ${RELEASE}`);
  log.info('odoo', `Using configuration file at ${args.config}`);
  if (s.options.db_host || s.options.db_port) log.info('odoo', `database: ${s.options.db_user ?? 'default'}@${s.options.db_host ?? 'default'}:${s.options.db_port ?? 'default'}`);
  if (s.dbname) {
    const rc = await loadRegistry(args, s, s.dbname);
    if (args.stopAfterInit) return rc;
  } else if (args.init.length || args.update.length) {
    log.error('odoo.service.server', 'a database is needed to install or update modules (-d or db_name)');
    return 1;
  } else if (args.stopAfterInit) return 0;
  serve(s);
  return -1;
}

main(process.argv.slice(2)).then(
  (rc) => {
    if (rc >= 0) process.exit(rc);
  },
  (err: Error) => {
    log.log('CRITICAL', 'odoo', err.message);
    process.exit(1);
  },
);
