// Where addon repositories live: a checkout per environment and repository on the host, mounted
// read-only into every Odoo container of the environment and listed in odoo.conf's addons_path.
import path from 'node:path';
import type { DesiredEnv } from '../../src/spec/model.ts';
import type { AddonRepo } from '../../src/spec/types.gen.ts';
import { defaultRepoName } from '../../src/spec/rules/repo-url.ts';

export const ADDONS_MOUNT_ROOT = '/mnt/pulser-addons';
/** The official image's own extra-addons folder stays first in addons_path. */
export const IMAGE_ADDONS_PATH = '/mnt/extra-addons';
const FALLBACK_ADDONS_DIR = '/var/lib/pulser/addons';

export function repoName(r: AddonRepo): string {
  return r.name ?? defaultRepoName(r.url);
}

export function addonsRoot(desired: DesiredEnv): string {
  return (desired.host.kind === 'local' ? desired.host.addons_dir : undefined) ?? FALLBACK_ADDONS_DIR;
}

export function repoCheckoutDir(desired: DesiredEnv, r: AddonRepo): string {
  return path.join(addonsRoot(desired), desired.name, repoName(r));
}

export interface AddonsMounts {
  /** `host:container:ro` bind specs */
  binds: string[];
  /** the addons_path odoo.conf gets, or null when the environment declares no repository */
  addonsPath: string | null;
}

export function addonsMounts(desired: DesiredEnv): AddonsMounts {
  const repos = desired.spec.addons?.repos ?? [];
  if (repos.length === 0) return { binds: [], addonsPath: null };
  const inContainer = repos.map((r) => `${ADDONS_MOUNT_ROOT}/${repoName(r)}`);
  const own = desired.spec.odoo.config.addons_path;
  return {
    binds: repos.map((r, i) => `${repoCheckoutDir(desired, r)}:${inContainer[i]}:ro`),
    addonsPath: [own === undefined ? IMAGE_ADDONS_PATH : String(own), ...inContainer].join(','),
  };
}
