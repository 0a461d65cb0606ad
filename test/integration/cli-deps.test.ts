// `pulser deps`: install order and command from addons folders on disk, the second run planning
// nothing, problems (missing, cycle, ambiguous, broken manifest) with exit 1, usage errors exit 2.
import t from 'tap';
import { mkdtemp, mkdir, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { main, type Io } from '../../src/cli/main.ts';

const root = await mkdtemp(path.join(tmpdir(), 'pulser-deps-'));
t.teardown(() => rm(root, { recursive: true, force: true }));

async function addon(repo: string, name: string, manifest: string): Promise<void> {
  await mkdir(path.join(root, repo, name), { recursive: true });
  await writeFile(path.join(root, repo, name, '__manifest__.py'), manifest);
}

// queue: queue_job (core deps); sale-workflow: a diamond on top of it; loops: a cycle;
// dup-a/dup-b: the same module twice; broken: an unreadable manifest.
await addon('queue', 'queue_job', "# -*- coding: utf-8 -*-\n{'name': 'Job Queue', 'version': '17.0.1.0.0', 'depends': ['mail', 'base_sparse_field', 'web'],}\n");
await addon('sale-workflow', 'sale_top', '{"name": "Top", "depends": ["sale_left", "sale_right"]}');
await addon('sale-workflow', 'sale_left', '{"name": "Left", "depends": ["sale_base"]}');
await addon('sale-workflow', 'sale_right', '{"name": "Right", "depends": ["sale_base"]}');
await addon('sale-workflow', 'sale_base', '{"name": "Base", "version": "17.0.2.0.0", "depends": ["sale", "queue_job"]}');
await addon('sale-workflow', 'sale_needs_missing', '{"name": "N", "depends": ["sale_base", "web_widget_x"]}');
await writeFile(path.join(root, 'sale-workflow', 'oca_dependencies.txt'), '# needed repositories\nqueue\nweb https://github.com/OCA/web.git 17.0\n');
await addon('loops', 'loop_a', '{"name": "A", "depends": ["loop_b"]}');
await addon('loops', 'loop_b', '{"name": "B", "depends": ["loop_a"]}');
await addon('dup-a', 'twice', '{"name": "Twice"}');
await addon('dup-b', 'twice', '{"name": "Twice again"}');
await addon('broken', 'bad_manifest', '{"name": "Bad", "depends": DEPENDS}');
await mkdir(path.join(root, 'ops'));
await writeFile(path.join(root, 'ops', 'addons-catalogue.yaml'), 'modules:\n  web_widget_x: { url: https://github.com/OCA/web.git, branch: "17.0" }\n');

async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: Io = { out: (s) => (out += s.endsWith('\n') ? s : s + '\n'), err: Object.assign(new (await import('node:stream')).PassThrough(), { isTTY: false }), isTTY: false };
  io.err.on('data', (d: Buffer) => (err += d.toString()));
  const code = await main(['deps', ...args, '--dir', root], io);
  return { code, out, err };
}
const addons = (...repos: string[]) => repos.flatMap((r) => ['--addons', path.join(root, r)]);

t.test('text: the install order and the Odoo command', async (t) => {
  const r = await run(['sale_top', ...addons('queue', 'sale-workflow')]);
  t.equal(r.code, 0, r.err);
  t.equal(
    r.out,
    [
      'Install order (9 modules, dependencies first):',
      '  1. base_sparse_field  core (image)',
      '  2. mail               core (image)',
      '  3. sale               core (image)',
      '  4. web                core (image)',
      '  5. queue_job          queue 17.0.1.0.0',
      '  6. sale_base          sale-workflow 17.0.2.0.0',
      '  7. sale_left          sale-workflow',
      '  8. sale_right         sale-workflow',
      '  9. sale_top           sale-workflow',
      '',
      'To install (9):',
      '  odoo -c /etc/odoo/odoo.conf -d DB -i base_sparse_field,mail,sale,web,queue_job,sale_base,sale_left,sale_right,sale_top --stop-after-init',
      '',
    ].join('\n'),
  );
});

