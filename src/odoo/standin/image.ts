// Builds the stand-in Odoo image: the stand-in server bundled into one JS file, run by this
// machine's own `node` binary (copied with the libraries `ldd` lists) next to busybox, with the
// official image's entrypoint and layout. Imported like the demo images (no registry); rebuilt only
// when its content digest changes, so every test file and the demo share one build.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type Dockerode from 'dockerode';
import { build } from 'esbuild';
import { APPLETS, ENTRYPOINT_SCRIPT, errorText, loadBusybox, PATH_ENV, readProgress, splitTag, tarStream, type FsEntry } from '../../demo/images.ts';

export const STANDIN_IMAGE = 'pulser-standin/odoo:17.0';
export const STANDIN_CONTENT_LABEL = 'org.pulser.standin.content';
export const STANDIN_SERIES = '17.0';
export const STANDIN_RELEASE = '17.0.20260101';

const run = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));
const IMPORT_TIMEOUT_MS = 120_000;

const ODOO_WRAPPER = `#!/bin/sh
exec /usr/lib/odoo-standin/node /usr/lib/odoo-standin/odoo.mjs "$@"
`;

const DEFAULT_CONF = `[options]
addons_path = /mnt/extra-addons
data_dir = /var/lib/odoo
`;

/** The stand-in server as one ES module (pg, nodemailer and the manifest parser included). */
export async function bundleStandIn(): Promise<Buffer> {
  const out = await build({
    entryPoints: [path.join(here, 'main.ts')],
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'esm',
    write: false,
    external: ['pg-native'],
    // Bundled CommonJS packages call require() for Node built-ins.
    banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
    logLevel: 'silent',
  });
  return Buffer.from(out.outputFiles[0]!.contents);
}

