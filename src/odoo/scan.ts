// Reads addons folders from disk (each holds module folders with a `__manifest__.py`, and maybe an
// `oca_dependencies.txt`) into what the resolver needs. Broken manifests are collected, not thrown,
// so that one bad module elsewhere in a repository does not hide the rest.
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { PulserError } from '../errors.ts';
import { MANIFEST_FILES, MODULE_NAME, decodePythonSource, parseManifest, type Manifest } from './manifest.ts';
import { parseOcaDependencies } from './catalogue.ts';
import type { AvailableModule } from './resolve.ts';

export interface ScannedModule extends AvailableModule {
  path: string;
  manifest: Manifest;
}

export interface AddonsScan {
  modules: ScannedModule[];
  ocaDependencies: { repo: string; url?: string; branch?: string; declaredIn: string }[];
  /** module name → why its manifest could not be read */
  broken: Map<string, PulserError>;
}

export interface AddonsFolder {
  path: string;
  /** name shown for the repository; default: the folder's name */
  repo?: string;
}

export async function scanAddonsFolders(folders: readonly AddonsFolder[]): Promise<AddonsScan> {
  const out: AddonsScan = { modules: [], ocaDependencies: [], broken: new Map() };
  for (const f of folders) {
    const repo = f.repo ?? path.basename(path.resolve(f.path));
    let entries;
    try {
      entries = await readdir(f.path, { withFileTypes: true });
    } catch (err) {
      throw new PulserError('PULSER_E_USAGE', `cannot read addons folder ${f.path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
    }
    for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
      if (e.isFile() && e.name === 'oca_dependencies.txt') {
        const file = path.join(f.path, e.name);
        for (const d of parseOcaDependencies(await readFile(file, 'utf8'), file)) out.ocaDependencies.push({ repo: d.repo, ...(d.url ? { url: d.url } : {}), ...(d.branch ? { branch: d.branch } : {}), declaredIn: repo });
        continue;
      }
      if (!e.isDirectory() || !MODULE_NAME.test(e.name)) continue;
      const dir = path.join(f.path, e.name);
      const manifestFile = await firstManifest(dir);
      if (!manifestFile) continue;
      try {
        const manifest = parseManifest(decodePythonSource(await readFile(manifestFile)), manifestFile);
        out.modules.push({ name: e.name, repo, path: dir, manifest, depends: manifest.depends, installable: manifest.installable, version: manifest.version });
      } catch (err) {
        // An undecodable file has no position of its own: it is located at its start.
        out.broken.set(e.name, err instanceof PulserError ? err : new PulserError('PULSER_E_MANIFEST_SYNTAX', `cannot read the manifest: ${(err as Error).message}`, { location: { file: manifestFile, line: 1, col: 1 }, cause: err }));
      }
    }
  }
  return out;
}

async function firstManifest(dir: string): Promise<string | null> {
  const names = new Set(await readdir(dir).catch(() => [] as string[]));
  const found = MANIFEST_FILES.find((m) => names.has(m));
  return found ? path.join(dir, found) : null;
}
