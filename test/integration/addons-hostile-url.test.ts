// A hostile addon repository URL end to end: `pulser validate` refuses it with a located code,
// `pulser plan` runs nothing, and a pass whose desired state carries it anyway (the loader
// bypassed) has the addons observation refuse it before git runs. Judged by a marker file the
// URL's command would create and by the mirror folder git would have made.
import t from 'tap';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { World, suffix } from '../helpers/world.ts';
import { AddonRepoFixture } from '../helpers/odoo.ts';
import { main } from '../../src/cli/main.ts';
import { mirrorDir } from '../../src/drivers/gitrepo.ts';
import { addonsRoot } from '../../reconcilers/addons/layout.ts';
import type { EnvLoad } from '../../src/spec/model.ts';

process.env.TEST_DB_PASSWORD ??= 'test-db-password-1';
const w = await World.create();
const scratch = await mkdtemp(path.join(tmpdir(), 'pulser-hostile-url-'));
const repo = await AddonRepoFixture.create('acme');
await repo.module('acme_base', { version: '1.0' });
await repo.commit('first');
t.teardown(async () => {
  await w.cleanup();
  await repo.cleanup();
  await rm(scratch, { recursive: true, force: true });
});

const marker = path.join(scratch, 'marker');
const hostile: [string, string][] = [
  ['upload-pack', `--upload-pack=touch ${marker};`],
  ['ext', `ext::sh -c touch% ${marker}`],
  ['proxycommand', `ssh://-oProxyCommand=touch%20${marker}/x`],
];
const bad = `hu-${suffix()}`;
await w.env(bad, {
  extra: ['addons:', '  allow_local_repos: true', '  repos:', ...hostile.map(([name, url]) => `    - { url: ${JSON.stringify(url)}, ref: "17.0", name: ${name} }`), '    - { url: "${kv:' + bad + '.addons_url}", ref: "17.0", name: fromkv }', '  install: [acme_base]'].join('\n'),
});
await w.kv(`${bad}.addons_url`, `--upload-pack=touch ${marker};`);
const good = `hg-${suffix()}`;
await w.env(good, { extra: ['addons:', '  allow_local_repos: true', `  repos: [{ url: "${repo.url}", ref: "17.0" }]`].join('\n') });

function io() {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, io: { out: (s: string) => out.push(s), err: { write: (s: string) => err.push(s) > 0 } as unknown as NodeJS.WritableStream, isTTY: false } };
}

t.test('pulser validate refuses each hostile URL at its line and column', async (t) => {
  const r = io();
  const code = await main(['validate', '--dir', w.root], r.io);
  t.equal(code, 1);
  const text = r.out.join('\n');
  t.match(text, new RegExp(`^ok\\s+environments/${good}\\.yaml`, 'm'));
  t.match(text, new RegExp(`^invalid\\s+environments/${bad}\\.yaml$`, 'm'));
  const located = text.split('\n').filter((l) => new RegExp(`^\\s+environments/${bad}\\.yaml:\\d+:\\d+ addons\\.repos\\[\\d\\]\\.url: .*\\[PULSER_E_REPO_URL\\]$`).test(l));
  t.equal(located.length, 4, 'one located error per hostile URL (the kv one included)', { text });
  t.notMatch(text, /touch/, 'the URLs are not repeated');
  t.notOk(existsSync(marker));
});

t.test('pulser plan runs nothing for the invalid environment and plans the valid one', async (t) => {
  const r = io();
  const code = await main(['plan', bad, '--dir', w.root], r.io);
  t.equal(code, 1, r.out.join('\n') + r.err.join(''));
  t.match(r.out.join('\n') + r.err.join(''), /PULSER_E_REPO_URL/);
  const ok = io();
  t.equal(await main(['plan', good, '--detailed-exitcode', '--dir', w.root], ok.io), 3, 'drift found: the repository is fetched and planned');
  t.notOk(existsSync(marker), 'no hostile command ran');
  const desired = await w.desired(good);
  for (const [, url] of hostile) t.notOk(existsSync(mirrorDir(addonsRoot(desired), url)), 'no mirror for a hostile URL');
  t.ok(existsSync(mirrorDir(addonsRoot(desired), repo.url)), 'the valid repository was fetched');
});

t.test('a pass whose desired state carries a hostile URL anyway: the addons observation refuses it before git runs', async (t) => {
  const p = w.start();
  const snap = await p.load();
  const load = snap.envs.get(good)!;
  t.ok(load.ok);
  if (!load.ok) return;
  const addons = load.desired.spec.addons!;
  const forged: EnvLoad = { ...load, desired: { ...load.desired, spec: { ...load.desired.spec, addons: { ...addons, repos: hostile.map(([name, url]) => ({ url, ref: '17.0', name })) } } } };
  const rec = await p.engine.runPass(forged, { mode: 'apply', trigger: 'test', fresh: true });
  const refused = rec.plan.findings.filter((f) => f.error.code === 'PULSER_E_REPO_URL').map((f) => f.subject);
  t.same(refused, hostile.map(([name]) => `${good}/addons/repo/${name}`));
  t.same(rec.apply.filter((a) => a.subject.includes('/addons/repo/')), [], 'nothing was checked out');
  t.notOk(existsSync(marker), 'no hostile command ran');
  for (const [, url] of hostile) t.notOk(existsSync(mirrorDir(addonsRoot(load.desired), url)), 'git never ran: no mirror');
});