/** The shared libraries a binary needs, as `ldd` lists them (absolute paths). */
export async function sharedLibraries(binary: string): Promise<string[]> {
  const { stdout } = await run('ldd', [binary], { timeout: 10_000 });
  const libs = new Set<string>();
  for (const line of stdout.split('\n')) {
    const m = /=>\s+(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
    if (m) libs.add(m[1]!);
  }
  return [...libs].sort();
}

interface Layout {
  entries: FsEntry[];
  digest: string;
}

async function layout(): Promise<Layout> {
  const busybox = await loadBusybox();
  const node = process.execPath;
  const [bundle, tables, nodeData, libs] = await Promise.all([bundleStandIn(), readFile(path.join(here, '..', 'tables.sql')), readFile(node), sharedLibraries(node)]);
  const dir = (name: string, mode = 0o755): FsEntry => ({ name, type: 'directory', mode });
  const file = (name: string, data: string | Buffer, mode = 0o644): FsEntry => ({ name, type: 'file', mode, data: typeof data === 'string' ? Buffer.from(data) : data });
  const libEntries: FsEntry[] = [];
  const libDirs = new Set<string>();
  for (const lib of libs) {
    const rel = lib.replace(/^\//, '');
    for (let d = path.posix.dirname(rel); d !== '.'; d = path.posix.dirname(d)) libDirs.add(d);
    libEntries.push(file(rel, await readFile(lib), 0o755));
  }
  const entries: FsEntry[] = [
    dir('bin'),
    file('bin/busybox', busybox.data, 0o755),
    ...APPLETS.map((a): FsEntry => ({ name: `bin/${a}`, type: 'symlink', mode: 0o777, linkname: 'busybox' })),
    ...[...libDirs].sort().filter((d) => d !== 'bin').map((d) => dir(d)),
    ...libEntries,
    dir('usr'),
    dir('usr/bin'),
    dir('usr/lib'),
    dir('usr/lib/odoo-standin'),
    file('usr/lib/odoo-standin/node', nodeData, 0o755),
    file('usr/lib/odoo-standin/odoo.mjs', bundle),
    file('usr/lib/odoo-standin/tables.sql', tables),
    file('usr/bin/odoo', ODOO_WRAPPER, 0o755),
    file('entrypoint.sh', ENTRYPOINT_SCRIPT, 0o755),
    dir('etc'),
    file('etc/passwd', 'root:x:0:0:root:/root:/bin/sh\nodoo:x:101:101:Odoo:/var/lib/odoo:/bin/sh\n'),
    file('etc/group', 'root:x:0:\nodoo:x:101:\n'),
    file('etc/hosts', '127.0.0.1 localhost\n'),
    // Without it glibc asks DNS before /etc/hosts, where Docker writes host.docker.internal.
    file('etc/nsswitch.conf', 'hosts: files dns\n'),
    dir('etc/odoo', 0o777),
    file('etc/odoo/odoo.conf', DEFAULT_CONF, 0o666),
    dir('root', 0o700),
    dir('tmp', 0o1777),
    dir('var'),
    dir('var/lib'),
    dir('var/lib/odoo', 0o777),
    dir('mnt'),
    dir('mnt/extra-addons', 0o777),
  ];
  // Sorted parents first: the tar needs a folder before its files.
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const h = createHash('sha256');
  for (const e of entries) {
    h.update(`${e.type}\0${e.name}\0${e.mode}\0${e.linkname ?? ''}\0`);
    if (e.data) h.update(e.data);
  }
  return { entries, digest: h.digest('hex').slice(0, 16) };
}

function changes(digest: string): string[] {
  return [
    `ENV PATH=${PATH_ENV}`,
    'ENV LANG=C.UTF-8',
    `ENV ODOO_VERSION=${STANDIN_SERIES}`,
    `ENV ODOO_RELEASE=${STANDIN_RELEASE}`,
    'ENV ODOO_RC=/etc/odoo/odoo.conf',
    'EXPOSE 8069',
    `LABEL ${STANDIN_CONTENT_LABEL}=${digest}`,
    'ENTRYPOINT ["/entrypoint.sh"]',
    'CMD ["odoo"]',
  ];
}

async function currentDigest(docker: Dockerode, tag: string): Promise<string | null> {
  try {
    const info = await docker.getImage(tag).inspect();
    return info.Config?.Labels?.[STANDIN_CONTENT_LABEL] ?? null;
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404) return null;
    throw new Error(`inspecting image ${tag} failed: ${errorText(err)}`, { cause: err });
  }
}

const building = new Map<string, Promise<{ tag: string; built: boolean }>>();

/** Makes sure the stand-in image exists with the current content; builds it when missing or stale. */
export function ensureStandInImage(docker: Dockerode, tag = STANDIN_IMAGE, onProgress?: (line: string) => void): Promise<{ tag: string; built: boolean }> {
  let p = building.get(tag);
  if (!p) {
    p = buildIfStale(docker, tag, onProgress).finally(() => building.delete(tag));
    building.set(tag, p);
  }
  return p;
}

/**
 * One build at a time per engine and tag, across processes (test files run in parallel): a lock
 * folder next to the engine's socket path name, taken with mkdir and given up when stale.
 */
async function withBuildLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
  const dir = path.join(tmpdir(), `pulser-standin-${createHash('sha256').update(key).digest('hex').slice(0, 12)}.lock`);
  const deadline = Date.now() + IMPORT_TIMEOUT_MS;
  for (;;) {
    try {
      await mkdir(dir);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const age = Date.now() - (await stat(dir).then((st) => st.mtimeMs, () => Date.now()));
      if (age > IMPORT_TIMEOUT_MS || Date.now() > deadline) await rm(dir, { recursive: true, force: true });
      else await new Promise((r) => setTimeout(r, 250));
    }
  }
  try {
    return await fn();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function buildIfStale(docker: Dockerode, tag: string, onProgress?: (line: string) => void): Promise<{ tag: string; built: boolean }> {
  const l = await layout();
  if ((await currentDigest(docker, tag)) === l.digest) return { tag, built: false };
  const socket = (docker.modem as { socketPath?: string }).socketPath ?? 'docker';
  return withBuildLock(`${socket}\0${tag}`, async () => {
    // Another process may have built it while this one waited.
    if ((await currentDigest(docker, tag)) === l.digest) return { tag, built: false };
    const previous = await docker.getImage(tag).inspect().then((i) => i.Id, () => null);
    const out = await importStandIn(docker, tag, l, onProgress);
    // The replaced image is 100 MB of dangling layers; it goes unless a container still uses it.
    if (previous) await docker.getImage(previous).remove().catch(() => undefined);
    return out;
  });
}

async function importStandIn(docker: Dockerode, tag: string, l: Layout, onProgress?: (line: string) => void): Promise<{ tag: string; built: boolean }> {
  const { repo, tag: version } = splitTag(tag);
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), IMPORT_TIMEOUT_MS);
  const tar = tarStream(l.entries);
  onProgress?.(`${tag}: importing the stand-in Odoo (${(await stat(process.execPath)).size >> 20} MiB node)`);
  try {
    const res = (await docker.importImage(tar.stream, { repo, tag: version, changes: changes(l.digest), abortSignal: ac.signal } as Record<string, unknown>)) as NodeJS.ReadableStream;
    await readProgress(res, ac.signal, (line) => onProgress?.(`${tag}: ${line}`));
    if ((await currentDigest(docker, tag)) !== l.digest) throw new Error(`image ${tag} was imported but does not carry the expected content label`);
    return { tag, built: true };
  } catch (err) {
    tar.destroy();
    throw new Error(`building stand-in image ${tag} failed: ${ac.signal.aborted ? 'timed out' : errorText(err)}`, { cause: err });
  } finally {
    clearTimeout(timer);
    tar.stream.destroy();
  }
}
