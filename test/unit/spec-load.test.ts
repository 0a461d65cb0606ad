// A valid spec loads with defaults, references resolved, secrets kept out of everything that
// may be shown, and a hash that follows every desired change (secrets included).
import t, { type Test } from 'tap';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { loadEnvironmentFile, loadSpecs, parseReferences, specHashOf } from '../../src/spec/load.ts';
import { canonicalJson } from '../../src/core/canonical.ts';
import { tryParseDuration as parseDuration } from '../../src/core/duration.ts';
import { SecretSource, parseSecretsFile } from '../../src/spec/secrets.ts';
import type { DesiredEnv, SpecSnapshot } from '../../src/spec/model.ts';

const HOSTS = '# yaml-language-server: $schema=../schema/hosts.schema.json\nhosts:\n  local:\n    kind: local\n';
const CANARY = 'canary-7f3a9c-do-not-leak';

const STAGING = `# yaml-language-server: $schema=../schema/environment.schema.json
name: staging
tier: staging
host: local
odoo:
  image: ghcr.io/acme/odoo:\${kv:staging.image_tag}
  port: \${kv:staging.port}
  config:
    proxy_mode: true
    db_maxconn: \${kv:maxconn}
  env:
    SMTP_PASSWORD: "\${secret:SMTP_PASSWORD}"
    GREETING: "v\${kv:staging.image_tag} on \${kv:maxconn} conns, literal $\${kv:x}"
database:
  name: odoo_staging
  host: db
  user: odoo
  password: "pw-\${secret:DB_PASSWORD}-end"
`;

function kv(extra: Record<string, string> = {}) {
  return { 'staging.image_tag.txt': '1.4.2\n', 'staging.port.txt': ' 8070 \n', 'maxconn.txt': '64\n', ...extra };
}

async function outsideDir(t: Test): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pulser-secrets-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function desired(snap: SpecSnapshot, name: string): DesiredEnv {
  const env = snap.envs.get(name);
  if (!env) throw new Error(`${name} not loaded`);
  if (!env.ok) throw new Error(env.errors.map(String).join('\n'));
  return env.desired;
}

const env = { SMTP_PASSWORD: CANARY, DB_PASSWORD: 'db-secret-value' };

t.test('a minimal valid spec loads with every default', async (t) => {
  const root = t.testdir({
    environments: {
      'hosts.yaml': HOSTS,
      'dev.yaml': 'name: dev\ntier: development\nhost: local\nodoo:\n  image: odoo:17.0\n  port: 8069\ndatabase:\n  name: odoo_dev\n  host: db\n  user: odoo\n',
    },
  });
  const snap = await loadSpecs(root, { secrets: new SecretSource({ env: {} }) });
  t.same(snap.hostErrors, []);
  t.same([...snap.hosts.keys()], ['local']);
  const d = desired(snap, 'dev');
  t.equal(d.file, 'environments/dev.yaml');
  t.equal(d.tier, 'development');
  t.equal(d.hostName, 'local');
  t.same(d.host, { kind: 'local', addons_dir: path.join(root, '.pulser', 'addons') }, 'addon checkouts default to the state folder');
  t.same(d.spec.sync, { auto: true, interval: '5m', prune: false });
  t.same(d.spec.odoo.health, { path: '/web/health', interval: '2s', timeout: '5s', retries: 30 });
  t.same(d.spec.odoo.config, {});
  t.same(d.spec.odoo.env, {});
  t.equal(d.spec.odoo.workers, 2);
  t.equal(d.spec.odoo.bind, '127.0.0.1');
  t.equal(d.spec.database.port, 5432);
  t.same(d.secretPaths, []);
  t.same(d.kvRefs, {});
  t.same(d.masked, d.spec);
  t.match(d.specHash, /^sha256:[0-9a-f]{64}$/);
  t.equal(snap.secretValues.size, 0);
});

t.test('kv and secrets are substituted', async (t) => {
  const root = t.testdir({ environments: { 'hosts.yaml': HOSTS, 'staging.yaml': STAGING }, ops: { kv: kv() } });
  const snap = await loadSpecs(root, { secrets: new SecretSource({ env }) });
  const d = desired(snap, 'staging');
  t.equal(d.spec.odoo.image, 'ghcr.io/acme/odoo:1.4.2');
  t.equal(d.spec.odoo.port, 8070, 'a whole-scalar kv reference becomes an integer where the schema wants one');
  t.equal(d.spec.odoo.config.db_maxconn, '64', 'and stays a string where a string is accepted');
  t.equal(d.spec.odoo.env.GREETING, 'v1.4.2 on 64 conns, literal ${kv:x}', 'several references, text around them, $${ escape');
  t.equal(d.spec.odoo.env.SMTP_PASSWORD, CANARY);
  t.equal(d.spec.database.password, 'pw-db-secret-value-end');
  t.same(d.kvRefs, { maxconn: '64', 'staging.image_tag': '1.4.2', 'staging.port': '8070' });
  t.same([...snap.secretValues].sort(), [CANARY, 'db-secret-value'].sort());
});

