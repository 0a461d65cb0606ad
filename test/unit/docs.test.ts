// The README's reference sections are generated and must be fresh; every error code is documented.
import t from 'tap';
import { readFile } from 'node:fs/promises';
import { renderReadme } from '../../src/docs.ts';
import { ERRORS } from '../../src/errors.ts';

const readme = await readFile(new URL('../../README.md', import.meta.url), 'utf8');

t.test('every error code is documented in README.md', async (t) => {
  for (const code of Object.keys(ERRORS)) t.ok(readme.includes(`\`${code}\``), `${code} documented`);
});

t.test('every code used in the sources is in the catalogue', async (t) => {
  const { execFileSync } = await import('node:child_process');
  const used = new Set(execFileSync('grep', ['-rhoE', "PULSER_E_[A-Z_]+", 'src', 'reconcilers'], { encoding: 'utf8' }).split('\n').filter(Boolean));
  for (const code of used) t.ok(code in ERRORS, `${code} is catalogued`);
});

t.test('generated README sections are up to date (npm run gen:docs)', async (t) => {
  t.equal(await renderReadme(readme), readme);
});