t.test('--json, and a second run with what the first installed plans nothing', async (t) => {
  const first = await run(['sale_top', 'queue_job', ...addons('queue', 'sale-workflow'), '--json', '--installed', 'mail,web,base', '--database', 'odoo_staging']);
  t.equal(first.code, 0, first.err);
  const plan = JSON.parse(first.out);
  t.same(plan.requested, ['sale_top', 'queue_job']);
  t.same(plan.install, ['base_sparse_field', 'sale', 'queue_job', 'sale_base', 'sale_left', 'sale_right', 'sale_top']);
  t.same(plan.argv, ['odoo', '-c', '/etc/odoo/odoo.conf', '-d', 'odoo_staging', '-i', plan.install.join(','), '--stop-after-init']);
  t.same(plan.order.find((m: { name: string }) => m.name === 'mail'), { name: 'mail', repo: null, core: true, depends: [], version: null, installed: true });
  t.same(plan.order.find((m: { name: string }) => m.name === 'sale_base'), { name: 'sale_base', repo: 'sale-workflow', core: false, depends: ['queue_job', 'sale'], version: '17.0.2.0.0', installed: false });
  t.same(plan.problems, []);

  const installedNow = ['mail', 'web', 'base', ...plan.install].join(',');
  const second = await run(['sale_top', 'queue_job', ...addons('queue', 'sale-workflow'), '--json', '--installed', installedNow]);
  t.equal(second.code, 0);
  const again = JSON.parse(second.out);
  t.same(again.install, [], 'nothing left to install');
  t.equal(again.argv, null);
  const text = await run(['sale_top', ...addons('queue', 'sale-workflow'), '--installed', installedNow]);
  t.match(text.out, /^Nothing to install: all 9 modules are installed\.$/m);
  t.match(text.out, /^ {2}9\. sale_top {11}sale-workflow {2}installed$/m);
});

t.test('problems exit 1, all reported, none as a stack trace', async (t) => {
  const missing = await run(['sale_needs_missing', ...addons('queue', 'sale-workflow')]);
  t.equal(missing.code, 1);
  t.equal(
    missing.out.trim(),
    [
      '1 problem:',
      "  PULSER_E_MODULE_MISSING: module web_widget_x (needed by sale_needs_missing) is in no addons folder and not a core module; the catalogue maps it to web (https://github.com/OCA/web.git 17.0); sale-workflow's oca_dependencies.txt names queue",
    ].join('\n'),
  );
  const json = JSON.parse((await run(['sale_needs_missing', ...addons('queue', 'sale-workflow'), '--json'])).out);
  t.same(json.problems[0].details.candidates.map((c: { source: string; repo: string }) => `${c.source}:${c.repo}`), ['catalogue:web', 'oca_dependencies:queue']);
  t.same(json.install, []);
  t.equal(json.argv, null, 'no command when there are problems');

  const cycle = await run(['loop_a', ...addons('loops')]);
  t.equal(cycle.code, 1);
  t.match(cycle.out, /PULSER_E_MODULE_CYCLE: module dependencies form a cycle: loop_a → loop_b → loop_a/);

  const dup = await run(['twice', ...addons('dup-a', 'dup-b')]);
  t.equal(dup.code, 1);
  t.match(dup.out, /PULSER_E_MODULE_AMBIGUOUS: module twice is provided by dup-a and dup-b; keep only one of them/);

  const broken = await run(['bad_manifest', ...addons('broken')]);
  t.equal(broken.code, 1);
  t.match(broken.out, new RegExp(`PULSER_E_MANIFEST_SYNTAX: ${root}/broken/bad_manifest/__manifest__\\.py:1:28 name "DEPENDS" is not a literal`));

  const several = await run(['loop_a', 'ghost', 'twice', ...addons('loops', 'dup-a', 'dup-b')]);
  t.match(several.out, /^3 problems:$/m);
  for (const r of [missing, cycle, dup, broken, several]) t.equal(r.err, '', 'nothing on stderr');
});

t.test('usage errors exit 2', async (t) => {
  for (const [args, message] of [
    [[...addons('queue')], /deps needs at least one module/],
    [['queue_job'], /give --addons PATH/],
    [['queue_job', '--frobnicate', ...addons('queue')], /Unknown option '--frobnicate'/],
    [['not-a-module', ...addons('queue')], /"not-a-module" is not a module name/],
    [['queue_job', ...addons('nope')], /cannot read addons folder .*nope: ENOENT/],
  ] as const) {
    const r = await run([...args]);
    t.equal(r.code, 2, args.join(' '));
    t.match(r.err, /^pulser: PULSER_E_USAGE: /);
    t.match(r.err, message);
  }
  const help = await run(['--help']);
  t.equal(help.code, 0);
  t.match(help.out, /^Usage: pulser deps <module…>/);
});

t.test('the real binary: exit codes and output', async (t) => {
  const bin = fileURLToPath(new URL('../../bin/pulser.js', import.meta.url));
  const child = spawn(process.execPath, [bin, 'deps', 'queue_job', '--addons', path.join(root, 'queue'), '--dir', root, '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  t.equal(code, 0);
  t.same(JSON.parse(out).install, ['base_sparse_field', 'mail', 'web', 'queue_job']);
});
