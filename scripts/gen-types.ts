// Generates src/spec/types.gen.ts from the JSON Schemas in schema/ (the single source of truth).
// `--check` exits 1 when the checked-in file is stale instead of writing it.
import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { renderSpecTypes } from '../src/spec/gen-types.ts';

const target = fileURLToPath(new URL('../src/spec/types.gen.ts', import.meta.url));
const fresh = await renderSpecTypes();
if (process.argv.includes('--check')) {
  const current = await readFile(target, 'utf8').catch(() => '');
  if (current !== fresh) {
    console.error('src/spec/types.gen.ts is stale: run `npm run gen:types`');
    process.exit(1);
  }
} else {
  await writeFile(target, fresh);
  console.log('wrote src/spec/types.gen.ts');
}
