// Odoo-shaped databases and filestores for backup and staging tests: a few tables with the
// columns pulser reads (ir_module_module, ir_config_parameter, ir_cron, ir_mail_server, res_partner),
// rows from generate_series, and filestore files put into and read out of a real container.
import { createHash } from 'node:crypto';
import { pack, extract } from 'tar-stream';
import type Docker from 'dockerode';
import { PgPools, type PgTarget } from '../../src/drivers/postgres.ts';

export const PG: Omit<PgTarget, 'database'> = {
  address: '127.0.0.1',
  port: Number(process.env.PGPORT ?? 55432),
  user: process.env.PGUSER ?? 'postgres',
};

export const ODOO_TABLES = `
CREATE TABLE ir_module_module (id serial PRIMARY KEY, name varchar NOT NULL UNIQUE, state varchar, latest_version varchar);
CREATE TABLE ir_config_parameter (id serial PRIMARY KEY, key varchar NOT NULL UNIQUE, value text NOT NULL);
CREATE TABLE ir_cron (id serial PRIMARY KEY, cron_name varchar, active boolean, ir_actions_server_id integer);
CREATE TABLE ir_model_data (id serial PRIMARY KEY, module varchar NOT NULL, name varchar NOT NULL, model varchar, res_id integer);
CREATE TABLE ir_mail_server (id serial PRIMARY KEY, name varchar NOT NULL, smtp_host varchar, active boolean);
CREATE TABLE res_partner (id serial PRIMARY KEY, name varchar, email varchar, phone varchar);
CREATE TABLE ir_attachment (id serial PRIMARY KEY, name varchar, store_fname varchar);
`;

/** Creates `database` with Odoo's tables and `partners` partners; returns a pool set to close. */
export async function createOdooDb(pools: PgPools, database: string, partners = 500): Promise<void> {
  await pools.get({ ...PG, database: 'postgres' }).query(`CREATE DATABASE ${database}`);
  const db = pools.get({ ...PG, database });
  await db.query(ODOO_TABLES);
  await db.query(`INSERT INTO ir_module_module (name, state, latest_version) VALUES ('base', 'installed', '17.0.1.3'), ('mail', 'installed', '17.0.1.15'), ('crm', 'uninstalled', NULL)`);
  await db.query(`INSERT INTO ir_config_parameter (key, value) VALUES ('database.uuid', 'uuid-of-production'), ('web.base.url', 'https://erp.example.com'), ('database.create_date', '2024-01-01')`);
  await db.query(`INSERT INTO ir_cron (cron_name, active) VALUES ('Base: Auto-vacuum internal data', true), ('Mail: Email Queue Manager', true), ('Notification: digest', true)`);
  await db.query(`INSERT INTO ir_model_data (module, name, model, res_id) VALUES ('base', 'autovacuum_job', 'ir.cron', 1)`);
  await db.query(`INSERT INTO ir_mail_server (name, smtp_host, active) VALUES ('Office 365', 'smtp.office365.com', true), ('Mailgun', 'smtp.mailgun.org', true)`);
  await db.query(`INSERT INTO res_partner (name, email, phone) SELECT 'Partner ' || g, 'partner' || g || '@customer.example', '+41 44 ' || g FROM generate_series(1, $1::int) g`, [partners]);
  await db.query(`INSERT INTO ir_attachment (name, store_fname) SELECT 'doc' || g, 'ab/' || md5(g::text) FROM generate_series(1, 20) g`);
}

export async function dropDb(pools: PgPools, database: string): Promise<void> {
  await pools.get({ ...PG, database: 'postgres' }).query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
}

export async function rowCounts(pools: PgPools, database: string): Promise<Record<string, number>> {
  const db = pools.get({ ...PG, database });
  const out: Record<string, number> = {};
  for (const t of ['ir_module_module', 'ir_config_parameter', 'ir_cron', 'ir_mail_server', 'res_partner', 'ir_attachment']) {
    out[t] = Number((await db.query<{ n: string }>(`SELECT count(*) AS n FROM ${t}`))[0]!.n);
  }
  return out;
}

/** Writes files into `/var/lib/odoo/filestore/<database>/` of a container. */
export async function putFilestore(docker: Docker, container: string, database: string, files: Record<string, Buffer | string>): Promise<void> {
  const tar = pack();
  for (const [rel, content] of Object.entries(files)) tar.entry({ name: `var/lib/odoo/filestore/${database}/${rel}`, mode: 0o644 }, content);
  tar.finalize();
  await docker.getContainer(container).putArchive(tar as unknown as NodeJS.ReadableStream, { path: '/' });
}

/** sha256 of every file under `/var/lib/odoo/filestore/<database>/`, by relative path (null: no folder). */
export async function readFilestore(docker: Docker, container: string, database: string): Promise<Record<string, string> | null> {
  let stream: NodeJS.ReadableStream;
  try {
    stream = await docker.getContainer(container).getArchive({ path: `/var/lib/odoo/filestore/${database}` });
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404) return null;
    throw err;
  }
  const out: Record<string, string> = {};
  const ex = extract();
  ex.on('entry', (h, s, next) => {
    const hash = createHash('sha256');
    s.on('data', (c: unknown) => hash.update(c as Buffer));
    s.on('end', () => {
      if (h.type === 'file') out[h.name.slice(database.length + 1)] = hash.digest('hex');
      next();
    });
  });
  await new Promise<void>((resolve, reject) => {
    ex.once('finish', resolve);
    ex.once('error', reject);
    stream.pipe(ex);
  });
  return out;
}

/** YAML of an environment whose database lives on the test cluster, with optional extra sections. */
export function envYaml(o: { name: string; tier: string; port: number; database: string; image?: string; extra?: string }): string {
  return [
    `name: ${o.name}`,
    `tier: ${o.tier}`,
    'host: local',
    'sync: { auto: true, interval: 1h }',
    'odoo:',
    `  image: ${o.image ?? 'pulser-demo/odoo:17.0.1'}`,
    `  port: ${o.port}`,
    '  health: { path: /web/health, interval: 200ms, timeout: 1s, retries: 150 }',
    'database:',
    `  name: ${o.database}`,
    `  host: ${PG.address}`,
    `  port: ${PG.port}`,
    `  user: ${PG.user}`,
    o.extra ?? '',
  ].join('\n') + '\n';
}
