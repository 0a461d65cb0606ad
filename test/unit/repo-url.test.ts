// Addon repository URLs: the forms pulser fetches, the ones it refuses and why, and the loader
// reporting a refused URL as PULSER_E_REPO_URL at file:line:col without ever repeating it.
import t, { type Test } from 'tap';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { checkRepoUrl, classifyRepoUrl, defaultRepoName, transportsFor } from '../../src/spec/rules/repo-url.ts';
import { loadSpecs } from '../../src/spec/load.ts';
import { SecretSource } from '../../src/spec/secrets.ts';
import { HOSTS_YAML } from '../helpers/builders.ts';

const MARKER = '/tmp/pulser-marker-never';

const accepted: [string, 'https' | 'ssh' | 'local', boolean][] = [
  ['https://github.com/OCA/queue.git', 'https', false],
  ['https://x-access-token:ghs_abc123@github.com/acme/addons.git', 'https', false],
  ['https://git.example.org:8443/acme/addons', 'https', false],
  ['ssh://git@github.com/OCA/queue.git', 'ssh', false],
  ['ssh://deploy@git.example.org:2222/srv/git/addons.git', 'ssh', false],
  ['ssh://[::1]/srv/addons.git', 'ssh', false],
  ['git@github.com:OCA/queue.git', 'ssh', false],
  ['git.example.org:acme/addons.git', 'ssh', false],
  ['file:///srv/git/addons.git', 'local', true],
  ['/srv/git/addons.git', 'local', true],
];

t.test('the forms pulser fetches, each with its one transport', async (t) => {
  for (const [url, form, allowLocal] of accepted) {
    t.same(classifyRepoUrl(url, { allowLocal }), { form }, url);
    t.same(transportsFor(checkRepoUrl(url, { allowLocal })), [form === 'local' ? 'file' : form], `${url}: git may use only its transport`);
  }
});

const refused: [string, string, RegExp][] = [
  ['upload-pack as the URL', `--upload-pack=touch ${MARKER};`, /starts with "-"/],
  ['upload-pack without spaces', '--upload-pack=id', /starts with "-"/],
  ['upload-pack inside an https URL', 'https://example.org/x.git?--upload-pack=id', /--upload-pack/],
  ['the ext transport', `ext::sh -c touch% ${MARKER}`, /whitespace|transport helper/],
  ['the ext transport without spaces', 'ext::sh', /transport helper/],
  ['another transport helper', 'fd::3', /transport helper/],
  ['a newline', 'https://example.org/a.git\n--upload-pack=id', /control character/],
  ['a carriage return', 'https://example.org/a.git\r', /control character/],
  ['a NUL byte', 'https://example.org/a\u0000.git', /control character/],
  ['a line separator', 'https://example.org/a\u2028.git', /control character/],
  ['a tab', 'https://example.org/a\t.git', /control character/],
  ['a space', 'https://example.org/a .git', /whitespace/],
  ['ProxyCommand as an ssh URL host', `ssh://-oProxyCommand=touch%20${MARKER}/x`, /ProxyCommand/],
  ['ProxyCommand as an scp-like host', `-oProxyCommand=touch:${MARKER}`, /starts with "-"/],
  ['an ssh host starting with -', 'ssh://-x/repo.git', /host/],
  ['an scp-like host starting with -', 'git@-x:repo.git', /host/],
  ['an scp-like user starting with -', '-l@host:repo.git', /starts with "-"/],
  ['an scp-like path starting with -', 'git@host:-repo.git', /path starting with "-"/],
  ['plain http', 'http://example.org/a.git', /nobody authenticates/],
  ['the git protocol', 'git://example.org/a.git', /nobody authenticates/],
  ['an unknown scheme', 'ftp://example.org/a.git', /only https/],
  ['https without a path', 'https://example.org/', /names no repository/],
  ['a relative path', 'addons/acme.git', /not a repository URL/],
  ['a local path without the opt-in', '/srv/git/addons.git', /allow_local_repos/],
  ['file:// without the opt-in', 'file:///srv/git/addons.git', /allow_local_repos/],
  ['empty', '', /is empty/],
];

t.test('hostile and unsupported URLs are refused, with a reason', async (t) => {
  for (const [what, url, why] of refused) {
    const r = classifyRepoUrl(url, { allowLocal: false });
    t.ok('problem' in r, what);
    if ('problem' in r) t.match(r.problem, why, what);
    t.throws(() => checkRepoUrl(url, { allowLocal: false }), { code: 'PULSER_E_REPO_URL' }, what);
  }
  t.match(classifyRepoUrl('file://relative/x.git', { allowLocal: true }), { problem: /absolute path/ });
  t.match(classifyRepoUrl(`--upload-pack=touch ${MARKER};`, { allowLocal: true }), { problem: /starts with "-"/ }, 'the opt-in allows paths, never options');
  t.match(classifyRepoUrl('ext::sh', { allowLocal: true }), { problem: /transport helper/ });
});

t.test('the error of the driver check names no part of the URL', async (t) => {
  const err = t.throws(() => checkRepoUrl('http://user:tok3n-s3cret@example.org/a.git', { allowLocal: false })) as Error;
  t.notMatch(err.message, /tok3n-s3cret|example\.org/);
});

