// Where a spec's secrets may come from, what an untrusted load holds instead of them, and digests
// that prove nothing without the installation's key.
import t from 'tap';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadSpecs } from '../../src/spec/load.ts';
import { installationDigestKey, parseEnvPrefixes, SecretSource } from '../../src/spec/secrets.ts';
import { designOdooContainer, madeFrom } from '../../reconcilers/containers/design.ts';
import { LABEL } from '../../src/drivers/docker.ts';
import type { DesiredEnv, SpecSnapshot } from '../../src/spec/model.ts';

const HOSTS = 'hosts:\n  local:\n    kind: local\n';
const CANARY = 'canary-5e1d-secret-value';
const SPEC = `name: staging
tier: staging
host: local
odoo:
  image: odoo:17.0
  port: 8070
  env:
    SMTP_PASSWORD: "\${secret:ODOO_SMTP_PASSWORD}"
database:
  name: odoo_staging
  host: db
  user: odoo
  password: "\${secret:ODOO_DB_PASSWORD}"
`;
const ENV = { ODOO_SMTP_PASSWORD: CANARY, ODOO_DB_PASSWORD: 'db-value', HOME: '/root', PULSER_DISPATCH_SECRET: 'dispatch-value' };

function desired(snap: SpecSnapshot, name = 'staging'): DesiredEnv {
  const l = snap.envs.get(name)!;
  if (!l.ok) throw new Error(l.errors.map(String).join('\n'));
  return l.desired;
}

function errorsOf(snap: SpecSnapshot, name = 'staging'): string[] {
  const l = snap.envs.get(name)!;
  return l.ok ? [] : l.errors.map((e) => `${e.code} ${e.toString()}`);
}

