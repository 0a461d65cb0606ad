// `pulser render alerts|dashboard` as a child process: the rule file passes promtool, the
// dashboard is JSON, an invalid environment is named and makes it exit 1, bad usage exits 2.
import t from 'tap';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const bin = path.join(repo, 'bin', 'pulser.js');

async function pulser(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [bin, ...args], { cwd: repo, timeout: 60_000, env: { ...process.env, TEST_HOOK_SECRET: 'render-hook-secret' } });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

const env = (name: string, extra = '') => `name: ${name}\ntier: staging\nhost: local\nodoo: { image: "odoo:17.0", port: ${18000 + name.length} }\ndatabase: { name: db_${name}, host: h, user: u }\n${extra}`;

t.test('render alerts and dashboard', async (t) => {
  const root = t.testdir({
    environments: {
      'hosts.yaml': 'hosts:\n  local:\n    kind: local\n',
      'shop.yaml': env('shop', 'alerts:\n  uptime_min: 0.995\n  webhook: { url: "https://hooks.example.com/x", secret: "${secret:TEST_HOOK_SECRET}" }\n'),
      'qa.yaml': env('qa'),
    },
    ops: { kv: {} },
  });
  const rules = await pulser(['render', 'alerts', '--dir', root]);
  t.equal(rules.code, 0, rules.stderr);
  t.match(rules.stdout, /name: pulser-qa[\s\S]*name: pulser-shop/);
  t.notMatch(rules.stdout, /render-hook-secret/, 'no secret in the output');
  const file = path.join(root, 'rules.yml');
  await writeFile(file, rules.stdout);
  const check = await run('promtool', ['check', 'rules', file]);
  t.match(check.stdout, /SUCCESS: 12 rules found/);

  const dash = await pulser(['render', 'dashboard', '--dir', root]);
  t.equal(dash.code, 0);
  const d = JSON.parse(dash.stdout) as { panels: unknown[]; templating: { list: { name: string; query: string }[] } };
  t.equal(d.templating.list.find((v) => v.name === 'env')!.query, 'qa,shop');
  t.ok(d.panels.length >= 10);

  await writeFile(path.join(root, 'environments', 'broken.yaml'), env('broken', 'alerts: { error_rate_max: 2 }\n'));
  const partial = await pulser(['render', 'alerts', '--dir', root]);
  t.equal(partial.code, 1, 'an invalid environment makes it exit 1');
  t.match(partial.stderr, /environments\/broken\.yaml is invalid and left out \(PULSER_E_SPEC_INVALID\)/);
  t.match(partial.stdout, /pulser-shop/, 'the valid environments are still rendered');

  const usage = await pulser(['render', 'grafana', '--dir', root]);
  t.equal(usage.code, 2);
  t.match(usage.stderr, /PULSER_E_USAGE: usage: pulser render alerts\|dashboard/);
});
