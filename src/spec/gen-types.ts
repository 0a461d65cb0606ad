// Renders TypeScript types from schema/*.schema.json with json-schema-to-typescript.
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { compile, type JSONSchema } from 'json-schema-to-typescript';

export const schemaDir = fileURLToPath(new URL('../../schema/', import.meta.url));

const BANNER = '/* Generated from schema/*.schema.json by `npm run gen:types`. Do not edit by hand. */';

export async function renderSpecTypes(): Promise<string> {
  const parts = [BANNER];
  for (const file of ['environment.schema.json', 'hosts.schema.json', 'templates.schema.json']) {
    const schema = JSON.parse(await readFile(schemaDir + file, 'utf8')) as JSONSchema;
    const ts = await compile(schema, schema.title ?? file, {
      bannerComment: '',
      cwd: schemaDir,
      additionalProperties: false,
      declareExternallyReferenced: true,
      style: { singleQuote: true },
    });
    parts.push(ts.trim());
  }
  return parts.join('\n\n') + '\n';
}
