// Regenerates the spec reference and the error table inside README.md (`--check`: exit 1 if stale).
import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { renderReadme } from '../src/docs.ts';

const readme = fileURLToPath(new URL('../README.md', import.meta.url));
const current = await readFile(readme, 'utf8');
const fresh = await renderReadme(current);
if (process.argv.includes('--check')) {
  if (fresh !== current) {
    console.error('README.md reference sections are stale: run `npm run gen:docs`');
    process.exit(1);
  }
} else {
  await writeFile(readme, fresh);
  console.log('updated README.md');
}
