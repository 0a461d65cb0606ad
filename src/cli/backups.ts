// `pulser backup <env>`, `pulser backups [env]` and `pulser restore <id> --to <env>`: backups
// taken, listed and restored on demand, with the same code the backups reconciler runs.
import type { Pulser } from '../app.ts';
import type { DesiredEnv, SpecSnapshot } from '../spec/model.ts';
import { PulserError } from '../errors.ts';
import { specCommit } from '../drivers/git.ts';
import { backupId, backupPolicy, parseBackupId, restoreToEnvironment, storeFor, takeBackup, type BackupEntry, type BackupStore } from '../../reconcilers/backups/index.ts';
import type { Drivers } from '../drivers/index.ts';
import { formatBytes } from '../../reconcilers/backups/take.ts';
import { ago } from './render.ts';

export interface BackupCliFlags {
  json: boolean;
  to?: string;
  'force-production': boolean;
  'no-wait': boolean;
}

export interface BackupCliIo {
  /** prints a result (the caller clears the live progress line first) */
  out: (text: string) => void;
}

function usage(message: string): PulserError {
  return new PulserError('PULSER_E_USAGE', message);
}

function desiredOf(snap: SpecSnapshot, env: string): DesiredEnv {
  const load = snap.envs.get(env);
  if (!load) {
    const known = [...snap.envs.keys()].sort().join(', ') || 'none';
    throw new PulserError('PULSER_E_ENV_UNKNOWN', `no environment ${JSON.stringify(env)} in environments/ (known: ${known})`);
  }
  if (!load.ok) throw load.errors[0] ?? new PulserError('PULSER_E_SPEC_INVALID', `environment ${env} is invalid`);
  return load.desired;
}

function destinationOf(desired: DesiredEnv, drivers: Drivers): BackupStore {
  const policy = backupPolicy(desired);
  if (!policy) throw new PulserError('PULSER_E_BACKUP_POLICY', `environment ${desired.name} has no backup section: it has no backup destination`);
  return storeFor(policy.destination, drivers);
}

function verified(e: BackupEntry): boolean | null {
  return e.drill ? e.drill.ok : null;
}

function listJson(e: BackupEntry, now: number) {
  const m = e.manifest;
  return { env: m.env, id: m.id, kind: m.kind, at: m.at, ageSeconds: Math.max(0, Math.round((now - Date.parse(m.at)) / 1000)), bytes: e.bytes, database: m.database, verified: verified(e), drill: e.drill };
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
}

async function cmdBackup(p: Pulser, args: string[], flags: BackupCliFlags, io: BackupCliIo): Promise<number> {
  if (args.length !== 1) throw usage('backup takes exactly one environment: pulser backup <env>');
  const desired = desiredOf(await p.load(), args[0]!);
  const ctx = p.engine.context(desired);
  const store = destinationOf(desired, ctx.drivers);
  const lease = await p.lease(desired.name, !flags['no-wait']);
  let entry: BackupEntry;
  try {
    const at = new Date();
    entry = await takeBackup(
      { desired, drivers: ctx.drivers, store, commit: await specCommit(p.root), progress: ctx.progress, signal: ctx.signal },
      { id: backupId(desired.name, at), at, kind: 'manual', reason: 'pulser backup' },
    );
  } finally {
    await lease.release();
  }
  const m = entry.manifest;
  const secs = m.durationsMs.total / 1000;
  if (flags.json) io.out(JSON.stringify(listJson(entry, Date.now()), null, 2));
  else io.out(`backup ${m.id}: ${formatBytes(entry.bytes)} in ${secs.toFixed(1)} s (${formatBytes(entry.bytes / Math.max(secs, 0.001))}/s) → ${entry.dir}`);
  return 0;
}

async function cmdList(p: Pulser, args: string[], flags: BackupCliFlags, io: BackupCliIo): Promise<number> {
  if (args.length > 1) throw usage('backups takes at most one environment');
  const snap = await p.load();
  const envs = args[0] !== undefined ? [desiredOf(snap, args[0])] : [...snap.envs.values()].flatMap((l) => (l.ok && backupPolicy(l.desired) ? [l.desired] : []));
  const entries: BackupEntry[] = [];
  for (const d of envs.sort((a, b) => a.name.localeCompare(b.name))) entries.push(...(await destinationOf(d, p.drivers()).list(d.name)));
  const now = Date.now();
  if (flags.json) {
    io.out(JSON.stringify({ backups: entries.map((e) => listJson(e, now)) }, null, 2));
    return 0;
  }
  if (entries.length === 0) {
    io.out('no backups');
    return 0;
  }
  const rows = [['ID', 'KIND', 'AGE', 'SIZE', 'VERIFIED']];
  for (const e of entries) {
    const v = verified(e);
    rows.push([e.manifest.id, e.manifest.kind, ago(e.manifest.at, now), formatBytes(e.bytes), v === null ? '-' : v ? `yes (${ago(e.drill!.at, now)})` : `FAILED ${e.drill!.error?.code ?? ''}`.trim()]);
  }
  io.out(table(rows));
  return 0;
}

async function cmdRestore(p: Pulser, args: string[], flags: BackupCliFlags, io: BackupCliIo): Promise<number> {
  if (args.length !== 1 || !flags.to) throw usage('restore needs a backup id and a target: pulser restore <backup-id> --to <env> [--force-production]');
  const id = args[0]!;
  const source = parseBackupId(id);
  if (!source) throw usage(`${JSON.stringify(id)} is not a backup id (<env>-<YYYYMMDDTHHMMSSZ>; see \`pulser backups\`)`);
  const snap = await p.load();
  const target = desiredOf(snap, flags.to);
  const store = destinationOf(desiredOf(snap, source.env), p.drivers());
  const entry = await store.get(id);
  const ctx = p.engine.context(target);
  // A restore swaps the target's database: never while a pass or another restore changes it.
  const lease = await p.lease(target.name, !flags['no-wait']);
  let res: Awaited<ReturnType<typeof restoreToEnvironment>>;
  try {
    res = await restoreToEnvironment(
      { desired: target, drivers: ctx.drivers, store, stateDir: p.stateDir, commit: await specCommit(p.root), progress: ctx.progress, signal: ctx.signal },
      entry,
      { forceProduction: flags['force-production'] },
    );
  } finally {
    await lease.release();
  }
  if (flags.json) io.out(JSON.stringify(res, null, 2));
  else io.out(`restored ${res.backupId} into ${res.env} (database ${res.database}) in ${(res.durationMs / 1000).toFixed(1)} s${res.resumed ? ', finishing the swap an earlier run left' : ''}${res.preRestoreBackup ? `; backup taken before: ${res.preRestoreBackup}` : ''}`);
  return 0;
}

/** Runs one of the backup commands; the caller owns `p` and closes it. */
export async function runBackupCommand(command: 'backup' | 'backups' | 'restore', p: Pulser, args: string[], flags: BackupCliFlags, io: BackupCliIo): Promise<number> {
  try {
    if (command === 'backup') return await cmdBackup(p, args, flags, io);
    if (command === 'backups') return await cmdList(p, args, flags, io);
    return await cmdRestore(p, args, flags, io);
  } finally {
    await p.close();
  }
}
