/**
 * Small stand-in Odoo images, built locally (no registry needed).
 *
 * Each image is a tiny root filesystem streamed as a tar into the engine's
 * image import (`POST /images/create?fromSrc=-`):
 *
 *   /bin/busybox (+ links: sh, httpd, cat, sleep, ...)  the host's static busybox
 *   /entrypoint.sh   mirrors the official `odoo` image's entrypoint
 *   /usr/bin/odoo    a busybox-sh script standing in for the Odoo server: reads
 *                    `-c CONF` (default $ODOO_RC), takes http_port from the
 *                    [options] section (default 8069), writes Odoo-style log
 *                    lines, then serves /www with busybox httpd
 *   /www/web/health  {"status": "pass"}  (absent in the `missing` variant → 404)
 *   /www/web/login   a tiny page showing the version
 *   /www/version.txt the version
 *   /etc/odoo/odoo.conf  default configuration (folder and file writable)
 *
 * Image config like the official image: ENTRYPOINT ["/entrypoint.sh"],
 * CMD ["odoo"], EXPOSE 8069, ENV ODOO_RC=/etc/odoo/odoo.conf.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import type Dockerode from 'dockerode';
import { pack as tarPack } from 'tar-stream';

export type StandInHealth = 'ok' | 'missing' | 'crash';

export interface StandInVariant {
  /** Version text shown in logs, /web/login and /version.txt. */
  version: string;
  /** ok: healthy; missing: no /web/health (404); crash: exits 3 after its start-up log lines. */
  health: StandInHealth;
}

/** The demo images and what each one is. */
export const DEMO_VARIANTS: Readonly<Record<string, StandInVariant>> = Object.freeze({
  'pulser-demo/odoo:17.0.1': { version: '17.0.1', health: 'ok' },
  'pulser-demo/odoo:17.0.2': { version: '17.0.2', health: 'ok' },
  'pulser-demo/odoo:17.0.3': { version: '17.0.3', health: 'ok' },
  'pulser-demo/odoo:broken': { version: '17.0-broken', health: 'missing' },
  'pulser-demo/odoo:crash': { version: '17.0-crash', health: 'crash' },
});

/** Tags of the demo images. */
export const DEMO_IMAGES: readonly string[] = Object.freeze(Object.keys(DEMO_VARIANTS));

/** Exit code of the `crash` variant. */
export const CRASH_EXIT_CODE = 3;

/** Label holding a digest of the image's content; an image whose label differs is rebuilt. */
export const CONTENT_LABEL = 'org.pulser.demo.content';
export const VERSION_LABEL = 'org.pulser.demo.version';
export const VARIANT_LABEL = 'org.pulser.demo.health';

const IMPORT_TIMEOUT_MS = 60_000;
const BUSYBOX_CANDIDATES = ['/bin/busybox', '/usr/bin/busybox'];
const BUSYBOX_HINT = 'apt-get install -y busybox-static';

/** Busybox applets linked in /bin. */
export const APPLETS = (
  'sh ash httpd cat sleep echo printf ls env awk sed grep date wget nc ps kill mkdir rm cp ' +
  'mv ln touch chmod chown true false test [ id hostname head tail tr cut wc sort uname ' +
  'which find xargs tee stat timeout pwd basename dirname vi less netstat top du df md5sum ' +
  'sha256sum gzip gunzip tar'
).split(' ');

export const PATH_ENV = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

// ---------------------------------------------------------------- scripts ---

/**
 * Tag for shell scripts: the raw text, where `$\{` stands for `${` (which a
 * template literal would otherwise interpolate).
 */
function sh(strings: TemplateStringsArray): string {
  return strings.raw.join('').replaceAll('$\\{', '${');
}

