// Drivers by host: the one place where a host name becomes a way to reach its engines. Local hosts
// use this machine's socket and network; ssh and digitalocean hosts go through one persistent SSH
// connection each, so reconcilers never know which kind of host they work on.
import net from 'node:net';
import { readFile, statfs } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import type { Duplex } from 'node:stream';
import Docker from 'dockerode';
import type { Host } from '../spec/types.gen.ts';
import { PulserError } from '../errors.ts';
import { parseReferences } from '../spec/load.ts';
import { DockerDriver, type DockerDriverOptions } from './docker.ts';
import { probeHttp, type ProbeResult } from './http.ts';
import { asSocketLike, SshConnection, type ExecOptions, type ExecResult, type FsStats, type SshOptions } from './ssh.ts';
import { PgPools, type Db, type PgTarget, type TcpConnect } from './postgres.ts';
import { DigitalOceanClient } from './digitalocean.ts';
import { fetchMirror } from './gitrepo.ts';
import type { RepoUrlPolicy } from '../spec/rules/repo-url.ts';
import { SecretSource } from '../spec/secrets.ts';

export { DockerDriver, LABEL, type ContainerSummary } from './docker.ts';
export { probeHttp, describeProbe, type ProbeResult } from './http.ts';
export { RemoteFiles, SFTP_STATUS, sftpStatus } from './sftp.ts';
export { SshConnection, sshFingerprint, remoteCommand, shellQuote, diskUsedRatio, type ExecResult, type FsStats, type SshOptions } from './ssh.ts';

export type LocalHostSpec = Extract<Host, { kind: 'local' }>;
export type RemoteHostSpec = Extract<Host, { kind: 'ssh' | 'digitalocean' }>;
export type { Db, PgTarget } from './postgres.ts';

export interface Drivers {
  docker(host: string): DockerDriver;
  /** HTTP probe of a port published on the host (over an SSH forward for remote hosts) */
  probe(host: string, port: number, path: string, timeoutMs: number, bind?: string): Promise<ProbeResult>;
  /**
   * A TCP stream to `address:port` as seen from the host: `net.connect` on a local host, an SSH
   * `forwardOut` on a remote one. The stream is connected when the promise resolves; the caller
   * ends it. Rejects with a coded error (PULSER_E_SSH_UNREACHABLE, PULSER_E_SSH_CHANNEL, PULSER_E_TIMEOUT, PULSER_E_DOCKER_UNREACHABLE…).
   * The PostgreSQL client connects through here (`pg`'s `stream` option).
   */
  tcp(host: string, address: string, port: number): Promise<Duplex>;
  /** Runs argv on the host itself (never through a shell built from input), killed at its timeout. */
  exec(host: string, argv: readonly string[], opts?: ExecOptions): Promise<ExecResult>;
  /** Sizes of the file system holding `path` on the host (no process started: statfs / SFTP statvfs). */
  fsStats(host: string, path: string): Promise<FsStats>;
  /** A small file of the host, such as /proc/meminfo (read directly or over SFTP). */
  readHostFile(host: string, path: string): Promise<string>;
  /** The SSH connection of a remote host (null for a local one). */
  ssh(host: string): SshConnection | null;
  /** Resolves a `${secret:NAME}` field of hosts.yaml (an API token…). */
  secret(ref: string, what: string): Promise<string>;
  /** The DigitalOcean API of a droplet host, with the API address and token of its declaration here. */
  digitalOcean(host: string): DigitalOceanClient;
  /** Brings pulser's bare mirror of an addon repository up to date (git fetch from `url`). */
  fetchMirror(dir: string, url: string, policy: RepoUrlPolicy, timeoutMs?: number): Promise<void>;
  /** Where a droplet turned out to be: its address, once the DigitalOcean API reported it. */
  learnAddress(host: string, address: string): void;
  /** A database as pulser reaches it from this machine for that host (local hosts: plain TCP). */
  db(host: string, target: PgTarget): Db;
  hostNames(): string[];
  /** Forgets shared listings of a host, so the next observation reads the engine afresh. */
  invalidate(host: string): void;
  close(): Promise<void>;
}

