// The resolver is pure: install orders, cycles, missing and ambiguous modules, core modules, golden.
import t from 'tap';
import { installPlan, resolveModules, resolveOrThrow, repoNameOf, type AvailableModule, type ResolveInput } from '../../src/odoo/resolve.ts';
import { coreModules } from '../../src/odoo/catalogue.ts';
import { PulserError } from '../../src/errors.ts';

const mod = (name: string, depends: string[], repo = 'repo-a', extra: Partial<AvailableModule> = {}): AvailableModule => ({ name, repo, depends, ...extra });
const input = (requested: string[], available: AvailableModule[], core: string[] = ['base'], hints?: ResolveInput['hints']): ResolveInput => ({ requested, available, core: new Set(core), ...(hints ? { hints } : {}) });
const names = (i: ResolveInput) => resolveModules(i).order.map((m) => m.name);

t.test('diamond: dependencies first, ties broken by name, each module once', async (t) => {
  const available = [mod('top', ['left', 'right']), mod('right', ['bottom']), mod('left', ['bottom']), mod('bottom', ['base'])];
  const r = resolveModules(input(['top'], available));
  t.same(r.problems, []);
  t.same(r.order.map((m) => m.name), ['base', 'bottom', 'left', 'right', 'top']);
  t.same(r.order[0], { name: 'base', repo: null, core: true, depends: [], version: null });
  t.same(r.order[4], { name: 'top', repo: 'repo-a', core: false, depends: ['left', 'right'], version: null });
  t.same(names(input(['top'], [...available].reverse())), ['base', 'bottom', 'left', 'right', 'top'], 'independent of the order modules are listed in');
  t.same(names(input(['right', 'top', 'left', 'top'], available)), ['base', 'bottom', 'left', 'right', 'top'], 'independent of the order (and repetition) of the request');
});

t.test('ties broken by name among independent modules, whatever depth they sit at', async (t) => {
  const available = [mod('z_leaf', []), mod('a_top', ['m_mid']), mod('m_mid', [])];
  t.same(names(input(['z_leaf', 'a_top'], available)), ['m_mid', 'a_top', 'z_leaf']);
});

t.test('a 500-deep chain resolves without recursion', async (t) => {
  const available = Array.from({ length: 500 }, (_, i) => mod(`m${String(i).padStart(3, '0')}`, i === 0 ? ['base'] : [`m${String(i - 1).padStart(3, '0')}`]));
  const order = names(input(['m499'], available));
  t.equal(order.length, 501);
  t.equal(order[0], 'base');
  t.equal(order[1], 'm000');
  t.equal(order[500], 'm499');
  // a reversed-name chain checks that dependencies beat name order
  const rev = Array.from({ length: 500 }, (_, i) => mod(`n${String(999 - i)}`, i === 0 ? [] : [`n${String(1000 - i)}`]));
  const o2 = names(input(['n500'], rev));
  t.equal(o2[0], 'n999');
  t.equal(o2[499], 'n500');
  const deepCycle = Array.from({ length: 2000 }, (_, i) => mod(`c${i}`, [`c${(i + 1) % 2000}`]));
  const r = resolveModules(input(['c0'], deepCycle));
  t.equal(r.problems.length, 1);
  t.equal((r.problems[0]!.details!.cycle as string[]).length, 2001, 'a 2000-module cycle reported whole');
});

t.test('cycles are reported with their path, starting at the smallest name', async (t) => {
  const r = resolveModules(input(['x'], [mod('x', ['c']), mod('c', ['a']), mod('a', ['b']), mod('b', ['c'])]));
  t.equal(r.problems.length, 1);
  const e = r.problems[0]!;
  t.equal(e.code, 'PULSER_E_MODULE_CYCLE');
  t.equal(e.message, 'module dependencies form a cycle: a → b → c → a');
  t.same(e.details, { cycle: ['a', 'b', 'c', 'a'] });
  t.same(r.order.map((m) => m.name), [], 'nothing behind a cycle is ordered');
  const self = resolveModules(input(['s'], [mod('s', ['s'])]));
  t.equal(self.problems[0]!.message, 'module dependencies form a cycle: s → s');
  const two = resolveModules(input(['p', 'q'], [mod('p', ['p2']), mod('p2', ['p']), mod('q', ['q2']), mod('q2', ['q']), mod('ok', [])]));
  t.same(two.problems.map((p) => p.message), ['module dependencies form a cycle: p → p2 → p', 'module dependencies form a cycle: q → q2 → q'], 'two cycles, two problems');
});