/** Stand-in for the Odoo server (busybox sh). */
export const ODOO_SCRIPT = sh`#!/bin/sh
# Stand-in for the Odoo server: same command line and configuration file as
# the real one, Odoo-style log lines, then busybox httpd serving /www.
VERSION="$(cat /etc/odoo-standin/version 2>/dev/null || echo unknown)"
HEALTH="$(cat /etc/odoo-standin/health 2>/dev/null || echo ok)"

ms() { cut -d' ' -f1 /proc/uptime | cut -d. -f2 | cut -c1-2 | sed 's/$/0/'; }
log() {
  lvl=$1; logger=$2; shift 2
  echo "$(date -u '+%Y-%m-%d %H:%M:%S'),$(ms) $$ $lvl ? $logger: $*" >&2
}
die() { log ERROR odoo "$*"; exit 1; }

conf="$\{ODOO_RC:-/etc/odoo/odoo.conf}"
port=
db_name=
db_host=
db_port=
db_user=
stop_after_init=
update=

need() { [ "$1" -ge 2 ] || die "option $2 requires a value"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --version) echo "Odoo Server $VERSION"; exit 0 ;;
    -c | --config) need $# "$1"; conf="$2"; shift 2 ;;
    --config=*) conf="$\{1#--config=}"; shift ;;
    -p | --http-port) need $# "$1"; port="$2"; shift 2 ;;
    --http-port=*) port="$\{1#--http-port=}"; shift ;;
    -d | --database) need $# "$1"; db_name="$2"; shift 2 ;;
    --database=*) db_name="$\{1#--database=}"; shift ;;
    --db_host) need $# "$1"; db_host="$2"; shift 2 ;;
    --db_host=*) db_host="$\{1#--db_host=}"; shift ;;
    --db_port) need $# "$1"; db_port="$2"; shift 2 ;;
    --db_port=*) db_port="$\{1#--db_port=}"; shift ;;
    -r | --db_user) need $# "$1"; db_user="$2"; shift 2 ;;
    --db_user=*) db_user="$\{1#--db_user=}"; shift ;;
    -u | -i | --update | --init) need $# "$1"; update="$2"; shift 2 ;;
    --update=* | --init=*) update="$\{1#*=}"; shift ;;
    --stop-after-init) stop_after_init=1; shift ;;
    --*=*) shift ;;
    -*)
      # Unknown option: take its value along when one follows.
      if [ $# -ge 2 ] && [ "$\{2#-}" = "$2" ]; then shift 2; else shift; fi ;;
    *) shift ;;
  esac
done

# Value of KEY in the [options] section of the configuration file.
conf_get() {
  [ -r "$conf" ] || return 0
  awk -v key="$1" '
    /^[ \t]*[#;]/ { next }
    /^[ \t]*\[/ { sect = $0; gsub(/[ \t\r]|\[|\]/, "", sect); next }
    sect == "options" {
      i = match($0, /[=:]/); if (!i) next
      k = substr($0, 1, i - 1); v = substr($0, i + 1)
      gsub(/^[ \t]+|[ \t]+$/, "", k); gsub(/^[ \t]+|[ \t\r]+$/, "", v)
      if (k == key) { print v; exit }
    }' "$conf"
}

[ -n "$port" ] || port="$(conf_get http_port)"
[ -n "$port" ] || port=8069
case "$port" in '' | *[!0-9]*) die "invalid http_port: $port" ;; esac
[ -n "$db_host" ] || db_host="$(conf_get db_host)"
[ -n "$db_port" ] || db_port="$(conf_get db_port)"
[ -n "$db_user" ] || db_user="$(conf_get db_user)"

log INFO odoo "Odoo version $VERSION"
if [ -r "$conf" ]; then
  log INFO odoo "Using configuration file at $conf"
fi
log INFO odoo "addons paths: ['/usr/lib/python3/dist-packages/odoo/addons', '/mnt/extra-addons']"
log INFO odoo "database: $\{db_user:-default}@$\{db_host:-default}:$\{db_port:-default}"

if [ "$HEALTH" = crash ]; then
  log CRITICAL odoo.service.server "Failed to initialize database '$\{db_name:-odoo}'."
  exit 3
fi

if [ -n "$stop_after_init" ]; then
  [ -z "$update" ] || log INFO odoo.modules.loading "updating modules: $update"
  log INFO odoo.modules.loading "Modules loaded."
  log INFO odoo.service.server "Initiating shutdown"
  exit 0
fi

log INFO odoo.service.server "HTTP service (werkzeug) running on 0.0.0.0:$port"
exec httpd -f -p "0.0.0.0:$port" -h /www
`;

