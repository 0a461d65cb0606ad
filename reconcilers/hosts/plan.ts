// The hosts planner (pure): a digitalocean host whose droplet is missing gets one create change;
// a droplet not yet active gets a wait; several droplets under one name are a finding, never a guess.
import type { Change, Plan } from '../../src/core/reconciler.ts';
import { PulserError } from '../../src/errors.ts';
import type { DesiredEnv } from '../../src/spec/model.ts';
import type { DropletCreate } from '../../src/drivers/digitalocean.ts';
import type { Host } from '../../src/spec/types.gen.ts';

export const RECONCILER = 'hosts';
/** Every droplet pulser creates carries this tag; droplets are looked up by it and their name. */
export const OWNER_TAG = 'pulser';

export const DEFAULT_USER_DATA = `#cloud-config
package_update: true
packages:
  - docker.io
runcmd:
  - [systemctl, enable, --now, docker]
`;

export type DigitalOceanHostSpec = Extract<Host, { kind: 'digitalocean' }>;

export interface HostFacts {
  dockerVersion: string;
  diskTotalBytes: number;
  diskUsedBytes: number;
  diskUsedRatio: number;
  memTotalBytes: number;
  memAvailableBytes: number;
}

export interface ObservedDroplet {
  id: number;
  name: string;
  status: string;
  address: string | null;
  tags: string[];
}

export interface HostsObserved {
  host: string;
  kind: Host['kind'];
  /** droplets found under the declared name and the owner tag (digitalocean hosts) */
  droplets: ObservedDroplet[];
  facts: HostFacts | null;
}

/** The create request of a droplet (data, golden-tested). */
export function dropletCreateRequest(h: DigitalOceanHostSpec): DropletCreate {
  const d = h.droplet;
  const tags = [OWNER_TAG, ...(d.tags ?? []).filter((t) => t !== OWNER_TAG)];
  return {
    name: d.name,
    region: d.region,
    size: d.size,
    image: d.image,
    ssh_keys: d.sshKeys ?? [],
    tags,
    user_data: d.userData ?? DEFAULT_USER_DATA,
  };
}

export function planHosts(desired: DesiredEnv, observed: HostsObserved): Plan {
  const host = desired.host;
  if (host.kind !== 'digitalocean') return { changes: [], findings: [] };
  const subject = `${desired.name}/hosts/${desired.hostName}`;
  const spec = host as DigitalOceanHostSpec;
  if (observed.droplets.length > 1) {
    const ids = observed.droplets.map((d) => d.id).join(', ');
    return {
      changes: [],
      findings: [{ subject, error: new PulserError('PULSER_E_DROPLET_AMBIGUOUS', `droplets ${ids} are all named ${spec.droplet.name} and tagged ${OWNER_TAG}; remove or rename all but one`).toJSON() }],
    };
  }
  const d = observed.droplets[0];
  const base = { subject, reconciler: RECONCILER };
  if (!d) {
    const req = dropletCreateRequest(spec);
    const change: Change = {
      ...base,
      action: 'create',
      risk: 'safe',
      summary: `droplet ${req.name} (${req.size}, ${req.region}, ${req.image})`,
      diff: { droplet: { after: { name: req.name, size: req.size, region: req.region, image: req.image, tags: req.tags } } },
      reason: `no droplet named ${req.name} with tag ${OWNER_TAG} exists`,
      op: { kind: 'create-droplet', host: desired.hostName },
    };
    return { changes: [change], findings: [] };
  }
  if (d.status !== 'active' || !d.address) {
    return {
      changes: [
        {
          ...base,
          action: 'run',
          risk: 'safe',
          summary: `wait for droplet ${d.name} (${d.id}) to be active and reachable`,
          diff: { status: { before: d.status, after: 'active' } },
          reason: `the droplet is ${d.status}${d.address ? '' : ' without a public address'}`,
          op: { kind: 'await-droplet', host: desired.hostName, id: d.id },
        },
      ],
      findings: [],
    };
  }
  return { changes: [], findings: [] };
}