t.test("a spec naming one of pulser's own credentials is refused where it is written, whatever the source holds", async (t) => {
  const root = t.testdir({
    environments: { 'hosts.yaml': HOSTS, 'staging.yaml': SPEC.replace('${secret:ODOO_SMTP_PASSWORD}', '${secret:PULSER_DISPATCH_SECRET}') },
  });
  const snap = await loadSpecs(root, { secrets: new SecretSource({ env: ENV }) });
  t.match(errorsOf(snap), [/^PULSER_E_SECRET_RESERVED environments\/staging\.yaml:8:21 odoo\.env\.SMTP_PASSWORD: \$\{secret:PULSER_DISPATCH_SECRET\} names one of pulser's own credentials/]);
  t.notOk(JSON.stringify(errorsOf(snap)).includes('dispatch-value'));
  const lower = await loadSpecs(t.testdir({ environments: { 'hosts.yaml': HOSTS, 'staging.yaml': SPEC.replace('ODOO_SMTP_PASSWORD', 'pulser_github_app_private_key') } }), { secrets: new SecretSource({ env: ENV }) });
  t.match(errorsOf(lower), [/PULSER_E_SECRET_RESERVED/], 'in any letter case');
  const untrusted = await loadSpecs(root, { secrets: new SecretSource({ env: ENV }), untrusted: true });
  t.match(errorsOf(untrusted), [/PULSER_E_SECRET_RESERVED/], 'an untrusted load refuses it too');
});

t.test('hosts.yaml naming a reserved secret as a token or key is refused at load', async (t) => {
  const hosts = 'hosts:\n  local:\n    kind: local\n  box:\n    kind: ssh\n    address: 10.1.2.3\n    user: root\n    key: "${secret:PULSER_GITHUB_APP_PRIVATE_KEY}"\n    hostKey: SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n';
  const root = t.testdir({ environments: { 'hosts.yaml': hosts, 'staging.yaml': SPEC } });
  const snap = await loadSpecs(root, { secrets: new SecretSource({ env: ENV }) });
  t.match(snap.hostErrors.map((e) => `${e.code} ${e.toString()}`), [/^PULSER_E_SECRET_RESERVED environments\/hosts\.yaml:8:11 hosts\.box\.key: /]);
});

t.test('process variables are read only under a declared prefix; the secrets file always', async (t) => {
  const outside = await mkdtemp(path.join(tmpdir(), 'pulser-secrets-'));
  t.teardown(() => rm(outside, { recursive: true, force: true }));
  await writeFile(path.join(outside, 'secrets.env'), 'ODOO_SMTP_PASSWORD=from-file\n');
  const root = t.testdir({ environments: { 'hosts.yaml': HOSTS, 'staging.yaml': SPEC.replace('ODOO_DB_PASSWORD', 'HOME') } });
  const undeclared = await loadSpecs(root, { secrets: new SecretSource({ env: ENV, envPrefixes: [] }) });
  t.match(errorsOf(undeclared), [/PULSER_E_SECRET_MISSING .*\$\{secret:ODOO_SMTP_PASSWORD\} is not set in process variables \(none: PULSER_SECRETS_ENV_PREFIX declares no prefix\)/, /PULSER_E_SECRET_MISSING .*\$\{secret:HOME\}/]);
  const odoo = await loadSpecs(root, { secrets: new SecretSource({ env: ENV, envPrefixes: ['ODOO_'] }) });
  t.match(errorsOf(odoo), [/\$\{secret:HOME\} is not set in process variables starting with ODOO_/], 'HOME is outside the declared prefix');
  const file = await loadSpecs(root, { secrets: new SecretSource({ env: ENV, envPrefixes: [], file: path.join(outside, 'secrets.env') }) });
  t.match(errorsOf(file), [/\$\{secret:HOME\} is not set/], 'only the name missing from the file fails');
  t.equal(errorsOf(file).length, 1);
  t.same(parseEnvPrefixes(' ODOO_, SMTP_ ,'), ['ODOO_', 'SMTP_']);
  t.throws(() => parseEnvPrefixes('PULSER_'), { code: 'PULSER_E_SECRETS_FILE' }, "pulser's namespace cannot be declared");
  t.throws(() => parseEnvPrefixes('PUL'), { code: 'PULSER_E_SECRETS_FILE' }, 'nor a prefix of it');
  t.throws(() => parseEnvPrefixes('A-B'), { code: 'PULSER_E_SECRETS_FILE' });
  const saved = process.env.PULSER_SECRETS_ENV_PREFIX;
  process.env.PULSER_SECRETS_ENV_PREFIX = 'ODOO_,SMTP_';
  t.same(new SecretSource().envPrefixes, ['ODOO_', 'SMTP_'], 'the process environment is read under PULSER_SECRETS_ENV_PREFIX');
  delete process.env.PULSER_SECRETS_ENV_PREFIX;
  t.same(new SecretSource().envPrefixes, [], 'none declared: no variable is read');
  if (saved === undefined) delete process.env.PULSER_SECRETS_ENV_PREFIX;
  else process.env.PULSER_SECRETS_ENV_PREFIX = saved;
  t.equal(await new SecretSource({ env: { ODOO_X: '1' }, envPrefixes: ['ODOO_'] }).forSpec('ODOO_X'), '1');
  t.equal(await new SecretSource({ env: { OTHER: '2' }, envPrefixes: ['ODOO_'] }).forSpec('OTHER'), undefined);
  t.equal(await new SecretSource({ env: { PULSER_DISPATCH_SECRET: 'x' } }).get('PULSER_DISPATCH_SECRET'), 'x', 'pulser still reads its own credentials');
});

t.test('an untrusted load holds references, never values, and hashes like the trusted one', async (t) => {
  const root = t.testdir({ environments: { 'hosts.yaml': HOSTS, 'staging.yaml': SPEC } });
  const key = Buffer.alloc(32, 7);
  const trusted = desired(await loadSpecs(root, { secrets: new SecretSource({ env: ENV, digestKey: key }) }));
  const untrustedSnap = await loadSpecs(root, { secrets: new SecretSource({ env: ENV, digestKey: key }), untrusted: true });
  const untrusted = desired(untrustedSnap);
  t.equal(untrusted.untrusted, true);
  t.equal(untrusted.spec.odoo.env.SMTP_PASSWORD, '${secret:ODOO_SMTP_PASSWORD}');
  t.equal(untrusted.spec.database.password, '${secret:ODOO_DB_PASSWORD}');
  t.notOk(JSON.stringify(untrusted).includes(CANARY), 'the value is nowhere in the untrusted desired state');
  t.equal(untrusted.specHash, trusted.specHash, 'same spec, same hash');
  t.same(untrusted.secretDigests, trusted.secretDigests);
  const dt = designOdooContainer(trusted);
  const du = designOdooContainer(untrusted);
  t.equal(du.specHash, dt.specHash, 'the container design hashes the same: an unchanged environment plans no rollout');
  t.same(du.shown, dt.shown);
  t.equal(du.legacySpecHash, null);

  const rotated = desired(await loadSpecs(root, { secrets: new SecretSource({ env: { ...ENV, ODOO_SMTP_PASSWORD: 'rotated' }, digestKey: key }), untrusted: true }));
  t.not(rotated.specHash, trusted.specHash, 'a rotated secret still changes the hash of an untrusted load');
  t.not(designOdooContainer(rotated).specHash, dt.specHash);

  const missing = await loadSpecs(root, { secrets: new SecretSource({ env: {}, digestKey: key }), untrusted: true });
  t.same(errorsOf(missing), [], 'an unset secret is no error in an untrusted plan');
});

t.test('a container labelled before digests counted stays in sync (no restart on upgrade)', async (t) => {
  const root = t.testdir({ environments: { 'hosts.yaml': HOSTS, 'staging.yaml': SPEC } });
  const d = designOdooContainer(desired(await loadSpecs(root, { secrets: new SecretSource({ env: ENV }) })));
  t.ok(d.legacySpecHash);
  t.not(d.legacySpecHash, d.specHash);
  t.ok(madeFrom({ [LABEL.specHash]: d.legacySpecHash! }, d));
  t.ok(madeFrom({ [LABEL.specHash]: d.specHash }, d));
  t.notOk(madeFrom({ [LABEL.specHash]: 'sha256:other' }, d));
  t.notOk(madeFrom({}, d));
});

t.test('digests are keyed: the old unkeyed digest and a guess cannot be recomputed without the key', async (t) => {
  const root = t.testdir({ environments: { 'hosts.yaml': HOSTS, 'staging.yaml': SPEC } });
  const a = desired(await loadSpecs(root, { secrets: new SecretSource({ env: ENV, digestKey: Buffer.alloc(32, 1) }) }));
  const b = desired(await loadSpecs(root, { secrets: new SecretSource({ env: ENV, digestKey: Buffer.alloc(32, 2) }) }));
  const shown = designOdooContainer(a).shown.env.SMTP_PASSWORD!;
  t.match(shown, /^\$\{secret:ODOO_SMTP_PASSWORD\} #[0-9a-f]{12}$/);
  const digest = shown.split('#')[1]!;
  const unkeyed = createHash('sha256').update(`staging\0odoo.env.SMTP_PASSWORD\0${CANARY}`).digest('hex').slice(0, 12);
  t.not(digest, unkeyed, 'the known value does not reproduce the shown digest');
  t.not(a.secretDigests['odoo.env.SMTP_PASSWORD'], b.secretDigests['odoo.env.SMTP_PASSWORD'], 'another installation shows another digest');
  t.not(a.specHash, b.specHash);
  t.notOk(a.specHash.includes(CANARY));
});

t.test('the installation key is made once, owner-only, and read back by every process', async (t) => {
  const dir = path.join(t.testdir({}), 'state');
  const k1 = installationDigestKey(dir);
  const k2 = installationDigestKey(dir);
  t.equal(k1.length, 32);
  t.same(k1, k2);
  t.equal((await stat(path.join(dir, 'secret-digest.key'))).mode & 0o777, 0o600);
  const other = installationDigestKey(path.join(t.testdir({}), 'state'));
  t.notSame(other, k1);
  const bad = t.testdir({ 'secret-digest.key': 'short\n' });
  t.throws(() => installationDigestKey(bad), { code: 'PULSER_E_SECRETS_FILE' });
});

t.test('a notice-only load (pulser validate) keeps the environment valid and names each unset secret', async (t) => {
  const spec = SPEC + 'alerts:\n  uptime_min: 0.99\n  webhook: { url: "${secret:ODOO_HOOK_URL}" }\n';
  const root = t.testdir({ environments: { 'hosts.yaml': HOSTS, 'staging.yaml': spec } });
  const snap = await loadSpecs(root, { secrets: new SecretSource({ env: {} }), unsetSecrets: 'notice' });
  t.same(errorsOf(snap), [], 'valid: the schema does not judge a value it does not have (the URL pattern)');
  t.same(
    snap.notices!.map((n) => n.toString().replace(/ is not set .*/, '')),
    ['environments/staging.yaml:8:21 odoo.env.SMTP_PASSWORD: ${secret:ODOO_SMTP_PASSWORD}', 'environments/staging.yaml:13:14 database.password: ${secret:ODOO_DB_PASSWORD}', 'environments/staging.yaml:16:20 alerts.webhook.url: ${secret:ODOO_HOOK_URL}'],
  );
  t.equal(desired(snap).spec.database.password, '${secret:ODOO_DB_PASSWORD}', 'the value stays its reference');
  const strict = await loadSpecs(root, { secrets: new SecretSource({ env: {} }) });
  t.equal(errorsOf(strict).length, 3, 'a load for apply still refuses them');
  const reserved = await loadSpecs(t.testdir({ environments: { 'hosts.yaml': HOSTS, 'staging.yaml': SPEC.replace('ODOO_DB_PASSWORD', 'PULSER_X') } }), { secrets: new SecretSource({ env: {} }), unsetSecrets: 'notice' });
  t.match(errorsOf(reserved), [/PULSER_E_SECRET_RESERVED/], 'a reserved name is an error, not a notice');
});
