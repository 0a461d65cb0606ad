#!/usr/bin/env -S node --max-semi-space-size=2
// Runs the TypeScript sources directly through the tsx loader.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