t.test('masked spec and secret paths', async (t) => {
  const root = t.testdir({ environments: { 'hosts.yaml': HOSTS, 'staging.yaml': STAGING }, ops: { kv: kv() } });
  const d = desired(await loadSpecs(root, { secrets: new SecretSource({ env }) }), 'staging');
  t.same(d.secretPaths, ['database.password', 'odoo.env.SMTP_PASSWORD']);
  t.equal(d.masked.odoo.env.SMTP_PASSWORD, '${secret:SMTP_PASSWORD}');
  t.equal(d.masked.database.password, 'pw-${secret:DB_PASSWORD}-end');
  t.equal(d.masked.odoo.image, d.spec.odoo.image, 'values without secrets are shown resolved');
  t.equal(d.masked.odoo.port, 8070);
  const shown = JSON.stringify(d.masked);
  t.notOk(shown.includes(CANARY), 'the canary appears nowhere in the masked spec');
  t.notOk(shown.includes('db-secret-value'));
  t.notOk(JSON.stringify({ ...d, spec: undefined }).includes(CANARY), 'nor anywhere else but spec');
  t.ok(JSON.stringify(d.spec).includes(CANARY), 'the resolved spec does hold it');
});

t.test('the spec hash follows secret values, the masked spec does not', async (t) => {
  const root = t.testdir({ environments: { 'hosts.yaml': HOSTS, 'staging.yaml': STAGING }, ops: { kv: kv() } });
  const a = desired(await loadSpecs(root, { secrets: new SecretSource({ env }) }), 'staging');
  const b = desired(await loadSpecs(root, { secrets: new SecretSource({ env: { ...env, SMTP_PASSWORD: CANARY + '-rotated' } }) }), 'staging');
  const a2 = desired(await loadSpecs(root, { secrets: new SecretSource({ env }) }), 'staging');
  t.not(a.specHash, b.specHash, 'rotating a secret changes the hash');
  t.equal(a.specHash, a2.specHash, 'the hash is stable');
  t.same(a.masked, b.masked, 'masked is identical');
  t.notOk(a.specHash.includes(CANARY));
});

t.test('the spec hash follows kv values', async (t) => {
  const root = t.testdir({ environments: { 'hosts.yaml': HOSTS, 'staging.yaml': STAGING }, ops: { kv: kv() } });
  const a = desired(await loadSpecs(root, { secrets: new SecretSource({ env }) }), 'staging');
  await writeFile(path.join(root, 'ops/kv/staging.image_tag.txt'), '1.4.3\n');
  const b = desired(await loadSpecs(root, { secrets: new SecretSource({ env }) }), 'staging');
  t.not(a.specHash, b.specHash);
  t.equal(b.spec.odoo.image, 'ghcr.io/acme/odoo:1.4.3');
});

t.test('x- keys are accepted and ignored by the hash; key order does not matter', async (t) => {
  const plain = 'name: dev\ntier: development\nhost: local\nodoo:\n  image: odoo:17.0\n  port: 8069\ndatabase:\n  name: odoo_dev\n  host: db\n  user: odoo\n';
  const decorated =
    'x-owner: team-erp\ndatabase:\n  user: odoo\n  host: db\n  name: odoo_dev\n  x-note: managed pg\nname: dev\nhost: local\ntier: development\nodoo:\n  port: 8069\n  x-why: { ticket: 42 }\n  image: odoo:17.0\n';
  const r1 = t.testdir({ environments: { 'hosts.yaml': HOSTS, 'dev.yaml': plain } });
  const a = desired(await loadSpecs(r1, { secrets: new SecretSource({ env: {} }) }), 'dev');
  const r2 = t.testdir({ environments: { 'hosts.yaml': HOSTS, 'dev.yaml': decorated } });
  const b = desired(await loadSpecs(r2, { secrets: new SecretSource({ env: {} }) }), 'dev');
  t.equal(b.spec['x-owner'], 'team-erp', 'kept in the spec');
  t.equal(a.specHash, b.specHash);
  t.equal(specHashOf({ spec: b.masked, secrets: b.secretDigests }), b.specHash, "the spec as written, each secret by its digest");
});

