// How pulser reaches an environment's database: the spec's database.host is the address seen from
// the Odoo container; pulser connects from the host side, which is often a different address.
import type { DesiredEnv } from '../spec/model.ts';
import type { Db, Drivers, PgTarget } from '../drivers/index.ts';

/** Names that mean "the Docker host itself" from inside a container. */
const HOST_ALIASES = new Set(['host.docker.internal', 'host-gateway', 'localhost', '127.0.0.1']);

export function pulserDbAddress(desired: DesiredEnv): string {
  const db = desired.spec.database;
  if (db.address) return db.address;
  if (desired.host.kind === 'local' && HOST_ALIASES.has(db.host)) return '127.0.0.1';
  return db.host;
}

export function dbTarget(desired: DesiredEnv, database = desired.spec.database.name): PgTarget {
  const db = desired.spec.database;
  return { address: pulserDbAddress(desired), port: db.port, user: db.user, ...(db.password !== undefined ? { password: db.password } : {}), database };
}

export function envDb(drivers: Drivers, desired: DesiredEnv): Db {
  return drivers.db(desired.hostName, dbTarget(desired));
}
