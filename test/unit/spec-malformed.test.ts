// Every kind of broken spec must be reported with its code, the exact file:line:col and a message
// that tells the author what to fix; nothing broken may load.
import t, { type Test } from 'tap';
import { loadSpecs } from '../../src/spec/load.ts';
import { SecretSource } from '../../src/spec/secrets.ts';
import type { PulserError } from '../../src/errors.ts';

const HOSTS = 'hosts:\n  local:\n    kind: local\n  sgp-1:\n    kind: local\n';

// Line numbers below refer to this listing.
const BASE = [
  '# yaml-language-server: $schema=../schema/environment.schema.json', // 1
  'name: staging', // 2
  'tier: staging', // 3
  'host: local', // 4
  'sync:', // 5
  '  auto: true', // 6
  '  interval: 5m', // 7
  'odoo:', // 8
  '  image: odoo:17.0', // 9
  '  workers: 2', // 10
  '  port: 8070', // 11
  '  config:', // 12
  '    proxy_mode: true', // 13
  '  env:', // 14
  '    LOG_LEVEL: info', // 15
  'database:', // 16
  '  name: odoo_staging', // 17
  '  host: db', // 18
  '  user: odoo', // 19
];

/** BASE with line `n` (1-based) replaced by `lines` (none removes it). */
function edit(n: number, ...lines: string[]): string {
  const out = [...BASE];
  out.splice(n - 1, 1, ...lines);
  return out.join('\n') + '\n';
}
const append = (...lines: string[]) => [...BASE, ...lines].join('\n') + '\n';

interface Expected {
  code: string;
  /** `environments/staging.yaml:9:15 odoo.image: …` (exact) or a pattern for the whole toString(). */
  text: string | RegExp;
}

interface Case {
  name: string;
  staging: string;
  kv?: Record<string, string>;
  hosts?: string;
  /** Environments other than staging. */
  others?: Record<string, string>;
  expect: Expected[];
  /** Other environments expected to fail, with their errors. */
  expectOthers?: Record<string, Expected[]>;
}

const F = 'environments/staging.yaml';
const bigValue = 'x'.repeat(5000);