t.test('the checkout folder taken from a URL', async (t) => {
  t.equal(defaultRepoName('https://github.com/OCA/queue.git'), 'queue');
  t.equal(defaultRepoName('git@github.com:OCA/web.git/'), 'web');
  t.equal(defaultRepoName('git.example.org:acme.git'), 'acme');
});

const envYaml = (repos: string, extra = '') => `name: staging
tier: staging
host: local
odoo:
  image: odoo:17.0
  port: 8069
database:
  name: odoo_staging
  host: db
  user: odoo
addons:
${extra}  repos:
${repos}`;

async function load(t: Test, yaml: string, kv: Record<string, string> = {}, secrets: Record<string, string> = {}) {
  const root = t.testdir({ environments: { 'hosts.yaml': HOSTS_YAML }, ops: { kv: {} } });
  await writeFile(path.join(root, 'environments', 'staging.yaml'), yaml);
  for (const [k, v] of Object.entries(kv)) await writeFile(path.join(root, 'ops', 'kv', `${k}.txt`), v + '\n');
  const snap = await loadSpecs(root, { secrets: new SecretSource({ env: secrets }) });
  return snap.envs.get('staging')!;
}

t.test('the loader reports every refused URL at its line and column', async (t) => {
  const env = await load(
    t,
    envYaml(
      [
        `    - { url: "--upload-pack=touch ${MARKER};", ref: "17.0" }`,
        `    - { url: "ext::sh -c touch% ${MARKER}", ref: "17.0" }`,
        '    - { url: "https://example.org/a.git\\n--upload-pack=id", ref: "17.0" }',
        `    - { url: "ssh://-oProxyCommand=touch%20${MARKER}/x", ref: "17.0" }`,
        '    - { url: "/srv/git/addons.git", ref: "17.0" }',
        '    - { url: "https://example.org/fine.git", ref: "17.0" }',
        '',
      ].join('\n'),
    ),
  );
  t.equal(env.ok, false);
  if (env.ok) return;
  t.same(
    env.errors.map((e) => `${e.code} ${e.location?.file}:${e.location?.line}:${e.location?.col}`),
    [13, 14, 15, 16, 17].map((line) => `PULSER_E_REPO_URL environments/staging.yaml:${line}:14`),
  );
  t.match(env.errors[0]!.message, /^addons\.repos\[0\]\.url: starts with "-"/);
  t.match(env.errors[4]!.message, /allow_local_repos/);
  for (const e of env.errors) t.notMatch(e.message, /touch|upload-pack=id/, 'the URL itself is never repeated');
});

t.test('local paths load with the opt-in, and a folder name is needed where the URL gives none', async (t) => {
  const ok = await load(t, envYaml('    - { url: "file:///srv/git/acme.git", ref: "17.0" }\n    - { url: "/srv/git/web", ref: "17.0" }\n', '  allow_local_repos: true\n'));
  t.equal(ok.ok, true, ok.ok ? '' : ok.errors.map(String).join('\n'));
  const dots = await load(t, envYaml('    - { url: "git@example.org:acme/..", ref: "17.0" }\n'));
  t.match(dots.ok ? [] : dots.errors.map((e) => [e.code, e.message]), [['PULSER_E_REPO_URL', /no usable folder name/]]);
  const named = await load(t, envYaml('    - { url: "git@example.org:acme/..", ref: "17.0", name: acme }\n'));
  t.equal(named.ok, true);
});

t.test('a ref or an SSH host address starting with "-" breaks the schema', async (t) => {
  const env = await load(t, envYaml('    - { url: "https://example.org/a.git", ref: "--output=/tmp/x" }\n'));
  t.match(env.ok ? [] : env.errors.map((e) => [e.code, e.location?.line, e.message]), [['PULSER_E_SPEC_INVALID', 13, /addons\.repos\[0\]\.ref: must match \^/]]);
  const root = t.testdir({ environments: { 'hosts.yaml': 'hosts:\n  box:\n    kind: ssh\n    address: -oProxyCommand\n    user: deploy\n    key: ${secret:K}\n    hostKey: SHA256:' + 'A'.repeat(43) + '\n' } });
  const snap = await loadSpecs(root, { secrets: new SecretSource({ env: { K: 'k' } }) });
  t.match(snap.hostErrors.map((e) => [e.code, e.message]), [['PULSER_E_SPEC_INVALID', /address: must match \^/]]);
});

t.test('a URL from kv or from a secret is checked as resolved, and a secret is never shown', async (t) => {
  const fromKv = await load(t, envYaml('    - { url: "${kv:acme.url}", ref: "17.0" }\n'), { 'acme.url': `--upload-pack=touch ${MARKER};` });
  t.match(fromKv.ok ? [] : fromKv.errors.map((e) => e.code), ['PULSER_E_REPO_URL']);
  const token = 'ghs_s3cr3t-t0ken';
  const fromSecret = await load(t, envYaml('    - { url: "http://bot:${secret:GIT_TOKEN}@example.org/a.git", ref: "17.0" }\n'), {}, { GIT_TOKEN: token });
  t.equal(fromSecret.ok, false);
  if (fromSecret.ok) return;
  t.match(fromSecret.errors.map((e) => [e.code, e.message]), [['PULSER_E_REPO_URL', /nobody authenticates/]]);
  t.notMatch(JSON.stringify(fromSecret.errors.map((e) => e.toJSON())), token);
});
