// Facts of a host (Docker version, disk and memory), read through the host's drivers and shared
// by every environment on the host for a few seconds, so a pass over many environments asks once.
import { diskUsedRatio, type Drivers } from '../../src/drivers/index.ts';
import { PulserError } from '../../src/errors.ts';
import type { HostFacts } from './plan.ts';

const FACTS_TTL_MS = 10_000;

/** /proc/meminfo → MemTotal and MemAvailable in bytes. */
export function parseMeminfo(text: string): { total: number; available: number } {
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN) * 1024;
  const total = kb('MemTotal');
  const available = kb('MemAvailable');
  if (!Number.isFinite(total) || !Number.isFinite(available)) throw new PulserError('PULSER_E_INTERNAL', 'unexpected /proc/meminfo');
  return { total, available };
}

const cache = new WeakMap<Drivers, Map<string, { at: number; facts: Promise<HostFacts> }>>();

export function hostFacts(drivers: Drivers, host: string): Promise<HostFacts> {
  let perHost = cache.get(drivers);
  if (!perHost) cache.set(drivers, (perHost = new Map()));
  const hit = perHost.get(host);
  if (hit && Date.now() - hit.at < FACTS_TTL_MS) return hit.facts;
  const facts = readFacts(drivers, host);
  const entry = { at: Date.now(), facts };
  perHost.set(host, entry);
  facts.catch(() => {
    if (perHost!.get(host) === entry) perHost!.delete(host);
  });
  return facts;
}

// Facts are read without starting a process on the host (statvfs, /proc/meminfo over SFTP):
// on a busy host a fork costs far more than a request on an open connection.
async function readFacts(drivers: Drivers, host: string): Promise<HostFacts> {
  const [dockerVersion, fs, mem] = await Promise.all([drivers.docker(host).version(), drivers.fsStats(host, '/'), drivers.readHostFile(host, '/proc/meminfo')]);
  const m = parseMeminfo(mem);
  return {
    dockerVersion,
    diskTotalBytes: fs.totalBytes,
    diskUsedBytes: fs.totalBytes - fs.availableBytes,
    diskUsedRatio: diskUsedRatio(fs) ?? 0,
    memTotalBytes: m.total,
    memAvailableBytes: m.available,
  };
}
