// The Docker driver: the only code that talks to a Docker engine. One instance per host; a
// snapshot of the host's containers is shared by every environment observed in the same moment,
// so a pass over many environments lists each host once.
import Docker from 'dockerode';
import { Writable } from 'node:stream';
import { pack } from 'tar-stream';
import { PulserError } from '../errors.ts';
import { program } from '../core/argv.ts';

export const LABEL = {
  managedBy: 'io.pulser.managed-by',
  env: 'io.pulser.env',
  service: 'io.pulser.service',
  specHash: 'io.pulser.spec-hash',
  spec: 'io.pulser.spec',
} as const;

export interface ContainerSummary {
  id: string;
  name: string;
  /** image reference the container was created from (an image id when the tag has moved since) */
  image: string;
  imageId: string;
  state: string;
  status: string;
  labels: Record<string, string>;
  /** seconds since epoch */
  created: number;
  ports: { ip?: string; privatePort: number; publicPort?: number; type: string }[];
}

export interface ExecOutcome {
  exitCode: number | null;
  /** stdout and stderr interleaved, at most maxOutputBytes */
  output: string;
  truncated: boolean;
  timedOut: boolean;
  durationMs: number;
}

export interface ImageInfo {
  id: string;
  repoTags: string[];
}

export interface DockerDriverOptions {
  /** per-call timeout for API calls (a stream such as a pull counts as idle timeout) */
  timeoutMs?: number;
  /** how long a listing may be reused by concurrent observers */
  snapshotTtlMs?: number;
}

export interface FileToPut {
  name: string;
  content: string;
  mode?: number;
}

export class DockerDriver {
  readonly host: string;
  readonly client: Docker;
  private readonly timeoutMs: number;
  private readonly snapshotTtlMs: number;
  private snapshotPromise: Promise<ContainerSummary[]> | null = null;
  private snapshotAt = 0;
  private generation = 0;

  constructor(host: string, client: Docker, opts: DockerDriverOptions = {}) {
    this.host = host;
    this.client = client;
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.snapshotTtlMs = opts.snapshotTtlMs ?? 1_000;
  }

  static forSocket(host: string, socketPath: string, opts: DockerDriverOptions = {}): DockerDriver {
    return new DockerDriver(host, new Docker({ socketPath, timeout: opts.timeoutMs ?? 30_000 }), opts);
  }

  /** Every container on the host, running or not. Shared between callers for a short time. */
  async containers(): Promise<ContainerSummary[]> {
    const fresh = Date.now() - this.snapshotAt < this.snapshotTtlMs;
    if (this.snapshotPromise && fresh) return this.snapshotPromise;
    const gen = this.generation;
    const p = this.call('list containers', async () => {
      const list = await this.client.listContainers({ all: true });
      return list.map(toSummary);
    });
    this.snapshotPromise = p;
    this.snapshotAt = Date.now();
    p.catch(() => {
      if (this.generation === gen && this.snapshotPromise === p) this.snapshotPromise = null;
    });
    return p;
  }

  /** Drops the shared listing: called after every write so the next observer sees the change. */
  invalidate(): void {
    this.generation++;
    this.snapshotPromise = null;
    this.snapshotAt = 0;
  }

  /** The engine's version (`20.10.24`…). */
  async version(): Promise<string> {
    const v = await this.call('version', () => this.client.version());
    return v.Version;
  }

  async ping(): Promise<void> {
    await this.call('ping', () => this.client.ping());
  }

  async image(ref: string): Promise<ImageInfo | null> {
    try {
      const info = await this.call(`inspect image ${ref}`, () => this.client.getImage(ref).inspect());
      return { id: info.Id, repoTags: info.RepoTags ?? [] };
    } catch (err) {
      if (err instanceof PulserError && err.details?.statusCode === 404) return null;
      throw err;
    }
  }