const cases: Case[] = [
  {
    name: 'YAML syntax error',
    staging: edit(9, '  image: [odoo:17.0'),
    expect: [{ code: 'PULSER_E_SPEC_YAML', text: /^environments\/staging\.yaml:10:3 YAML syntax error: flow sequence in block collection must be sufficiently indented and end with a \]/ }],
  },
  {
    name: 'tab indentation',
    staging: edit(10, '\tworkers: 2'),
    expect: [{ code: 'PULSER_E_SPEC_YAML', text: `${F}:10:1 tab used for indentation (YAML indents with spaces)` }],
  },
  {
    name: 'duplicate key',
    staging: edit(11, '  port: 8070', '  port: 8071'),
    expect: [{ code: 'PULSER_E_SPEC_YAML', text: `${F}:12:3 duplicate key "port"` }],
  },
  {
    name: 'two documents',
    staging: append('---', 'name: other'),
    expect: [{ code: 'PULSER_E_SPEC_YAML', text: `${F}:20:1 several YAML documents in one file (one environment per file, no second "---")` }],
  },
  {
    name: 'unquoted reference inside a flow mapping',
    staging: edit(15, '    LOG_LEVEL: info', '  x-flow: { A: ${kv:a} }'),
    expect: [{ code: 'PULSER_E_SPEC_YAML', text: /^environments\/staging\.yaml:16:17 YAML syntax error: .* \(quote "\$\{…\}" references inside \{ \} and \[ \]\)$/ }],
  },
  {
    name: 'empty file',
    staging: '# nothing yet\n',
    expect: [{ code: 'PULSER_E_SPEC_INVALID', text: `${F}:1:1 (root): the file is empty (expected name, tier, host, odoo and database)` }],
  },
  {
    name: 'unknown top-level key',
    staging: append('replicas: 2'),
    expect: [{ code: 'PULSER_E_SPEC_UNKNOWN_KEY', text: `${F}:20:1 replicas: unknown key (known keys: name, tier, host, sync, odoo, database, alerts, addons, mail, backup, staging; free-form keys start with x-)` }],
  },
  {
    name: 'unknown nested key with a suggestion',
    staging: edit(10, '  wrkers: 2'),
    expect: [{ code: 'PULSER_E_SPEC_UNKNOWN_KEY', text: `${F}:10:3 odoo.wrkers: unknown key (did you mean "workers"?)` }],
  },
  {
    name: 'wrong type',
    staging: edit(10, '  workers: "two"'),
    expect: [{ code: 'PULSER_E_SPEC_INVALID', text: `${F}:10:12 odoo.workers: must be integer` }],
  },
  {
    name: 'out of range',
    staging: edit(11, '  port: 70000'),
    expect: [{ code: 'PULSER_E_SPEC_INVALID', text: `${F}:11:9 odoo.port: must be <= 65535` }],
  },
  {
    name: 'enum',
    staging: edit(3, 'tier: prod'),
    expect: [{ code: 'PULSER_E_SPEC_INVALID', text: `${F}:3:7 tier: must be one of production, staging, development, preview` }],
  },
  {
    name: 'missing required key (at the parent mapping)',
    staging: edit(9),
    expect: [{ code: 'PULSER_E_SPEC_INVALID', text: `${F}:9:3 odoo.image: required key is missing` }],
  },
  {
    name: 'missing required top-level section',
    staging: BASE.slice(0, 15).join('\n') + '\n',
    expect: [{ code: 'PULSER_E_SPEC_INVALID', text: `${F}:2:1 database: required key is missing` }],
  },
  {
    name: 'name mismatch',
    staging: edit(2, 'name: stage'),
    expect: [{ code: 'PULSER_E_SPEC_NAME_MISMATCH', text: `${F}:2:7 name: "stage" does not match the file name staging.yaml (expected "staging")` }],
  },
  {
    name: 'bad duration',
    staging: edit(7, '  interval: 5 minutes'),
    expect: [{ code: 'PULSER_E_SPEC_INVALID', text: `${F}:7:13 sync.interval: must be a duration such as 30s, 5m or 1h30m (units ms, s, m, h, d)` }],
  },
  {
    name: 'sync interval out of bounds',
    staging: edit(7, '  interval: 1s'),
    expect: [{ code: 'PULSER_E_SPEC_INVALID', text: `${F}:7:13 sync.interval: must be between 5s and 1d` }],
  },
  {
    name: 'bad IPv4 bind address',
    staging: edit(11, '  port: 8070', '  bind: 10.0.0'),
    expect: [{ code: 'PULSER_E_SPEC_INVALID', text: `${F}:12:9 odoo.bind: must be an IPv4 address` }],
  },
  {
    name: 'unknown host',
    staging: edit(4, 'host: sgp-2'),
    expect: [{ code: 'PULSER_E_HOST_UNKNOWN', text: `${F}:4:7 host: "sgp-2" is not declared in environments/hosts.yaml (did you mean "sgp-1"?)` }],
  },
  {
    name: 'hosts.yaml invalid',
    staging: edit(4, 'host: local'),
    hosts: 'hosts:\n  local:\n    kind: ssh\n',
    expect: [{ code: 'PULSER_E_HOST_UNKNOWN', text: `${F}:4:7 host: cannot check host "local": environments/hosts.yaml is missing or invalid` }],
  },
  {
    name: 'sftp backup destination without its host',
    staging: append('backup:', '  schedule: "0 3 * * *"', '  destination:', '    type: sftp', '    path: /srv/backups'),
    expect: [{ code: 'PULSER_E_SPEC_INVALID', text: `${F}:23:5 backup.destination.host: required key is missing` }],
  },
  {
    name: 'sftp backup destination on an undeclared host',
    staging: append('backup:', '  schedule: "0 3 * * *"', '  destination: { type: sftp, host: bakup-box, path: /srv/backups }'),
    hosts: HOSTS + '  backup-box:\n    kind: ssh\n    address: 10.0.0.9\n    user: backup\n    key: ${secret:BOX_KEY}\n    hostKey: SHA256:' + 'A'.repeat(43) + '\n',
    expect: [{ code: 'PULSER_E_HOST_UNKNOWN', text: `${F}:22:36 backup.destination.host: "bakup-box" is not declared in environments/hosts.yaml (did you mean "backup-box"?)` }],
  },
  {
    name: 'sftp backup destination on the local host',
    staging: append('backup:', '  schedule: "0 3 * * *"', '  destination: { type: sftp, host: sgp-1, path: /srv/backups }'),
    expect: [{ code: 'PULSER_E_SPEC_INVALID', text: `${F}:22:36 backup.destination.host: "sgp-1" is the local host: use { type: local, path: … } for a folder on this machine` }],
  },
  {
    name: 'sftp backup destination on a droplet without an address',
    staging: append('backup:', '  schedule: "0 3 * * *"', '  destination: { type: sftp, host: box, path: /srv/backups }'),
    hosts: HOSTS + '  box:\n    kind: digitalocean\n    droplet: { name: box, region: fra1, size: s-1vcpu-1gb, image: debian-12-x64 }\n    token: ${secret:DO_TOKEN}\n    user: root\n    key: ${secret:BOX_KEY}\n    hostKey: SHA256:' + 'A'.repeat(43) + '\n',
    expect: [{ code: 'PULSER_E_SPEC_INVALID', text: `${F}:22:36 backup.destination.host: droplet "box" declares no address: give it one in environments/hosts.yaml to keep backups there` }],
  },
  {
    name: 'a local backup destination naming a host',
    staging: append('backup:', '  schedule: "0 3 * * *"', '  destination: { type: local, host: sgp-1, path: /srv/backups }'),
    expect: [{ code: 'PULSER_E_SPEC_INVALID', text: `${F}:22:37 backup.destination.host: only an sftp destination names a host (a local one is a folder on this machine)` }],
  },
  {
    name: 'missing kv key',
    staging: edit(9, '  image: odoo:${kv:missing}'),
    expect: [{ code: 'PULSER_E_KV_MISSING', text: `${F}:9:15 odoo.image: \${kv:missing}: ops/kv/missing.txt does not exist` }],
  },
  {
    name: 'kv key climbing out of ops/kv',
    staging: edit(9, '  image: "odoo:${kv:../etc/passwd}"'),
    expect: [{ code: 'PULSER_E_KV_KEY_INVALID', text: `${F}:9:16 odoo.image: \${kv:../etc/passwd}: invalid kv key: contains "/" (keys are file names, not paths); only A-Z a-z 0-9 . _ - are allowed` }],
  },
  {
    name: 'kv key with a slash',
    staging: edit(9, "  image: 'odoo:${kv:a/b}'"),
    expect: [{ code: 'PULSER_E_KV_KEY_INVALID', text: `${F}:9:16 odoo.image: \${kv:a/b}: invalid kv key: contains "/" (keys are file names, not paths); only A-Z a-z 0-9 . _ - are allowed` }],
  },
  {
    name: 'kv key in full-width letters',
    staging: edit(9, '  image: odoo:${kv:ｓｔａｇｉｎｇ}'),
    expect: [{ code: 'PULSER_E_KV_KEY_INVALID', text: `${F}:9:15 odoo.image: \${kv:ｓｔａｇｉｎｇ}: invalid kv key: contains the non-ASCII character "ｓ" (U+FF53); only A-Z a-z 0-9 . _ - are allowed` }],
  },
  {
    name: 'kv key with a NUL (escaped scalar: located at the scalar)',
    staging: edit(9, '  image: "odoo:${kv:a\\0b}"'),
    expect: [{ code: 'PULSER_E_KV_KEY_INVALID', text: `${F}:9:10 odoo.image: \${kv:a\\u0000b}: invalid kv key: contains a NUL character (U+0000); only A-Z a-z 0-9 . _ - are allowed` }],
  },
  {
    name: 'empty kv reference',
    staging: edit(9, '  image: odoo:${kv:}'),
    expect: [{ code: 'PULSER_E_REF_SYNTAX', text: `${F}:9:15 odoo.image: \${kv:}: empty kv key` }],
  },
  {
    name: 'unclosed reference',
    staging: edit(9, '  image: odoo:${kv:tag'),
    expect: [{ code: 'PULSER_E_REF_SYNTAX', text: `${F}:9:15 odoo.image: unclosed "\${" (write "$\${" for a literal "\${")` }],
  },
  {
    name: 'unknown reference kind',
    staging: edit(15, '    HOME_DIR: ${env:HOME}'),
    expect: [{ code: 'PULSER_E_REF_SYNTAX', text: `${F}:15:15 odoo.env.HOME_DIR: \${env:HOME}: unknown reference kind "env" (only kv: and secret: exist; write "$\${" for a literal "\${")` }],
  },
  {
    name: 'kv value with a NUL byte',
    staging: edit(9, '  image: odoo:${kv:tag}'),
    kv: { 'tag.txt': '17.0\0evil\n' },
    expect: [{ code: 'PULSER_E_KV_VALUE_INVALID', text: `${F}:9:15 odoo.image: \${kv:tag}: ops/kv/tag.txt: value contains a NUL character` }],
  },
  {
    name: 'multi-line kv value',
    staging: edit(9, '  image: odoo:${kv:tag}'),
    kv: { 'tag.txt': '17.0\nlatest\n' },
    expect: [{ code: 'PULSER_E_KV_VALUE_INVALID', text: `${F}:9:15 odoo.image: \${kv:tag}: ops/kv/tag.txt: value spans several lines (a value is a single line)` }],
  },
  {
    name: 'oversized kv value',
    staging: edit(9, '  image: odoo:${kv:tag}'),
    kv: { 'tag.txt': bigValue },
    expect: [{ code: 'PULSER_E_KV_VALUE_INVALID', text: `${F}:9:15 odoo.image: \${kv:tag}: ops/kv/tag.txt: value is 5000 bytes long (at most 4096)` }],
  },
  {
    name: 'kv value of the wrong type for a typed position',
    staging: edit(11, '  port: ${kv:staging.port}'),
    kv: { 'staging.port.txt': 'eighty\n' },
    expect: [{ code: 'PULSER_E_SPEC_INVALID', text: `${F}:11:9 odoo.port: must be integer` }],
  },
  {
    name: 'missing secret',
    staging: edit(15, '    SMTP_PASSWORD: "${secret:MISSING}"'),
    expect: [{ code: 'PULSER_E_SECRET_MISSING', text: `${F}:15:21 odoo.env.SMTP_PASSWORD: \${secret:MISSING} is not set in the pulser process environment (no secrets file: PULSER_SECRETS_FILE is not set)` }],
  },
  {
    name: 'invalid secret name',
    staging: edit(15, '    SMTP_PASSWORD: "${secret:9lives}"'),
    expect: [{ code: 'PULSER_E_REF_SYNTAX', text: `${F}:15:21 odoo.env.SMTP_PASSWORD: \${secret:9lives}: invalid secret name (letters, digits and _, not starting with a digit, at most 128)` }],
  },
  {
    name: 'forbidden odoo.config key',
    staging: edit(13, '    db_password: hunter2'),
    expect: [{ code: 'PULSER_E_SPEC_INVALID', text: `${F}:13:5 odoo.config.db_password: not allowed in odoo.config (set through database, odoo.port and odoo.workers, not odoo.config)` }],
  },
  {
    name: 'environment variable with an invalid name',
    staging: edit(15, '    1LOG-LEVEL: info'),
    expect: [{ code: 'PULSER_E_SPEC_INVALID', text: `${F}:15:5 odoo.env.1LOG-LEVEL: invalid environment variable name (letters, digits and _, not starting with a digit)` }],
  },
  {
    name: 'port conflict between two environments on one host',
    staging: edit(11, '  port: 8070'),
    others: {
      production: BASE.join('\n').replace('name: staging', 'name: production').replace('tier: staging', 'tier: production').replace('odoo_staging', 'odoo_prod') + '\n',
    },
    expect: [{ code: 'PULSER_E_SPEC_CONFLICT', text: `${F}:11:9 odoo.port: port 8070 on host local is also claimed by environments/production.yaml` }],
    expectOthers: {
      production: [{ code: 'PULSER_E_SPEC_CONFLICT', text: 'environments/production.yaml:11:9 odoo.port: port 8070 on host local is also claimed by environments/staging.yaml' }],
    },
  },
  {
    name: 'database shared between two environments on one host',
    staging: edit(11, '  port: 8070'),
    others: {
      dev: BASE.join('\n').replace('name: staging', 'name: dev').replace('tier: staging', 'tier: development').replace('port: 8070', 'port: 8071') + '\n',
    },
    expect: [{ code: 'PULSER_E_SPEC_CONFLICT', text: `${F}:17:9 database.name: database odoo_staging on db:5432 is also claimed by environments/dev.yaml` }],
    expectOthers: {
      dev: [{ code: 'PULSER_E_SPEC_CONFLICT', text: 'environments/dev.yaml:17:9 database.name: database odoo_staging on db:5432 is also claimed by environments/staging.yaml' }],
    },
  },
  {
    name: 'several errors in one file, reported together in order',
    staging: [
      'name: staging', // 1
      'tier: prod', // 2
      'host: local', // 3
      'colour: blue', // 4
      'odoo:', // 5
      '  image: odoo:${kv:nope}', // 6
      '  workers: many', // 7
      '  port: 0', // 8
      '  env:', // 9
      '    TOKEN: ${secret:NOPE}', // 10
      'database:', // 11
      '  name: odoo_staging', // 12
      '  host: db', // 13
    ].join('\n') + '\n',
    expect: [
      { code: 'PULSER_E_SPEC_INVALID', text: `${F}:2:7 tier: must be one of production, staging, development, preview` },
      { code: 'PULSER_E_SPEC_UNKNOWN_KEY', text: /^environments\/staging\.yaml:4:1 colour: unknown key \(known keys: / },
      { code: 'PULSER_E_KV_MISSING', text: `${F}:6:15 odoo.image: \${kv:nope}: ops/kv/nope.txt does not exist` },
      { code: 'PULSER_E_SPEC_INVALID', text: `${F}:7:12 odoo.workers: must be integer` },
      { code: 'PULSER_E_SPEC_INVALID', text: `${F}:8:9 odoo.port: must be >= 1` },
      { code: 'PULSER_E_SECRET_MISSING', text: /^environments\/staging\.yaml:10:12 odoo\.env\.TOKEN: \$\{secret:NOPE\} is not set in / },
      { code: 'PULSER_E_SPEC_INVALID', text: `${F}:12:3 database.user: required key is missing` },
    ],
  },
];

