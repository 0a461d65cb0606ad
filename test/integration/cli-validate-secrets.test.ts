// `pulser validate` checks structure and references without any secret value: on the shipped
// environments/, in a shell with no secret set, it passes and names each unset secret as a notice;
// --require-secrets turns them into errors.
import t from 'tap';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const bin = fileURLToPath(new URL('../../bin/pulser.js', import.meta.url));
const repo = fileURLToPath(new URL('../..', import.meta.url));

function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('PULSER_') && !k.startsWith('DEMO_')) env[k] = v;
  return new Promise((resolve) =>
    execFile(process.execPath, [bin, ...args], { env, cwd: repo, timeout: 60_000 }, (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr })),
  );
}

t.test('validate on the shipped environments with no secret set', async (t) => {
  const r = await run(['validate', '--json', '--dir', repo]);
  t.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { ok: boolean; environments: { ok: boolean }[]; notices: { code: string; message: string; location: { file: string } }[] };
  t.equal(out.ok, true);
  t.ok(out.environments.length >= 2 && out.environments.every((e) => e.ok), 'every environment is valid');
  t.ok(out.notices.length > 0);
  t.ok(out.notices.every((n) => n.code === 'PULSER_E_SECRET_MISSING'));
  t.match(out.notices.map((n) => `${n.location.file} ${n.message}`).join('\n'), /environments\/staging\.yaml database\.password: \$\{secret:DEMO_DB_PASSWORD\} is not set/);
  const strict = await run(['validate', '--require-secrets', '--dir', repo]);
  t.equal(strict.code, 1, 'with --require-secrets an unset secret makes the spec invalid');
  t.match(strict.stdout, /invalid\s+environments\/staging\.yaml[\s\S]*PULSER_E_SECRET_MISSING/);
});