export interface DriversOptions extends DockerDriverOptions {
  ssh?: SshOptions;
  /** resolves `${secret:NAME}` of hosts.yaml (SSH keys, API tokens) when a connection needs it */
  secret?: (name: string) => Promise<string | undefined>;
}

const DEFAULT_REMOTE_SOCKET = '/var/run/docker.sock';
const TCP_TIMEOUT_MS = 10_000;

/** The local engine's socket: `$DOCKER_HOST` when it is a unix:// address, else the usual path. */
export function defaultDockerSocket(): string {
  const env = process.env.DOCKER_HOST;
  if (env?.startsWith('unix://')) return env.slice('unix://'.length);
  return '/var/run/docker.sock';
}

export function localSocketPath(host: LocalHostSpec): string {
  return host.docker?.socket ?? defaultDockerSocket();
}

export function remoteSocketPath(host: RemoteHostSpec): string {
  return host.docker?.socket ?? DEFAULT_REMOTE_SOCKET;
}

/** Resolves a `${secret:NAME}` field of hosts.yaml. */
export async function resolveSecretRef(ref: string, secret: ((name: string) => Promise<string | undefined>) | undefined, what: string): Promise<string> {
  const piece = parseReferences(ref).pieces[0];
  if (!piece || piece.kind !== 'secret') throw new PulserError('PULSER_E_REF_SYNTAX', `${what}: expected \${secret:NAME}`);
  const v = await (secret ?? ((n: string) => new SecretSource().forSpec(n)))(piece.arg);
  if (v === undefined) throw new PulserError('PULSER_E_SECRET_MISSING', `${what}: \${secret:${piece.arg}} is not set`);
  return v;
}

function connectLocal(address: string, port: number): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: address, port });
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new PulserError('PULSER_E_TIMEOUT', `connecting to ${address}:${port} did not finish within ${TCP_TIMEOUT_MS} ms`));
    }, TCP_TIMEOUT_MS);
    sock.once('connect', () => {
      clearTimeout(timer);
      resolve(sock);
    });
    sock.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(new PulserError('PULSER_E_DOCKER_UNREACHABLE', `connecting to ${address}:${port} failed: ${err.code ?? err.message}`, { cause: err }));
    });
  });
}

function execLocal(argv: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
  const started = performance.now();
  const max = opts.maxOutputBytes ?? 1_000_000;
  return new Promise((resolve) => {
    execFile(argv[0], argv.slice(1), { timeout: opts.timeoutMs ?? 30_000, killSignal: 'SIGKILL', maxBuffer: max, encoding: 'utf8' }, (err, stdout, stderr) => {
      const e = err as (NodeJS.ErrnoException & { killed?: boolean; signal?: string; code?: number | string }) | null;
      const truncated = e?.code === 'ERR_CHILD_PROCESS_STDIO_MAXBUFFER';
      resolve({
        exitCode: e ? (typeof e.code === 'number' ? e.code : e.killed || truncated ? null : 127) : 0,
        signal: e?.signal ?? null,
        stdout: stdout.slice(0, max),
        stderr: e && typeof e.code === 'string' && !truncated ? `${stderr}${e.message}` : stderr,
        truncated,
        timedOut: Boolean(e?.killed) && !truncated,
        durationMs: Math.round(performance.now() - started),
      });
    });
  });
}