/** Mirrors the official image's /entrypoint.sh (without waiting for the database). */
export const ENTRYPOINT_SCRIPT = sh`#!/bin/sh
set -e
# Database settings: the configuration file wins, then HOST/PORT/USER/PASSWORD, then defaults.
conf="$\{ODOO_RC:-/etc/odoo/odoo.conf}"
: "$\{HOST:=$\{DB_PORT_5432_TCP_ADDR:-db}}"
: "$\{PORT:=$\{DB_PORT_5432_TCP_PORT:-5432}}"
: "$\{USER:=$\{DB_ENV_POSTGRES_USER:-$\{POSTGRES_USER:-odoo}}}"
: "$\{PASSWORD:=$\{DB_ENV_POSTGRES_PASSWORD:-$\{POSTGRES_PASSWORD:-odoo}}}"

DB_ARGS=""
check_config() {
  param="$1"; value="$2"
  if [ -r "$conf" ] && grep -q -E "^[[:space:]]*$param[[:space:]]*=" "$conf"; then
    value="$(grep -E "^[[:space:]]*$param[[:space:]]*=" "$conf" | head -n1 | cut -d= -f2- | sed 's/^[[:space:]]*//;s/[[:space:]]*$//;s/["\n\r]//g')"
  fi
  DB_ARGS="$DB_ARGS --$param $value"
}
check_config db_host "$HOST"
check_config db_port "$PORT"
check_config db_user "$USER"
check_config db_password "$PASSWORD"

case "$1" in
  -- | odoo)
    shift
    # shellcheck disable=SC2086
    exec odoo "$@" $DB_ARGS
    ;;
  -*)
    # shellcheck disable=SC2086
    exec odoo "$@" $DB_ARGS
    ;;
  *)
    exec "$@"
    ;;
esac
`;

const DEFAULT_CONF = `[options]
addons_path = /mnt/extra-addons
data_dir = /var/lib/odoo
`;

function loginPage(version: string): string {
  return `<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Odoo</title></head>
<body>
<h1>Odoo (stand-in)</h1>
<p>Version <span id="version">${version}</span></p>
<form method="post" action="/web/login"><input name="login"><input name="password" type="password"><button>Log in</button></form>
</body>
</html>
`;
}

// ---------------------------------------------------------------- rootfs ----

export interface FsEntry {
  name: string;
  type: 'file' | 'directory' | 'symlink';
  mode: number;
  data?: Buffer;
  linkname?: string;
}

let busyboxCache: { path: string; data: Buffer } | undefined;

/** Finds a statically linked busybox on the host (dynamic ones cannot run in the image). */
export async function loadBusybox(): Promise<{ path: string; data: Buffer }> {
  if (busyboxCache) return busyboxCache;
  const problems: string[] = [];
  for (const path of BUSYBOX_CANDIDATES) {
    let data: Buffer;
    try {
      data = await readFile(path);
    } catch {
      continue;
    }
    if (isStaticElf(data)) return (busyboxCache = { path, data });
    problems.push(`${path} is not statically linked`);
  }
  const found = problems.length ? ` (${problems.join('; ')})` : '';
  throw new Error(
    `stand-in Odoo images need a statically linked busybox at /bin/busybox${found}: ${BUSYBOX_HINT}`,
  );
}

/** True for a 64-bit little-endian ELF executable without a PT_INTERP (program interpreter). */
function isStaticElf(b: Buffer): boolean {
  if (b.length < 64 || b.readUInt32BE(0) !== 0x7f454c46) return false;
  if (b[4] !== 2 || b[5] !== 1) return false; // ELFCLASS64, little endian
  const phoff = Number(b.readBigUInt64LE(0x20));
  const phentsize = b.readUInt16LE(0x36);
  const phnum = b.readUInt16LE(0x38);
  for (let i = 0; i < phnum; i++) {
    const off = phoff + i * phentsize;
    if (off + 4 > b.length) return false;
    if (b.readUInt32LE(off) === 3) return false; // PT_INTERP
  }
  return true;
}

function rootFs(busybox: Buffer, variant: StandInVariant): FsEntry[] {
  const dir = (name: string, mode = 0o755): FsEntry => ({ name, type: 'directory', mode });
  const file = (name: string, data: string | Buffer, mode = 0o644): FsEntry => ({
    name,
    type: 'file',
    mode,
    data: typeof data === 'string' ? Buffer.from(data) : data,
  });
  const entries: FsEntry[] = [
    dir('bin'),
    file('bin/busybox', busybox, 0o755),
    ...APPLETS.map((a): FsEntry => ({ name: `bin/${a}`, type: 'symlink', mode: 0o777, linkname: 'busybox' })),
    dir('usr'),
    dir('usr/bin'),
    file('usr/bin/odoo', ODOO_SCRIPT, 0o755),
    file('entrypoint.sh', ENTRYPOINT_SCRIPT, 0o755),
    dir('etc'),
    file('etc/passwd', 'root:x:0:0:root:/root:/bin/sh\nodoo:x:101:101:Odoo:/var/lib/odoo:/bin/sh\n'),
    file('etc/group', 'root:x:0:\nodoo:x:101:\n'),
    dir('etc/odoo', 0o777),
    file('etc/odoo/odoo.conf', DEFAULT_CONF, 0o666),
    dir('etc/odoo-standin'),
    file('etc/odoo-standin/version', `${variant.version}\n`),
    file('etc/odoo-standin/health', `${variant.health}\n`),
    dir('root', 0o700),
    dir('tmp', 0o1777),
    dir('var'),
    dir('var/lib'),
    dir('var/lib/odoo', 0o777),
    dir('mnt'),
    dir('mnt/extra-addons', 0o777),
    dir('www'),
    file('www/version.txt', `${variant.version}\n`),
    dir('www/web'),
    file('www/web/login', loginPage(variant.version)),
  ];
  if (variant.health !== 'missing') {
    entries.push(file('www/web/health', '{"status": "pass"}'));
  }
  return entries;
}