t.test('missing modules: who needs them and which repositories may provide them', async (t) => {
  const available = [mod('sale_x', ['queue_job', 'base'], 'sale-workflow'), mod('other', ['nowhere'], 'sale-workflow')];
  const hints: ResolveInput['hints'] = {
    catalogue: new Map([['queue_job', { url: 'https://github.com/OCA/queue.git', branch: '17.0' }]]),
    ocaDependencies: [{ repo: 'queue', url: 'https://github.com/OCA/queue.git', branch: '17.0', declaredIn: 'sale-workflow' }, { repo: 'server-tools', declaredIn: 'sale-workflow' }],
    unscanned: [{ repo: 'web', url: 'https://github.com/OCA/web.git', branch: '17.0' }],
  };
  const r = resolveModules(input(['sale_x', 'other'], available, ['base'], hints));
  t.same(r.problems.map((p) => p.code), ['PULSER_E_MODULE_MISSING', 'PULSER_E_MODULE_MISSING']);
  const [nowhere, queue] = r.problems as [PulserError, PulserError];
  t.equal(
    queue.message,
    "module queue_job (needed by sale_x) is in no addons folder and not a core module; the catalogue maps it to queue (https://github.com/OCA/queue.git 17.0); declared repository web (https://github.com/OCA/web.git 17.0) is not checked out; sale-workflow's oca_dependencies.txt names server-tools",
  );
  t.same(queue.details, {
    module: 'queue_job',
    neededBy: ['sale_x'],
    candidates: [
      { repo: 'queue', url: 'https://github.com/OCA/queue.git', branch: '17.0', source: 'catalogue' },
      { repo: 'web', url: 'https://github.com/OCA/web.git', branch: '17.0', source: 'declared' },
      { repo: 'server-tools', source: 'oca_dependencies', declaredIn: 'sale-workflow' },
    ],
  });
  t.match(nowhere.message, /^module nowhere \(needed by other\) is in no addons folder/);
  t.same(r.order.map((m) => m.name), ['base'], 'modules whose dependency is missing stay out of the order');
  const bare = resolveModules(input(['ghost'], []));
  t.equal(bare.problems[0]!.message, 'module ghost (requested) is in no addons folder and not a core module; no catalogue entry or oca_dependencies.txt names a repository for it');
  const deep = resolveModules(input(['a'], [mod('a', ['b']), mod('b', ['c']), mod('c', ['gone'])]));
  t.equal(deep.problems[0]!.message.split(';')[0], 'module gone (needed by c, via a → b → c) is in no addons folder and not a core module');
  t.same(deep.order, [], 'the whole chain above a missing module is left out');
});

t.test('a module provided by two repositories (or by a repository and the image) is ambiguous', async (t) => {
  const r = resolveModules(input(['app'], [mod('app', ['dup']), mod('dup', [], 'web'), mod('dup', [], 'web-fork'), mod('unused', [], 'x'), mod('unused', [], 'y')]));
  t.equal(r.problems.length, 1, 'an unused duplicate is not a problem');
  t.equal(r.problems[0]!.code, 'PULSER_E_MODULE_AMBIGUOUS');
  t.equal(r.problems[0]!.message, 'module dup is provided by web and web-fork; keep only one of them');
  t.same(r.problems[0]!.details, { module: 'dup', providers: ['web', 'web-fork'], neededBy: ['app'] });
  const core = resolveModules(input(['mail'], [mod('mail', [], 'my-fork')], ['base', 'mail']));
  t.equal(core.problems[0]!.message, 'module mail is provided by the Odoo image (core module) and my-fork; keep only one of them');
  t.same(resolveModules(input(['same'], [mod('same', []), mod('same', [])])).problems, [], 'one repository listed twice is not ambiguous');
});

t.test('core modules are not looked for and not traversed; not-installable modules refused', async (t) => {
  const r = resolveModules(input(['queue_job'], [mod('queue_job', ['mail', 'base_sparse_field', 'web'], 'queue', { version: '17.0.1.0.0' })], [...coreModules()]));
  t.same(r.problems, []);
  t.same(r.order.map((m) => [m.name, m.core, m.repo]), [
    ['base_sparse_field', true, null],
    ['mail', true, null],
    ['web', true, null],
    ['queue_job', false, 'queue'],
  ]);
  t.equal(r.order[3]!.version, '17.0.1.0.0');
  const ni = resolveModules(input(['a'], [mod('a', ['old']), mod('old', [], 'legacy', { installable: false })]));
  t.equal(ni.problems[0]!.code, 'PULSER_E_MODULE_NOT_INSTALLABLE');
  t.equal(ni.problems[0]!.message, 'module old (legacy) declares installable: False (needed by a)');
  t.ok(coreModules().has('base') && coreModules().has('mail') && !coreModules().has('queue_job'), 'built-in core list');
  t.ok(coreModules(['sale_subscription']).has('sale_subscription'), 'extras added');
});

t.test('install plan: only what is not installed, twice gives nothing', async (t) => {
  const order = resolveOrThrow(input(['top'], [mod('top', ['left', 'right']), mod('right', ['bottom']), mod('left', ['bottom']), mod('bottom', ['base'])]));
  const first = installPlan(order, new Set(['base']));
  t.same(first, ['bottom', 'left', 'right', 'top']);
  t.same(installPlan(order, new Set(['base', ...first])), [], 'the second run plans nothing');
  t.throws(() => resolveOrThrow(input(['a', 'b'], [])), { code: 'PULSER_E_MODULE_MISSING', message: /^module a \(requested\).*\(and 1 more: module b/ });
  t.throws(() => resolveOrThrow(input(['a'], [])), { code: 'PULSER_E_MODULE_MISSING', message: /^module a \(requested\)[^(]*$/ });
  t.equal(repoNameOf('https://github.com/OCA/queue.git'), 'queue');
  t.equal(repoNameOf('git@github.com:OCA/web.git/'), 'web');
});
