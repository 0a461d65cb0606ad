// Drivers by host: the one place where a host name becomes a way to reach its engines.
import type { Host } from '../spec/types.gen.ts';
import { PulserError } from '../errors.ts';
import { DockerDriver, type DockerDriverOptions } from './docker.ts';
import { probeHttp, type ProbeResult } from './http.ts';
import { PgPools, type Db, type PgTarget } from './postgres.ts';

export { DockerDriver, LABEL, type ContainerSummary } from './docker.ts';
export { probeHttp, describeProbe, type ProbeResult } from './http.ts';

export interface Drivers {
  docker(host: string): DockerDriver;
  /** HTTP probe of a port published on the host */
  probe(host: string, port: number, path: string, timeoutMs: number, bind?: string): Promise<ProbeResult>;
  /** A database of the host's environments, as reached from this machine (pooled). */
  postgres(host: string, target: PgTarget): Db;
  hostNames(): string[];
  /** Forgets shared listings of a host, so the next observation reads the engine afresh. */
  invalidate(host: string): void;
  close(): Promise<void>;
}

/** The local engine's socket: `$DOCKER_HOST` when it is a unix:// address, else the usual path. */
export function defaultDockerSocket(): string {
  const env = process.env.DOCKER_HOST;
  if (env?.startsWith('unix://')) return env.slice('unix://'.length);
  return '/var/run/docker.sock';
}

export function localSocketPath(host: Extract<Host, { kind: 'local' }>): string {
  return host.docker?.socket ?? defaultDockerSocket();
}

export function createDrivers(hosts: Map<string, Host>, opts: DockerDriverOptions = {}): Drivers {
  const dockers = new Map<string, DockerDriver>();
  const pg = new PgPools();
  const hostOf = (name: string): Host => {
    const h = hosts.get(name);
    if (!h) throw new PulserError('PULSER_E_HOST_UNKNOWN', `host ${name} is not declared in environments/hosts.yaml`);
    return h;
  };
  return {
    docker(name) {
      let d = dockers.get(name);
      if (!d) {
        const h = hostOf(name);
        d = DockerDriver.forSocket(name, localSocketPath(h), opts);
        dockers.set(name, d);
      }
      return d;
    },
    async probe(name, port, path, timeoutMs, bind = '127.0.0.1') {
      hostOf(name);
      const addr = bind === '0.0.0.0' ? '127.0.0.1' : bind;
      return probeHttp(`http://${addr}:${port}${path}`, timeoutMs);
    },
    postgres(name, target) {
      hostOf(name);
      return pg.get(target);
    },
    hostNames: () => [...hosts.keys()],
    invalidate(name) {
      dockers.get(name)?.invalidate();
    },
    async close() {
      dockers.clear();
      await pg.close();
    },
  };
}