function imageChanges(variant: StandInVariant, digest: string): string[] {
  const series = /^\d+\.\d+/.exec(variant.version)?.[0] ?? variant.version;
  return [
    `ENV PATH=${PATH_ENV}`,
    'ENV LANG=C.UTF-8',
    `ENV ODOO_VERSION=${series}`,
    `ENV ODOO_RELEASE=${variant.version}`,
    'ENV ODOO_RC=/etc/odoo/odoo.conf',
    'EXPOSE 8069',
    `LABEL ${VERSION_LABEL}=${variant.version} ${VARIANT_LABEL}=${variant.health} ${CONTENT_LABEL}=${digest}`,
    'ENTRYPOINT ["/entrypoint.sh"]',
    'CMD ["odoo"]',
  ];
}

function contentDigest(entries: FsEntry[], variant: StandInVariant): string {
  const h = createHash('sha256');
  h.update(JSON.stringify(variant));
  for (const e of entries) {
    h.update(`${e.type}\0${e.name}\0${e.mode}\0${e.linkname ?? ''}\0`);
    if (e.data) h.update(e.data);
  }
  return h.digest('hex').slice(0, 16);
}

// ----------------------------------------------------------------- import ---

export function splitTag(tag: string): { repo: string; tag: string } {
  const slash = tag.lastIndexOf('/');
  const colon = tag.lastIndexOf(':');
  if (colon > slash) return { repo: tag.slice(0, colon), tag: tag.slice(colon + 1) };
  return { repo: tag, tag: 'latest' };
}

/** The tar of the entries as a Node readable stream. */
export function tarStream(entries: FsEntry[]): { stream: Readable; destroy: (err?: Error) => void } {
  const pack = tarPack();
  const mtime = new Date('2026-01-01T00:00:00Z');
  for (const e of entries) {
    if (e.type === 'file') {
      pack.entry({ name: e.name, type: 'file', mode: e.mode, mtime, uid: 0, gid: 0 }, e.data!);
    } else if (e.type === 'symlink') {
      pack.entry({ name: e.name, type: 'symlink', mode: e.mode, mtime, linkname: e.linkname! });
    } else {
      pack.entry({ name: `${e.name}/`, type: 'directory', mode: e.mode, mtime });
    }
  }
  pack.finalize();
  const stream = Readable.from(pack, { objectMode: false });
  return {
    stream,
    destroy: (err?: Error) => {
      stream.destroy(err);
      pack.destroy(err);
    },
  };
}

/** Reads the engine's JSON-lines progress stream; rejects on an error line. */
export function readProgress(
  res: NodeJS.ReadableStream & { destroy?: (err?: Error) => void },
  signal: AbortSignal,
  onProgress?: (line: string) => void,
): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const statuses: string[] = [];
    let buf = '';
    let done = false;
    const finish = (err?: Error) => {
      if (done) return;
      done = true;
      signal.removeEventListener('abort', onAbort);
      res.removeListener('data', onData);
      if (err) {
        res.destroy?.();
        reject(err);
      } else {
        resolve(statuses);
      }
    };
    const onLine = (line: string) => {
      if (!line.trim()) return;
      let msg: { status?: string; error?: string; errorDetail?: { message?: string } };
      try {
        msg = JSON.parse(line);
      } catch {
        msg = { status: line };
      }
      const error = msg.errorDetail?.message ?? msg.error;
      if (error) return finish(new Error(error));
      if (msg.status) {
        statuses.push(msg.status);
        onProgress?.(msg.status);
      }
    };
    const onData = (chunk: Buffer | string) => {
      buf += chunk.toString();
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        onLine(buf.slice(0, i));
        buf = buf.slice(i + 1);
        if (done) return;
      }
    };
    const onAbort = () => finish(new Error('aborted'));
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    res.on('data', onData);
    res.once('error', (err: Error) => finish(err));
    const onEnd = () => {
      const rest = buf;
      buf = '';
      onLine(rest);
      finish();
    };
    res.once('end', onEnd);
    res.once('close', onEnd);
  });
}

