// oca_dependencies.txt and ops/addons-catalogue.yaml: what they hold, and located errors when malformed.
import t from 'tap';
import { mkdtemp, mkdir, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadCatalogue, parseCatalogue, parseOcaDependencies } from '../../src/odoo/catalogue.ts';
import { scanAddonsFolders } from '../../src/odoo/scan.ts';

t.test('oca_dependencies.txt: names, urls, branches, comments', async (t) => {
  const text = '# repositories this one needs\n\nserver-tools\nqueue https://github.com/OCA/queue.git\r\nweb https://github.com/OCA/web.git 17.0  # pinned\n   \n';
  t.same(parseOcaDependencies(text, 'oca_dependencies.txt'), [
    { repo: 'server-tools', line: 3 },
    { repo: 'queue', url: 'https://github.com/OCA/queue.git', line: 4 },
    { repo: 'web', url: 'https://github.com/OCA/web.git', branch: '17.0', line: 5 },
  ]);
  t.same(parseOcaDependencies('', 'x'), []);
  t.throws(() => parseOcaDependencies('ok\nweb https://x/web.git 17.0 extra\n', 'r/oca_dependencies.txt'), { code: 'PULSER_E_CATALOGUE_INVALID', location: { file: 'r/oca_dependencies.txt', line: 2, col: 1 }, message: /found 4 fields/ });
  t.throws(() => parseOcaDependencies('  web not-a-url\n', 'f'), { code: 'PULSER_E_CATALOGUE_INVALID', location: { line: 1, col: 7 }, message: /not a repository URL/ });
  t.throws(() => parseOcaDependencies('wéb\n', 'f'), { message: /is not a repository name/ });
});

t.test('addons catalogue: module → repository, extra core modules, schema errors located', async (t) => {
  const c = parseCatalogue('# which repository provides what\nmodules:\n  queue_job: https://github.com/OCA/queue.git\n  web_responsive: { url: https://github.com/OCA/web.git, branch: "17.0" }\ncore: [sale_subscription]\nx-note: free\n', 'ops/addons-catalogue.yaml');
  t.same([...c.modules], [
    ['queue_job', { url: 'https://github.com/OCA/queue.git' }],
    ['web_responsive', { url: 'https://github.com/OCA/web.git', branch: '17.0' }],
  ]);
  t.same(c.core, ['sale_subscription']);
  t.same(parseCatalogue('', 'f').modules.size, 0, 'an empty file is an empty catalogue');
  t.throws(() => parseCatalogue('modules:\n  queue_job: https://x\nmodulez: {}\n', 'ops/addons-catalogue.yaml'), { code: 'PULSER_E_CATALOGUE_INVALID', message: 'modulez: unknown key', location: { file: 'ops/addons-catalogue.yaml', line: 3, col: 1 } });
  t.throws(() => parseCatalogue('modules:\n  queue_job: { branch: "17.0" }\n', 'f'), { message: /modules\.queue_job: must have required property 'url'/, location: { line: 2, col: 14 } });
  t.throws(() => parseCatalogue('modules:\n  queue-job: https://x\n', 'f'), { message: /module names are letters/, location: { line: 2, col: 3 } });
  t.throws(() => parseCatalogue('modules: [\n', 'f'), { code: 'PULSER_E_CATALOGUE_INVALID', location: { file: 'f' } });
  t.throws(() => parseCatalogue('modules:\n  a: x\n  a: y\n', 'f'), { code: 'PULSER_E_CATALOGUE_INVALID', message: /unique/i });
});

t.test('loadCatalogue and scanAddonsFolders read from disk', async (t) => {
  const root = await mkdtemp(path.join(tmpdir(), 'pulser-cat-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  t.same((await loadCatalogue(root)).modules.size, 0, 'no file: empty catalogue');
  await mkdir(path.join(root, 'ops'));
  await writeFile(path.join(root, 'ops', 'addons-catalogue.yaml'), 'modules:\n  queue_job: https://github.com/OCA/queue.git\n');
  t.equal((await loadCatalogue(root)).modules.get('queue_job')?.url, 'https://github.com/OCA/queue.git');

  const repo = path.join(root, 'sale-workflow');
  for (const [dir, file, text] of [
    ['sale_a', '__manifest__.py', '{"name": "A", "depends": ["sale"], "version": "17.0.1.0.0"}'],
    ['legacy_b', '__openerp__.py', "# -*- coding: utf-8 -*-\n{'name': 'B', 'depends': ['sale_a']}"],
    ['broken_c', '__manifest__.py', '{"name": "C", "depends": get()}'],
    ['not_a_module', 'README.md', 'no manifest here'],
    ['.git', 'HEAD', 'ref: refs/heads/main'],
  ] as const) {
    await mkdir(path.join(repo, dir), { recursive: true });
    await writeFile(path.join(repo, dir, file), text);
  }
  await writeFile(path.join(repo, 'oca_dependencies.txt'), 'queue\n');
  const scan = await scanAddonsFolders([{ path: repo }]);
  t.same(scan.modules.map((m) => [m.name, m.repo, m.depends, m.version]), [
    ['legacy_b', 'sale-workflow', ['sale_a'], null],
    ['sale_a', 'sale-workflow', ['sale'], '17.0.1.0.0'],
  ]);
  t.same(scan.ocaDependencies, [{ repo: 'queue', declaredIn: 'sale-workflow' }]);
  t.same([...scan.broken.keys()], ['broken_c']);
  t.match(scan.broken.get('broken_c')!.toString(), /broken_c\/__manifest__\.py:1:26 a call \(get\(…\)\) is not a literal/);
  await t.rejects(scanAddonsFolders([{ path: path.join(root, 'nope') }]), { code: 'PULSER_E_USAGE', message: /cannot read addons folder .*nope: ENOENT/ });
});
