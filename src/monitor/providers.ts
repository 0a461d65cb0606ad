// Where the backup and disk KPIs come from. The backups reconciler and remote hosts plug in
// their own providers; the defaults report what this process can know by itself.
import { diskUsedRatio, type Drivers } from '../drivers/index.ts';
import type { DesiredEnv } from '../spec/model.ts';

export interface BackupProvider {
  /** When the last successful backup of the environment finished; null when unknown. */
  lastBackupAt(env: DesiredEnv): Promise<Date | null>;
}

export interface DiskProvider {
  /** Used share (0–1) of the disk of the environment's host; null when unknown. */
  usedRatio(env: DesiredEnv): Promise<number | null>;
}

export const unknownBackups: BackupProvider = {
  lastBackupAt: async () => null,
};

interface StatusSource {
  get(env: string): { lastBackup: { at: string } | null } | undefined;
}

/**
 * The default: the newest backup the backups reconciler reported in the environment's status
 * (`lastBackup.at`); unknown while it reports none.
 */
export function backupsFromStatus(status: () => StatusSource): BackupProvider {
  return {
    async lastBackupAt(env) {
      const at = status().get(env.name)?.lastBackup?.at;
      if (typeof at !== 'string') return null;
      const ms = Date.parse(at);
      return Number.isNaN(ms) ? null : new Date(ms);
    },
  };
}

/**
 * The file system holding `path` on the environment's host (`/` by default): statfs on a local
 * host, SFTP statvfs over the host's SSH connection on a remote one (no process is started).
 */
export function hostDisk(drivers: () => Drivers, path = '/'): DiskProvider {
  return {
    async usedRatio(env) {
      return diskUsedRatio(await drivers().fsStats(env.hostName, path));
    },
  };
}