/**
 * Builds one stand-in Odoo image and tags it. Returns the image id.
 * Throws an Error with a clear message on any failure (including a 60 s timeout).
 */
export async function buildStandInImage(
  docker: Dockerode,
  tag: string,
  variant: StandInVariant,
  opts: { onProgress?: (line: string) => void; timeoutMs?: number } = {},
): Promise<string> {
  const busybox = await loadBusybox();
  const entries = rootFs(busybox.data, variant);
  const digest = contentDigest(entries, variant);
  const { repo, tag: version } = splitTag(tag);
  const timeoutMs = opts.timeoutMs ?? IMPORT_TIMEOUT_MS;

  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), timeoutMs);
  const tar = tarStream(entries);
  opts.onProgress?.(`${tag}: importing root filesystem (busybox from ${busybox.path})`);
  try {
    const res = (await docker.importImage(tar.stream, {
      repo,
      tag: version,
      changes: imageChanges(variant, digest),
      abortSignal: ac.signal,
    } as Record<string, unknown>)) as NodeJS.ReadableStream;
    const statuses = await readProgress(res, ac.signal, (line) => opts.onProgress?.(`${tag}: ${line}`));
    const info = await docker.getImage(tag).inspect();
    if (info.Config?.Labels?.[CONTENT_LABEL] !== digest) {
      throw new Error(`image ${tag} was imported but does not carry the expected content label`);
    }
    opts.onProgress?.(`${tag}: built ${info.Id}`);
    return info.Id ?? statuses.at(-1) ?? '';
  } catch (err) {
    tar.destroy();
    const limit = timeoutMs >= 1000 ? `${timeoutMs / 1000} s` : `${timeoutMs} ms`;
    const why = ac.signal.aborted ? `timed out after ${limit}` : errorText(err);
    throw new Error(`building stand-in image ${tag} failed: ${why}`, { cause: err });
  } finally {
    clearTimeout(timer);
    tar.stream.destroy();
  }
}

export function errorText(err: unknown): string {
  if (err && typeof err === 'object') {
    const e = err as { json?: { message?: string }; reason?: string; statusCode?: number; message?: string };
    const detail = e.json?.message ?? e.message ?? String(err);
    return e.statusCode && !detail.includes('HTTP code') ? `${detail} (HTTP ${e.statusCode})` : detail;
  }
  return String(err);
}

async function hasCurrentImage(docker: Dockerode, tag: string, variant: StandInVariant): Promise<boolean> {
  let info: Dockerode.ImageInspectInfo;
  try {
    info = await docker.getImage(tag).inspect();
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404) return false;
    throw new Error(`inspecting image ${tag} failed: ${errorText(err)}`, { cause: err });
  }
  const label = info.Config?.Labels?.[CONTENT_LABEL];
  let busybox: { data: Buffer };
  try {
    busybox = await loadBusybox();
  } catch (err) {
    // Cannot rebuild here anyway: a stand-in image already present will do.
    if (label) return true;
    throw err;
  }
  return label === contentDigest(rootFs(busybox.data, variant), variant);
}

/**
 * Makes sure the demo images exist on the engine; builds only the missing (or
 * outdated) ones and returns the tags it built.
 */
export async function ensureDemoImages(
  docker: Dockerode,
  opts: { tags?: string[]; onProgress?: (line: string) => void } = {},
): Promise<string[]> {
  const tags = opts.tags ?? [...DEMO_IMAGES];
  const unknown = tags.filter((t) => !(t in DEMO_VARIANTS));
  if (unknown.length) {
    throw new Error(`unknown demo image(s): ${unknown.join(', ')} (known: ${DEMO_IMAGES.join(', ')})`);
  }
  const built: string[] = [];
  for (const tag of tags) {
    const variant = DEMO_VARIANTS[tag]!;
    if (await hasCurrentImage(docker, tag, variant)) {
      opts.onProgress?.(`${tag}: present`);
      continue;
    }
    await buildStandInImage(docker, tag, variant, { onProgress: opts.onProgress });
    built.push(tag);
  }
  return built;
}
