// Remote hosts for tests: network namespaces with their own sshd and dockerd, started by
// test/harness/hosts.sh (once per test file), with the demo images imported through pulser's own
// SSH transport. The test reaches each engine's socket directly only to check what happened.
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import Docker from 'dockerode';
import { createDrivers } from '../../src/drivers/index.ts';
import type { Host } from '../../src/spec/types.gen.ts';
import { ensureDemoImages } from '../../src/demo/images.ts';

const run = promisify(execFile);
const SCRIPT = fileURLToPath(new URL('../harness/hosts.sh', import.meta.url));

export interface RemoteHost {
  index: number;
  /** host name used in hosts.yaml: `h1`, `h2`, … */
  name: string;
  namespace: string;
  address: string;
  port: number;
  user: string;
  keyFile: string;
  fingerprint: string;
  dockerSocket: string;
  link: string;
}

/** Secret holding the client key of every test host. */
export const KEY_SECRET = 'TEST_SSH_KEY';

export class RemoteHosts {
  constructor(
    readonly set: string,
    readonly hosts: RemoteHost[],
  ) {}

  /**
   * Starts (or reuses) `count` hosts named after `set`, with the given demo images on each; with
   * `docker: false` they run sshd only (a backup host reached over SFTP).
   */
  static async up(set: string, count: number, images: string[] = ['pulser-demo/odoo:17.0.1', 'pulser-demo/odoo:17.0.2'], opts: { docker?: boolean } = {}): Promise<RemoteHosts> {
    const docker = opts.docker ?? true;
    await harnessWith({ PULSER_TEST_HOSTS_DOCKER: docker ? '1' : '0' }, 'up', set, String(count));
    const root = process.env.PULSER_TEST_ROOT ?? '/tmp/pulser-test';
    const info = JSON.parse(await readFile(`${root}/hosts-${set}/env.json`, 'utf8')) as { hosts: Omit<RemoteHost, 'name'>[] };
    const r = new RemoteHosts(
      set,
      info.hosts.map((h) => ({ ...h, name: `h${h.index}` })),
    );
    process.env[KEY_SECRET] = await readFile(r.hosts[0]!.keyFile, 'utf8');
    if (!docker || images.length === 0) return r;
    const drivers = createDrivers(r.hostMap());
    try {
      await Promise.all(r.hosts.map((h) => ensureDemoImages(drivers.docker(h.name).client, { tags: images })));
    } finally {
      await drivers.close();
    }
    return r;
  }

  hostMap(overrides: Record<string, Partial<Host>> = {}): Map<string, Host> {
    return new Map(this.hosts.map((h) => [h.name, { ...this.spec(h), ...(overrides[h.name] ?? {}) } as Host]));
  }

  spec(h: RemoteHost): Host {
    return { kind: 'ssh', address: h.address, port: h.port, user: h.user, key: `\${secret:${KEY_SECRET}}`, hostKey: h.fingerprint, docker: { socket: h.dockerSocket } };
  }

  /** hosts.yaml declaring every host (optionally with another pinned key for some). */
  hostsYaml(pins: Record<string, string> = {}): string {
    const lines = ['hosts:'];
    for (const h of this.hosts) {
      lines.push(
        `  ${h.name}:`,
        '    kind: ssh',
        `    address: ${h.address}`,
        `    port: ${h.port}`,
        `    user: ${h.user}`,
        `    key: \${secret:${KEY_SECRET}}`,
        `    hostKey: ${pins[h.name] ?? h.fingerprint}`,
        `    docker: { socket: ${h.dockerSocket} }`,
      );
    }
    return lines.join('\n') + '\n';
  }

  /** The engine of a host through its socket, for the test's own checks. */
  docker(name: string): Docker {
    return new Docker({ socketPath: this.get(name).dockerSocket, timeout: 30_000 });
  }

  get(name: string): RemoteHost {
    const h = this.hosts.find((x) => x.name === name);
    if (!h) throw new Error(`no test host ${name}`);
    return h;
  }

  link(name: string, state: 'up' | 'down') {
    return harness('link', this.set, String(this.get(name).index), state);
  }

  sshd(name: string, action: 'stop' | 'start') {
    return harness('sshd', this.set, String(this.get(name).index), action);
  }

  /** Kills the host's SSH sessions (the listener stays): every open connection drops. */
  drop(name: string) {
    return harness('drop', this.set, String(this.get(name).index));
  }

  /** Gives the host a new host key; returns its fingerprint. */
  async rekey(name: string): Promise<string> {
    return (await harness('rekey', this.set, String(this.get(name).index))).trim();
  }

  down() {
    return harness('down', this.set);
  }
}

function harness(...args: string[]): Promise<string> {
  return harnessWith({}, ...args);
}

async function harnessWith(env: Record<string, string>, ...args: string[]): Promise<string> {
  const { stdout } = await run('bash', [SCRIPT, ...args], { env: { ...process.env, ...env }, timeout: 180_000, maxBuffer: 10_000_000 });
  return stdout;
}
