#!/usr/bin/env -S node --max-semi-space-size=2
// Runs the compiled command line in dist/ (scripts/build.mjs: `npm ci`, `npm start` and the test
// runner build it; `npm run build` after editing src/ or reconcilers/).
let cli;
try {
  cli = await import('../dist/pulser.js');
} catch (err) {
  if (err?.code !== 'ERR_MODULE_NOT_FOUND' || !String(err.message).includes('/dist/pulser.js')) throw err;
  process.stderr.write('pulser: dist/ is missing or incomplete: run `npm run build` (or `npm ci`) in the pulser folder first\n');
  process.exit(1);
}
process.exitCode = await cli.main(process.argv.slice(2));