  /** Pulls an image, reporting progress lines; a missing image or unreachable registry is ImageNotFound. */
  async pull(ref: string, onProgress: (line: string) => void): Promise<void> {
    let stream: NodeJS.ReadableStream;
    try {
      stream = await this.call(`pull ${ref}`, () => this.client.pull(ref) as Promise<NodeJS.ReadableStream>);
    } catch (err) {
      throw new PulserError('PULSER_E_IMAGE_NOT_FOUND', `image ${ref} is not on host ${this.host} and could not be pulled: ${(err as Error).message}`, { cause: err });
    }
    await new Promise<void>((resolve, reject) => {
      this.client.modem.followProgress(
        stream,
        (err: Error | null, output: { error?: string }[]) => {
          const failed = err?.message ?? output.find((o) => o.error)?.error;
          if (failed) reject(new PulserError('PULSER_E_IMAGE_NOT_FOUND', `pulling ${ref} on host ${this.host} failed: ${failed}`));
          else resolve();
        },
        (event: { status?: string; progress?: string; id?: string }) => {
          if (event.status) onProgress([event.id, event.status, event.progress].filter(Boolean).join(' '));
        },
      );
    });
  }

  async create(options: Docker.ContainerCreateOptions): Promise<string> {
    const c = await this.write(`create container ${options.name ?? ''}`, () => this.client.createContainer(options));
    return c.id;
  }

  /** Copies files into a container (created or running) as one tar stream. */
  async putFiles(id: string, dir: string, files: FileToPut[]): Promise<void> {
    const tar = pack();
    for (const f of files) tar.entry({ name: f.name, mode: f.mode ?? 0o644 }, f.content);
    tar.finalize();
    await this.call(`copy files into ${id.slice(0, 12)}`, () => this.client.getContainer(id).putArchive(tar as unknown as NodeJS.ReadableStream, { path: dir }));
  }

  /** A tar stream of `path` inside a container (the Docker archive endpoint); null when the path is missing. */
  async archiveOut(id: string, path: string): Promise<NodeJS.ReadableStream | null> {
    try {
      return await this.call(`read ${path} of ${id.slice(0, 12)}`, () => this.client.getContainer(id).getArchive({ path }));
    } catch (err) {
      if (err instanceof PulserError && err.details?.statusCode === 404) return null;
      throw err;
    }
  }

  /** Extracts a tar stream into `dir` inside a container; the call lasts as long as the upload. */
  async archiveIn(id: string, dir: string, tar: NodeJS.ReadableStream, timeoutMs: number): Promise<void> {
    await this.call(`write into ${dir} of ${id.slice(0, 12)}`, () => this.client.getContainer(id).putArchive(tar, { path: dir }), [], timeoutMs);
  }

  async start(id: string): Promise<void> {
    await this.write(`start ${id.slice(0, 12)}`, () => this.client.getContainer(id).start(), [304]);
  }

  async setRestartPolicy(id: string, name: string): Promise<void> {
    await this.call(`set restart policy of ${id.slice(0, 12)}`, () => this.client.getContainer(id).update({ RestartPolicy: { Name: name } }));
  }

  async unpause(id: string): Promise<void> {
    await this.write(`unpause ${id.slice(0, 12)}`, () => this.client.getContainer(id).unpause(), [304]);
  }

  async stop(id: string, graceSeconds = 10): Promise<void> {
    await this.write(`stop ${id.slice(0, 12)}`, () => this.client.getContainer(id).stop({ t: graceSeconds }), [304]);
  }

  async remove(id: string): Promise<void> {
    await this.write(`remove ${id.slice(0, 12)}`, () => this.client.getContainer(id).remove({ force: true, v: true }), [404]);
  }

  async rename(id: string, name: string): Promise<void> {
    await this.write(`rename ${id.slice(0, 12)} to ${name}`, () => this.client.getContainer(id).rename({ name }));
  }

  async inspect(id: string): Promise<Docker.ContainerInspectInfo | null> {
    try {
      return await this.call(`inspect ${id.slice(0, 12)}`, () => this.client.getContainer(id).inspect());
    } catch (err) {
      if (err instanceof PulserError && err.details?.statusCode === 404) return null;
      throw err;
    }
  }