t.test('typed kv values', async (t) => {
  const spec = 'name: dev\ntier: development\nhost: local\nsync:\n  auto: ${kv:auto}\nodoo:\n  image: odoo:${kv:ver}\n  port: ${kv:port}\n  workers: ${kv:port2}\ndatabase:\n  name: odoo_dev\n  host: db\n  user: odoo\n';
  const root = t.testdir({ environments: { 'hosts.yaml': HOSTS, 'dev.yaml': spec }, ops: { kv: { 'auto.txt': 'false', 'ver.txt': '17', 'port.txt': '8069', 'port2.txt': '4' } } });
  const d = desired(await loadSpecs(root, { secrets: new SecretSource({ env: {} }) }), 'dev');
  t.equal(d.spec.sync.auto, false);
  t.equal(d.spec.odoo.image, 'odoo:17', 'text around the reference keeps it a string');
  t.equal(d.spec.odoo.port, 8069);
  t.equal(d.spec.odoo.workers, 4);
});

t.test('a secret is read from the secrets file; the environment wins', async (t) => {
  const dir = await outsideDir(t);
  const file = path.join(dir, 'secrets.env');
  await writeFile(file, `# pulser secrets\nexport SMTP_PASSWORD="${CANARY}"\nDB_PASSWORD='from # file'\n\nOTHER=x\r\n`);
  const root = t.testdir({ environments: { 'hosts.yaml': HOSTS, 'staging.yaml': STAGING }, ops: { kv: kv() } });
  const d = desired(await loadSpecs(root, { secrets: new SecretSource({ env: {}, file }) }), 'staging');
  t.equal(d.spec.odoo.env.SMTP_PASSWORD, CANARY);
  t.equal(d.spec.database.password, 'pw-from # file-end', 'quotes removed, # kept inside a value');
  const e = desired(await loadSpecs(root, { secrets: new SecretSource({ env: { DB_PASSWORD: 'from-env' }, file }) }), 'staging');
  t.equal(e.spec.database.password, 'pw-from-env-end');
  const viaEnv = desired(await loadSpecs(root, { secrets: new SecretSource({ env: { PULSER_SECRETS_FILE: file } }) }), 'staging');
  t.equal(viaEnv.spec.odoo.env.SMTP_PASSWORD, CANARY, 'PULSER_SECRETS_FILE names the file');
});

t.test('a secrets file inside the root is refused', async (t) => {
  const root = t.testdir({
    environments: { 'hosts.yaml': HOSTS, 'staging.yaml': STAGING },
    ops: { kv: kv() },
    '.secrets.env': `SMTP_PASSWORD=${CANARY}\nDB_PASSWORD=x\n`,
  });
  const secrets = new SecretSource({ env: {}, file: path.join(root, '.secrets.env') });
  const snap = await loadSpecs(root, { secrets });
  const env = snap.envs.get('staging');
  t.equal(env?.ok, false);
  if (env && !env.ok) {
    t.same(
      env.errors.map((e) => `${e.location?.line}:${e.location?.col} ${e.code}`),
      ['12:21 PULSER_E_SECRETS_FILE', '18:17 PULSER_E_SECRETS_FILE'],
    );
    t.match(env.errors[0].message, /inside the pulser root .* would be committed to git/);
    for (const e of env.errors) t.notOk(e.message.includes(CANARY));
  }
  t.equal(snap.secretValues.size, 0);
  await t.rejects(secrets.forRoot(root).load(), { code: 'PULSER_E_SECRETS_FILE' });
});