function check(t: Test, errors: PulserError[], expected: Expected[]): void {
  t.same(
    errors.map((e) => e.code),
    expected.map((e) => e.code),
    'codes, in order',
  );
  expected.forEach((want, i) => {
    const got = errors[i];
    if (!got) return;
    if (typeof want.text === 'string') t.equal(got.toString(), want.text);
    else t.match(got.toString(), want.text);
    t.ok(got.location, 'located');
    t.equal(got.toString(), `${got.location?.file}:${got.location?.line}:${got.location?.col} ${got.message}`);
  });
}

t.ok(cases.length >= 24, `${cases.length} malformed specs`);
t.equal(new Set(cases.map((c) => c.name)).size, cases.length, 'case names are distinct');

for (const c of cases) {
  t.test(c.name, async (t) => {
    const environments: Record<string, string> = { 'hosts.yaml': c.hosts ?? HOSTS, 'staging.yaml': c.staging };
    for (const [name, text] of Object.entries(c.others ?? {})) environments[`${name}.yaml`] = text;
    const root = t.testdir({ environments, ops: { kv: { 'staging.port.txt': '8070\n', ...(c.kv ?? {}) } } });
    const snap = await loadSpecs(root, { secrets: new SecretSource({ env: {} }) });
    const env = snap.envs.get('staging');
    t.ok(env, 'staging is reported');
    if (!env) return;
    t.equal(env.ok, false, 'staging does not load');
    if (env.ok) return;
    check(t, env.errors, c.expect);
    for (const [name, expected] of Object.entries(c.expectOthers ?? {})) {
      const other = snap.envs.get(name);
      t.equal(other?.ok, false, `${name} does not load either`);
      if (other && !other.ok) check(t, other.errors, expected);
    }
    // Messages are shown to people in PRs and logs: no raw control characters.
    for (const e of env.errors) t.notMatch(e.message, /[\u0000-\u001f]/u);
  });
}