export function createDrivers(hosts: Map<string, Host>, opts: DriversOptions = {}): Drivers {
  const dockers = new Map<string, DockerDriver>();
  const conns = new Map<string, SshConnection>();
  const learned = new Map<string, string>();
  const pools = new PgPools();
  const forwards = new Map<string, TcpConnect>();
  const apis = new Map<string, DigitalOceanClient>();
  const hostOf = (name: string): Host => {
    const h = hosts.get(name);
    if (!h) throw new PulserError('PULSER_E_HOST_UNKNOWN', `host ${name} is not declared in environments/hosts.yaml`);
    return h;
  };
  const sshOf = (name: string): SshConnection | null => {
    const h = hostOf(name);
    if (h.kind === 'local') return null;
    let c = conns.get(name);
    if (!c) {
      const remote = h as RemoteHostSpec;
      const address = remote.address ?? learned.get(name) ?? '';
      c = new SshConnection(
        {
          host: name,
          address,
          port: remote.port ?? 22,
          user: remote.user,
          hostKey: remote.hostKey,
          privateKey: () => resolveSecretRef(remote.key, opts.secret, `host ${name}: key`),
        },
        opts.ssh,
      );
      conns.set(name, c);
    }
    if (!c.target.address) {
      throw new PulserError('PULSER_E_DROPLET_NOT_READY', `host ${name}: the droplet's address is not known yet (it has no public IPv4 address, or the hosts reconciler has not observed it)`);
    }
    return c;
  };
  const drivers: Drivers = {
    docker(name) {
      let d = dockers.get(name);
      if (!d) {
        const h = hostOf(name);
        if (h.kind === 'local') d = DockerDriver.forSocket(name, localSocketPath(h), opts);
        else {
          const conn = sshOf(name)!;
          const agent = conn.dockerAgent(remoteSocketPath(h as RemoteHostSpec));
          d = new DockerDriver(name, new Docker({ protocol: 'http', host: 'docker', port: 80, agent, timeout: opts.timeoutMs ?? 30_000 } as Docker.DockerOptions), opts);
        }
        dockers.set(name, d);
      }
      return d;
    },
    async probe(name, port, path, timeoutMs, bind = '127.0.0.1') {
      const addr = bind === '0.0.0.0' ? '127.0.0.1' : bind;
      const conn = sshOf(name);
      const url = `http://${addr}:${port}${path}`;
      if (!conn) return probeHttp(url, timeoutMs);
      return probeHttp(url, timeoutMs, (cb) => {
        conn.forwardOut(addr, port).then(
          (ch) => cb(null, asSocketLike(ch)),
          (err: Error) => cb(err),
        );
      });
    },
    async tcp(name, address, port) {
      const conn = sshOf(name);
      if (!conn) return connectLocal(address, port);
      return asSocketLike(await conn.forwardOut(address, port));
    },
    async exec(name, argv, execOpts) {
      const conn = sshOf(name);
      if (!conn) return execLocal(argv, execOpts);
      return conn.exec(argv, execOpts);
    },
    async fsStats(name, path) {
      const conn = sshOf(name);
      if (conn) return conn.statvfs(path);
      const s = await statfs(path);
      return { totalBytes: s.blocks * s.bsize, freeBytes: s.bfree * s.bsize, availableBytes: s.bavail * s.bsize };
    },
    async readHostFile(name, path) {
      const conn = sshOf(name);
      if (conn) return conn.readFile(path);
      return readFile(path, 'utf8');
    },
    ssh: (name) => sshOf(name),
    secret: (ref, what) => resolveSecretRef(ref, opts.secret, what),
    digitalOcean(name) {
      const h = hostOf(name);
      if (h.kind !== 'digitalocean') throw new PulserError('PULSER_E_INTERNAL', `host ${name} is no digitalocean host`);
      let c = apis.get(name);
      if (!c) {
        c = new DigitalOceanClient({ baseUrl: h.api, token: () => resolveSecretRef(h.token, opts.secret, `host ${name}: token`) });
        apis.set(name, c);
      }
      return c;
    },
    fetchMirror: (dir, url, policy, timeoutMs) => fetchMirror(dir, url, policy, timeoutMs),
    learnAddress(name, address) {
      learned.set(name, address);
      const c = conns.get(name);
      const h = hostOf(name);
      if (c && h.kind === 'digitalocean' && !h.address && c.target.address !== address) {
        c.drop();
        c.target.address = address;
      }
    },
    db(name, target) {
      hostOf(name);
      // Remote databases go through the host's SSH connection; one transport per host keeps one pool per target.
      if (!sshOf(name)) return pools.get(target);
      let via = forwards.get(name);
      if (!via) {
        via = (address, port) => drivers.tcp(name, address, port);
        forwards.set(name, via);
      }
      return pools.get(target, via);
    },
    hostNames: () => [...hosts.keys()],
    invalidate(name) {
      dockers.get(name)?.invalidate();
    },
    async close() {
      dockers.clear();
      await Promise.all([...conns.values()].map((c) => c.close()));
      conns.clear();
      await pools.close();
    },
  };
  return drivers;
}