  /** Waits until a started container exits (a one-off command) and returns its exit code. */
  async waitExit(id: string, timeoutMs: number): Promise<number> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new PulserError('PULSER_E_TIMEOUT', `docker on host ${this.host}: ${id.slice(0, 12)} did not exit within ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      const res = (await Promise.race([this.client.getContainer(id).wait(), timeout])) as { StatusCode: number };
      return res.StatusCode;
    } finally {
      clearTimeout(timer);
      this.invalidate();
    }
  }

  /** The last lines a container wrote (stdout and stderr interleaved), as text. */
  async logTail(id: string, lines = 40): Promise<string> {
    const buf = await this.call(`logs ${id.slice(0, 12)}`, () =>
      this.client.getContainer(id).logs({ stdout: true, stderr: true, tail: lines, follow: false }),
    );
    return demuxToText(buf as unknown as Buffer);
  }

  /**
   * Log lines written since `since` (unix seconds), at most the last `maxLines`, each starting
   * with the engine's fixed-width RFC 3339 timestamp (so they compare as strings).
   */
  async logsSince(id: string, since: number, maxLines = 5000): Promise<string> {
    const buf = await this.call(`logs ${id.slice(0, 12)}`, () =>
      this.client.getContainer(id).logs({ stdout: true, stderr: true, follow: false, timestamps: true, since: Math.floor(since), tail: maxLines }),
    );
    return demuxToText(buf as unknown as Buffer);
  }

  /**
   * Runs argv inside a running container (docker exec, a Cmd array: no shell). The process runs
   * under `timeout -s KILL`, so it is killed inside the container when its time is up; output
   * beyond `maxOutputBytes` is dropped.
   */
  async exec(id: string, argv: readonly string[], opts: { timeoutMs: number; maxOutputBytes: number }): Promise<ExecOutcome> {
    const started = performance.now();
    const seconds = Math.max(1, Math.ceil(opts.timeoutMs / 1000));
    const container = this.client.getContainer(id);
    const exec = await this.call(`exec in ${id.slice(0, 12)}`, () =>
      container.exec({ Cmd: ['timeout', '-s', 'KILL', String(seconds), ...program(argv)], AttachStdout: true, AttachStderr: true, Tty: false }),
    );
    const stream = await this.call(`start exec in ${id.slice(0, 12)}`, () => exec.start({ hijack: true, stdin: false }));
    const out: Buffer[] = [];
    let size = 0;
    let truncated = false;
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        const room = opts.maxOutputBytes - size;
        if (chunk.length > room) truncated = true;
        if (room > 0) {
          out.push(chunk.subarray(0, room));
          size += Math.min(room, chunk.length);
        }
        cb();
      },
    });
    let timedOut = false;
    await new Promise<void>((resolve) => {
      // The engine ends the stream when the process exits; the guard covers a stuck engine.
      const guard = setTimeout(() => {
        timedOut = true;
        stream.destroy();
        resolve();
      }, opts.timeoutMs + 5_000);
      this.client.modem.demuxStream(stream, sink, sink);
      stream.on('end', done);
      stream.on('close', done);
      stream.on('error', done);
      function done() {
        clearTimeout(guard);
        resolve();
      }
    });
    const info = await this.call(`inspect exec in ${id.slice(0, 12)}`, () => exec.inspect());
    const exitCode = info.Running ? null : info.ExitCode;
    // `timeout -s KILL` makes a killed process exit 137.
    if (exitCode === 137 && performance.now() - started >= opts.timeoutMs - 100) timedOut = true;
    return { exitCode, output: Buffer.concat(out).toString('utf8'), truncated, timedOut, durationMs: Math.round(performance.now() - started) };
  }

  async restart(id: string, graceSeconds = 10): Promise<void> {
    await this.write(`restart ${id.slice(0, 12)}`, () => this.client.getContainer(id).restart({ t: graceSeconds }));
  }

  /**
   * A container's log as the engine sends it (multiplexed frames unless the container has a TTY),
   * streamed rather than buffered. `since`/`until` are unix seconds; the caller ends the stream and
   * may abort it with `signal`.
   */
  async logStream(id: string, opts: { since?: number; until?: number; signal?: AbortSignal } = {}): Promise<NodeJS.ReadableStream> {
    const options: Record<string, unknown> = { stdout: true, stderr: true, follow: false };
    if (opts.since !== undefined) options.since = opts.since;
    if (opts.until !== undefined) options.until = opts.until;
    return this.call(`logs ${id.slice(0, 12)}`, () =>
      new Promise<NodeJS.ReadableStream>((resolve, reject) => {
        this.client.modem.dial(
          {
            path: `/containers/${id}/logs?`,
            method: 'GET',
            // isStream: the body is handed over as it arrives instead of being collected.
            isStream: true,
            abortSignal: opts.signal,
            statusCodes: { 200: true, 404: 'no such container', 500: 'server error' },
            options,
          },
          (err: unknown, data: unknown) => (err ? reject(err) : resolve(data as NodeJS.ReadableStream)),
        );
      }),
    );
  }

  /**
   * An engine call that changes containers. The shared listing is dropped before it and again once
   * it has finished: a listing another observer started while the call was under way may predate it.
   */
  private async write<T>(what: string, fn: () => Promise<T>, okStatuses: number[] = []): Promise<T> {
    this.invalidate();
    try {
      return await this.call(what, fn, okStatuses);
    } finally {
      this.invalidate();
    }
  }

  /** Runs one engine call with a timeout and turns failures into coded errors. */
  private async call<T>(what: string, fn: () => Promise<T>, okStatuses: number[] = [], timeoutMs = this.timeoutMs): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new PulserError('PULSER_E_TIMEOUT', `docker on host ${this.host}: ${what} did not answer within ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    try {
      return await Promise.race([fn(), timeout]);
    } catch (err) {
      if (err instanceof PulserError) throw err;
      const e = err as { statusCode?: number; code?: string; message?: string; json?: { message?: string } };
      if (e.statusCode !== undefined && okStatuses.includes(e.statusCode)) return undefined as T;
      if (e.code === 'ECONNREFUSED' || e.code === 'ENOENT' || e.code === 'EACCES' || e.code === 'ECONNRESET') {
        throw new PulserError('PULSER_E_DOCKER_UNREACHABLE', `docker on host ${this.host} is unreachable (${e.code}) during ${what}`, { cause: err });
      }
      const message = e.json?.message ?? e.message ?? String(err);
      throw new PulserError('PULSER_E_DOCKER_API', `docker on host ${this.host}: ${what} failed: ${message.trim()}`, {
        cause: err,
        details: { statusCode: e.statusCode ?? null },
      });
    } finally {
      clearTimeout(timer);
    }
  }
}

function toSummary(c: Docker.ContainerInfo): ContainerSummary {
  return {
    id: c.Id,
    name: (c.Names[0] ?? '').replace(/^\//, ''),
    image: c.Image,
    imageId: c.ImageID,
    state: c.State,
    status: c.Status,
    labels: c.Labels ?? {},
    created: c.Created,
    ports: (c.Ports ?? []).map((p) => ({ ip: p.IP, privatePort: p.PrivatePort, publicPort: p.PublicPort, type: p.Type })),
  };
}

/** Docker multiplexes stdout/stderr of non-TTY containers in 8-byte-header frames. */
export function demuxToText(buf: Buffer): string {
  const out: Buffer[] = [];
  let i = 0;
  while (i + 8 <= buf.length && (buf[i] === 1 || buf[i] === 2 || buf[i] === 0) && buf[i + 1] === 0) {
    const len = buf.readUInt32BE(i + 4);
    out.push(buf.subarray(i + 8, i + 8 + len));
    i += 8 + len;
  }
  if (i === 0) return buf.toString('utf8');
  return Buffer.concat(out).toString('utf8');
}
