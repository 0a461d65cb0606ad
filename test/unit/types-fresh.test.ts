// The checked-in TypeScript types must be exactly what the schemas generate: the schemas are the
// single source of truth, and a stale type would let code and validation disagree.
import t from 'tap';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { renderSpecTypes } from '../../src/spec/gen-types.ts';

t.test('src/spec/types.gen.ts is up to date with schema/', async (t) => {
  const checkedIn = await readFile(fileURLToPath(new URL('../../src/spec/types.gen.ts', import.meta.url)), 'utf8');
  const fresh = await renderSpecTypes();
  t.equal(checkedIn, fresh, 'run `npm run gen:types` after editing a schema');
});
