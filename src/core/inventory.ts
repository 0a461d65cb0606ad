// What pulser remembers about every environment it has managed, so that an environment whose
// file is deleted can still be pruned (or kept) according to the last setting it had.
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';

export interface InventoryEntry {
  host: string;
  prune: boolean;
}

export class Inventory {
  private readonly file: string;
  private cache: Record<string, InventoryEntry> | null = null;
  private writing: Promise<void> = Promise.resolve();

  constructor(stateDir: string) {
    this.file = path.join(stateDir, 'inventory.json');
  }

  private async read(): Promise<Record<string, InventoryEntry>> {
    if (this.cache) return this.cache;
    try {
      this.cache = JSON.parse(await readFile(this.file, 'utf8')) as Record<string, InventoryEntry>;
    } catch {
      this.cache = {};
    }
    return this.cache;
  }

  async get(env: string): Promise<InventoryEntry | null> {
    return (await this.read())[env] ?? null;
  }

  async remember(env: string, entry: InventoryEntry): Promise<void> {
    const all = await this.read();
    const cur = all[env];
    if (cur && cur.host === entry.host && cur.prune === entry.prune) return;
    all[env] = entry;
    await this.save();
  }

  async forget(env: string): Promise<void> {
    const all = await this.read();
    if (!(env in all)) return;
    delete all[env];
    await this.save();
  }

  private save(): Promise<void> {
    this.writing = this.writing.then(async () => {
      await mkdir(path.dirname(this.file), { recursive: true });
      const tmp = `${this.file}.${process.pid}.tmp`;
      await writeFile(tmp, JSON.stringify(this.cache, null, 2) + '\n');
      await rename(tmp, this.file);
    });
    return this.writing;
  }
}
