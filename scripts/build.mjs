// Compiles the CLI (src/ and reconcilers/) into dist/ with esbuild, so that `pulser` starts
// without a TypeScript loader. Run by `npm ci` (prepare), `npm start`, `npm test` and the Dockerfile.
//
//   node scripts/build.mjs           # (re)build dist/
//   node scripts/build.mjs --check   # exit 1 when dist/ is not what the sources build (nothing written)
//
// One ES module bundle split at every dynamic import: a command loads only the chunks it uses.
// npm packages stay external (resolved from node_modules at run time, as before). Plain
// JavaScript, so that it runs where only the runtime dependencies are installed.
import { build } from 'esbuild';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const outdir = path.join(repo, 'dist');
const SOURCE_URL = 'pulser-source-url:';

/**
 * Modules find their data files next to their source (`new URL('../../schema/', import.meta.url)`,
 * `src/web/`, the stand-in's `main.ts`). In the bundle, every `import.meta.url` of a source module
 * is that module's own source file, computed from the chunk's location at run time, so those
 * files are found wherever the repository (or the image's /opt/pulser) lives.
 */
const sourceUrls = {
  name: 'source-urls',
  setup(b) {
    b.onResolve({ filter: new RegExp(`^${SOURCE_URL}`) }, (args) => ({ path: args.path.slice(SOURCE_URL.length), namespace: 'source-url' }));
    // `import.meta` read through a variable: the define below rewrites only `import.meta.url`.
    b.onLoad({ filter: /.*/, namespace: 'source-url' }, (args) => ({
      contents: `const meta = import.meta;\nexport const url = new URL(${JSON.stringify(path.relative(outdir, args.path).split(path.sep).join('/'))}, meta.url).href;\n`,
      loader: 'js',
    }));
    b.onLoad({ filter: /\.ts$/ }, async (args) => {
      const text = await readFile(args.path, 'utf8');
      const other = /\bimport\.meta\.(dirname|filename|resolve)\b/.exec(text);
      if (other) return { errors: [{ text: `${other[0]} has no meaning in the bundle: use import.meta.url` }] };
      if (!text.includes('import.meta.url')) return undefined;
      // Appended (imports are hoisted), so that line numbers stay those of the source.
      return { contents: `${text}\nimport { url as __sourceUrl } from ${JSON.stringify(SOURCE_URL + args.path)};\n`, loader: 'ts' };
    });
  },
};

/** The file's content, or null when it does not exist. */
async function contentOf(file) {
  return readFile(file).catch((err) => {
    if (err.code === 'ENOENT') return null;
    throw err;
  });
}

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === 'EPERM';
  }
}

const started = performance.now();
const result = await build({
  absWorkingDir: repo,
  entryPoints: { pulser: 'src/cli/main.ts' },
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  packages: 'external',
  define: { 'import.meta.url': '__sourceUrl' },
  plugins: [sourceUrls],
  sourcemap: 'linked',
  legalComments: 'none',
  logLevel: 'warning',
  write: false,
});

const current = new Set(result.outputFiles.map((f) => path.basename(f.path)));
const isTmp = (name) => /\.tmp-(\d+)$/.exec(name);

if (process.argv.includes('--check')) {
  const stale = [];
  for (const f of result.outputFiles) {
    const old = await contentOf(f.path);
    if (!old || Buffer.compare(old, f.contents) !== 0) stale.push(path.relative(repo, f.path));
  }
  const extra = (await readdir(outdir).catch(() => [])).filter((name) => !current.has(name) && !isTmp(name));
  if (stale.length || extra.length) {
    console.error(`build: dist/ is out of date with the sources (${[...stale, ...extra.map((n) => `dist/${n} (left over)`)].join(', ')}): run \`npm run build\``);
    process.exit(1);
  }
  console.error(`build: dist/ is up to date (${result.outputFiles.length} files)`);
  process.exit(0);
}

// Tests and a running `npm start` may load dist/ while it is rebuilt: every file is replaced by a
// rename (never seen half-written), unchanged files are left alone (chunk names carry a hash of
// their content), and only then are the files of earlier builds removed.
await mkdir(outdir, { recursive: true });
const tmpSuffix = `.tmp-${process.pid}`;
let written = 0;
for (const f of result.outputFiles) {
  const old = await contentOf(f.path);
  if (old && Buffer.compare(old, f.contents) === 0) continue;
  await writeFile(f.path + tmpSuffix, f.contents);
  await rename(f.path + tmpSuffix, f.path);
  written++;
}
for (const name of await readdir(outdir)) {
  const tmp = isTmp(name);
  if (current.has(name) || (tmp && alive(Number(tmp[1])))) continue;
  await rm(path.join(outdir, name), { force: true, recursive: true });
}
console.error(`build: dist/ in ${Math.round(performance.now() - started)} ms (${written} of ${result.outputFiles.length} files changed)`);