t.test('a malformed or unreadable secrets file', async (t) => {
  const dir = await outsideDir(t);
  const file = path.join(dir, 'secrets.env');
  await writeFile(file, `SMTP_PASSWORD=${CANARY}\nthis line has ${CANARY} but no equals sign\n`);
  const source = new SecretSource({ env: {}, file });
  await t.rejects(source.load(), { code: 'PULSER_E_SECRETS_FILE', message: /secrets\.env:2: expected NAME=value$/ });
  await source.load().catch((e: Error) => t.notOk(e.message.includes(CANARY), 'the value is never echoed'));
  await t.rejects(new SecretSource({ env: {}, file: path.join(dir, 'nope.env') }).get('X'), { code: 'PULSER_E_SECRETS_FILE', message: /cannot be read \(ENOENT\)/ });
  t.equal(await new SecretSource({ env: { X: '1' }, file: path.join(dir, 'nope.env') }).get('X'), '1', 'the environment is read first');

  const bad: [string, RegExp][] = [
    ['1BAD=x', /:1: invalid name/],
    [`A="${CANARY}`, /:1: A: unbalanced double quote$/],
    ['A=1\nA=2', /:2: A is defined twice$/],
    ['=x', /:1: invalid name/],
  ];
  for (const [text, why] of bad) {
    t.throws(() => parseSecretsFile(text, 'f.env'), { code: 'PULSER_E_SECRETS_FILE', message: why }, text.replace(CANARY, '…'));
  }
  t.same(
    [...parseSecretsFile('# c\n  A = 1 \nB=""\nC=\'x=y\'\nexport D=z\n', 'f.env')],
    [
      ['A', '1'],
      ['B', ''],
      ['C', 'x=y'],
      ['D', 'z'],
    ],
  );
});

t.test('loadEnvironmentFile loads one file', async (t) => {
  const root = t.testdir({ environments: { 'hosts.yaml': HOSTS, 'staging.yaml': STAGING }, ops: { kv: kv() } });
  const one = await loadEnvironmentFile(root, 'environments/staging.yaml', new Map([['local', { kind: 'local' as const }]]), new SecretSource({ env }));
  t.equal(one.result.ok, true);
  t.same(one.secretValues.sort(), [CANARY, 'db-secret-value'].sort());
  t.same(one.locate('/odoo/port'), { file: 'environments/staging.yaml', line: 7, col: 9 });
  t.same(one.locate('/odoo/health/retries'), { file: 'environments/staging.yaml', line: 6, col: 3 }, 'defaults point at the nearest written ancestor');
});

t.test('anchors and aliases', async (t) => {
  const spec = 'name: dev\ntier: development\nhost: local\nx-common: &common\n  LANG: C.UTF-8\nodoo:\n  image: odoo:17.0\n  port: 8069\n  env: *common\ndatabase:\n  name: odoo_dev\n  host: db\n  user: odoo\n';
  const root = t.testdir({ environments: { 'hosts.yaml': HOSTS, 'dev.yaml': spec } });
  const d = desired(await loadSpecs(root, { secrets: new SecretSource({ env: {} }) }), 'dev');
  t.same(d.spec.odoo.env, { LANG: 'C.UTF-8' });
});

t.test('every environment of the folder is loaded, dotfiles and other files skipped', async (t) => {
  const mk = (n: string, port: number) =>
    `name: ${n}\ntier: preview\nhost: local\nodoo:\n  image: odoo:17.0\n  port: ${port}\ndatabase:\n  name: odoo_${n.replace(/-/g, '_')}\n  host: db\n  user: odoo\n`;
  const root = t.testdir({
    environments: { 'hosts.yaml': HOSTS, 'pr-1.yaml': mk('pr-1', 9001), 'pr-2.yaml': mk('pr-2', 9002), '.draft.yaml': 'garbage: [', 'README.md': '# hi', 'old.yml.bak': 'x' },
  });
  const snap = await loadSpecs(root, { secrets: new SecretSource({ env: {} }) });
  t.same([...snap.envs.keys()], ['pr-1', 'pr-2']);
  t.ok([...snap.envs.values()].every((e) => e.ok));
  const only = await loadSpecs(root, { secrets: new SecretSource({ env: {} }), only: ['pr-2'] });
  t.same([...only.envs.keys()], ['pr-2']);
});

t.test('helpers', async (t) => {
  t.equal(canonicalJson({ b: 1, a: [{ d: 2, c: null }], 'x-z': 1 }, (k) => k.startsWith('x-')), '{"a":[{"c":null,"d":2}],"b":1}');
  t.equal(parseDuration('1h30m'), 5_400_000);
  t.equal(parseDuration('500ms'), 500);
  t.equal(parseDuration('5 minutes'), null);
  const { pieces, problems } = parseReferences('a $${b} ${kv:c}${secret:D} ${x');
  t.same(
    pieces.map((p) => (p.kind === 'text' ? p.text : `${p.kind}:${p.arg}@${p.start}`)),
    ['a ${b} ', 'kv:c@8', 'secret:D@15', ' ${x'],
  );
  t.same(problems, [{ start: 27, message: 'unclosed "${" (write "$${" for a literal "${")' }]);
});