t.test('a file with every error reports them all at once', async (t) => {
  const root = t.testdir({
    environments: {
      'hosts.yaml': HOSTS,
      'staging.yaml': edit(3, 'tier: prod').replace('  workers: 2', '  workers: -1').replace('  port: 8070', '  port: 8070\n  bogus: 1'),
    },
  });
  const snap = await loadSpecs(root, { secrets: new SecretSource({ env: {} }) });
  const env = snap.envs.get('staging');
  t.equal(env?.ok, false);
  if (env && !env.ok) {
    t.same(
      env.errors.map((e) => `${e.location?.line}:${e.location?.col} ${e.code}`),
      ['3:7 PULSER_E_SPEC_INVALID', '10:12 PULSER_E_SPEC_INVALID', '12:3 PULSER_E_SPEC_UNKNOWN_KEY'],
    );
  }
});

t.test('hosts.yaml errors are reported with positions', async (t) => {
  const root = t.testdir({
    environments: { 'hosts.yaml': 'hosts:\n  local:\n    kind: local\n    sockt: /x\n  Bad_Name:\n    kind: local\n', 'staging.yaml': edit(4, 'host: local') },
  });
  const snap = await loadSpecs(root, { secrets: new SecretSource({ env: {} }) });
  t.same(
    snap.hostErrors.map((e) => e.toString()),
    [
      'environments/hosts.yaml:4:5 hosts.local.sockt: unknown key (known keys: kind, addons_dir, docker; free-form keys start with x-)',
      'environments/hosts.yaml:5:3 hosts.Bad_Name: invalid key (must match ^[a-z0-9][a-z0-9-]{0,62}$)',
    ],
  );
  t.equal(snap.hosts.size, 0);
  t.equal(snap.envs.get('staging')?.ok, false);
});

