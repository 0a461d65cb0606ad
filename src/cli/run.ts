// `pulser run <env> <template> [name=value…] [--as NAME] [--json]`: one template of
// ops/templates.yaml on one environment; `pulser run --list` shows the templates.
import path from 'node:path';
import { createPulser } from '../app.ts';
import { PulserError } from '../errors.ts';
import { loadTemplates } from '../run/templates.ts';
import { runTemplate } from '../run/execute.ts';
import type { Io } from './main.ts';
import { parseCommandArgs } from './args.ts';

export const RUN_USAGE = `Usage: pulser run <env> <template> [name=value…] [--as NAME] [--json]
       pulser run --list
  Runs a template declared in ops/templates.yaml; parameters are name=value.
  --as NAME      who the run is for (recorded next to the OS user)
  --json         print the run record
  Every run is recorded under <evidence-dir>/runs/.`;

export async function cmdRun(argv: string[], io: Io): Promise<number> {
  const parsed = parseCommandArgs(
    argv,
    {
      'evidence-dir': { type: 'string' },
      as: { type: 'string' },
      list: { type: 'boolean', default: false },
    },
    RUN_USAGE,
  );
  const f = parsed.values;
  if (f.help) {
    io.out(RUN_USAGE);
    return 0;
  }
  const root = path.resolve(f.dir);
  const templates = await loadTemplates(root);
  if (f.list) {
    const rows = [...templates.values()].sort((a, b) => a.name.localeCompare(b.name));
    if (f.json) io.out(JSON.stringify(rows, null, 2));
    else io.out(rows.map((t) => `${t.name.padEnd(24)} ${t.kind.padEnd(8)} ${t.tiers.join(',').padEnd(40)} ${t.description}`).join('\n'));
    return 0;
  }
  const [env, template, ...args] = parsed.positionals;
  if (!env || !template) throw new PulserError('PULSER_E_USAGE', RUN_USAGE);
  const p = createPulser({ root, evidenceDir: null, secretsFile: f['secrets-file'], logLevel: 'warn', processMetrics: false, logWrite: (l) => io.err.write(l + '\n') });
  try {
    const snap = await p.load();
    const load = snap.envs.get(env);
    const desired = load ? p.engine.desiredFor(load) : null;
    const rec = await runTemplate(
      { drivers: p.drivers(), templates, desired, recordDir: path.join(f['evidence-dir'] ? path.resolve(f['evidence-dir']) : path.join(root, 'evidence'), 'runs'), secrets: () => snap.secretValues },
      { env, template, args, as: f.as },
    );
    if (f.json) io.out(JSON.stringify(rec, null, 2));
    else if (rec.output) io.out(rec.output);
    const how = rec.error ? ` ${rec.error.code}: ${rec.error.message}` : '';
    io.err.write(`run ${rec.runId} ${rec.template} on ${rec.env}: ${rec.outcome}${rec.exitCode !== null ? ` (exit ${rec.exitCode})` : ''}, ${rec.durationMs} ms${how}\n`);
    return rec.outcome === 'succeeded' ? 0 : 1;
  } finally {
    await p.close();
  }
}
