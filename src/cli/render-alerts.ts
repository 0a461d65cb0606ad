// `pulser render alerts|dashboard`: the Prometheus rule file or the Grafana dashboard of every
// valid environment, on stdout. Invalid environments are named on stderr and make it exit 1.
import { loadSpecs } from '../spec/load.ts';
import { SecretSource } from '../spec/secrets.ts';
import { PulserError } from '../errors.ts';
import { alertSettings, renderAlertRules, renderDashboard, type RenderEnv } from '../../reconcilers/alerts/index.ts';

export async function cmdRender(args: string[], opts: { root: string; secretsFile?: string }, io: { out: (t: string) => void; err: NodeJS.WritableStream }): Promise<number> {
  const what = args[0];
  if (args.length !== 1 || (what !== 'alerts' && what !== 'dashboard')) throw new PulserError('PULSER_E_USAGE', 'usage: pulser render alerts|dashboard');
  const snap = await loadSpecs(opts.root, { secrets: new SecretSource({ file: opts.secretsFile, root: opts.root }) });
  const envs: RenderEnv[] = [];
  let invalid = 0;
  for (const l of snap.envs.values()) {
    if (l.ok) envs.push({ env: l.name, tier: l.desired.tier, settings: alertSettings(l.desired) });
    else {
      invalid++;
      io.err.write(`pulser: ${l.file} is invalid and left out (${l.errors.map((e) => e.code).join(', ')}); run \`pulser validate\`\n`);
    }
  }
  io.out(what === 'alerts' ? renderAlertRules(envs) : JSON.stringify(renderDashboard(envs), null, 2));
  return invalid > 0 ? 1 : 0;
}