t.test('a missing hosts.yaml fails every environment', async (t) => {
  const root = t.testdir({ environments: { 'staging.yaml': BASE.join('\n') + '\n' } });
  const snap = await loadSpecs(root, { secrets: new SecretSource({ env: {} }) });
  t.same(
    snap.hostErrors.map((e) => [e.code, e.message]),
    [['PULSER_E_HOST_UNKNOWN', 'environments/hosts.yaml does not exist: declare there the hosts environments run on']],
  );
  const env = snap.envs.get('staging');
  t.equal(env?.ok, false);
  if (env && !env.ok) t.same(env.errors.map((e) => e.code), ['PULSER_E_HOST_UNKNOWN']);
});

t.test('a kv symlink pointing outside ops/kv is refused', async (t) => {
  const root = t.testdir({
    secret: 'top secret\n',
    environments: { 'hosts.yaml': HOSTS, 'staging.yaml': edit(9, '  image: odoo:${kv:tag}') },
    ops: { kv: { 'tag.txt': t.fixture('symlink', '../../secret') } },
  });
  const snap = await loadSpecs(root, { secrets: new SecretSource({ env: {} }) });
  const env = snap.envs.get('staging');
  t.equal(env?.ok, false);
  if (env && !env.ok) {
    t.same(
      env.errors.map((e) => [e.code, e.toString()]),
      [['PULSER_E_KV_VALUE_INVALID', `${F}:9:15 odoo.image: \${kv:tag}: ops/kv/tag.txt is a symbolic link pointing outside ops/kv`]],
    );
  }
});

t.test('only: an unknown environment is reported', async (t) => {
  const root = t.testdir({ environments: { 'hosts.yaml': HOSTS, 'staging.yaml': BASE.join('\n') + '\n' }, ops: { kv: {} } });
  const snap = await loadSpecs(root, { secrets: new SecretSource({ env: {} }), only: ['staging', 'nope'] });
  t.same([...snap.envs.keys()], ['staging', 'nope']);
  t.equal(snap.envs.get('staging')?.ok, true);
  const nope = snap.envs.get('nope');
  t.equal(nope?.ok, false);
  if (nope && !nope.ok) t.same(nope.errors.map((e) => e.code), ['PULSER_E_ENV_UNKNOWN']);
});
