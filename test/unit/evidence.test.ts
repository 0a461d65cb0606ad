import t from 'tap';
import { appendFile, mkdir, readdir, readFile, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { EvidenceStore, PACK_FILES, PASS_ID_PATTERN, OUTPUT_LIMIT, excerpt, type ResultJson } from '../../src/evidence/index.ts';
import type { PassRecord, ApplyEntry } from '../../src/core/record.ts';
import type { Change } from '../../src/core/reconciler.ts';
import { PulserError } from '../../src/errors.ts';

const CANARY = 'canary-Zq8"wX\\v41';

function change(n: number, risk: Change['risk'] = 'safe'): Change {
  return {
    subject: `staging/containers/svc${n}`,
    reconciler: n % 2 ? 'containers' : 'database',
    action: 'update',
    risk,
    summary: `image 17.0.${n} → 17.0.${n + 1}`,
    diff: { image: { before: `odoo:17.0.${n}`, after: `odoo:17.0.${n + 1}` } },
    reason: 'image differs',
    op: { container: `svc${n}` },
  };
}

function entry(index: number, outcome: ApplyEntry['outcome'], extra: Partial<ApplyEntry> = {}): ApplyEntry {
  return {
    index,
    subject: `staging/containers/svc${index}`,
    action: 'update',
    summary: `image 17.0.${index} → 17.0.${index + 1}`,
    startedAt: `2026-11-23T22:30:2${index}.000Z`,
    ...(outcome ? { endedAt: `2026-11-23T22:30:2${index}.500Z`, outcome } : {}),
    ...extra,
  };
}

function record(store: EvidenceStore, over: Partial<PassRecord> = {}): PassRecord {
  return {
    passId: store.newPassId(new Date('2026-11-23T22:30:15Z')),
    env: 'staging',
    file: 'environments/staging.yaml',
    trigger: 'git',
    commit: 'a1b2c3d',
    startedAt: '2026-11-23T22:30:15.000Z',
    endedAt: '2026-11-23T22:30:25.250Z',
    durationMs: 10250,
    mode: 'apply',
    outcome: 'failed',
    desiredYaml: 'name: staging\ntier: staging\n',
    specHash: 'sha256:abc',
    usingLastGood: false,
    observed: { containers: [{ name: 'svc0', image: 'odoo:17.0.0' }] },
    plan: {
      changes: [change(0), change(1, 'disruptive'), change(2, 'destructive')],
      findings: [{ subject: 'staging/containers/stray', error: new PulserError('PULSER_E_NAME_CONFLICT', 'container stray is in the way').toJSON() }],
    },
    apply: [
      entry(0, 'applied', { output: 'probe passed' }),
      entry(1, 'failed', { output: 'health check failed', error: new PulserError('PULSER_E_HEALTH_CHECK_FAILED', 'svc1 never became healthy').toJSON() }),
      entry(2, 'skipped', { error: new PulserError('PULSER_E_DEPENDENCY_FAILED', 'svc1 failed').toJSON() }),
    ],
    driftBefore: 3,
    driftAfter: 2,
    driftByReconciler: { containers: 1, database: 1 },
    errors: [new PulserError('PULSER_E_HEALTH_CHECK_FAILED', 'svc1 never became healthy').toJSON()],
    ...over,
  };
}

function storeIn(dir: string, keep?: number, secrets: string[] = [CANARY]): EvidenceStore {
  return new EvidenceStore({ dir, keep, secrets: () => secrets });
}

async function walk(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const d of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, d.name);
    if (d.isDirectory()) out.push(...(await walk(p)));
    else out.push(p);
  }
  return out;
}

const readJson = async (path: string): Promise<Record<string, unknown>> => JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;

t.test('newPassId is UTC time plus 4 base36 characters', async (t) => {
  const store = storeIn(t.testdir());
  const id = store.newPassId(new Date('2026-01-02T03:04:05.678Z'));
  t.match(id, /^20260102-030405-[a-z0-9]{4}$/);
  t.ok(PASS_ID_PATTERN.test(id));
  const ids = new Set(Array.from({ length: 50 }, () => store.newPassId(new Date())));
  t.ok(ids.size > 45, 'random part varies');
});

t.test('a pack is written with every file and field', async (t) => {
  const dir = t.testdir();
  const store = storeIn(dir);
  const rec = record(store);
  const path = await store.write(rec);
  t.equal(path, join(dir, rec.passId, 'staging'));
  t.same((await readdir(path)).sort(), [...PACK_FILES].sort());

  t.same(parseYaml(await readFile(join(path, 'desired.yaml'), 'utf8')), { name: 'staging', tier: 'staging' });
  t.same(await readJson(join(path, 'observed.json')), rec.observed);

  const plan = await readJson(join(path, 'plan.json'));
  t.same(plan, { changes: rec.plan.changes, findings: rec.plan.findings });

  const lines = (await readFile(join(path, 'apply.jsonl'), 'utf8')).trimEnd().split('\n');
  t.equal(lines.length, 3);
  const parsed = lines.map((l) => JSON.parse(l) as ApplyEntry);
  t.same(parsed.map((e) => e.outcome), ['applied', 'failed', 'skipped']);
  t.equal(parsed[0]!.startedAt, '2026-11-23T22:30:20.000Z');
  t.equal(parsed[0]!.endedAt, '2026-11-23T22:30:20.500Z');
  t.equal(parsed[0]!.output, 'probe passed');
  t.equal(parsed[1]!.error?.code, 'PULSER_E_HEALTH_CHECK_FAILED');

  const result = (await readJson(join(path, 'result.json'))) as unknown as ResultJson;
  t.match(result, {
    passId: rec.passId,
    env: 'staging',
    file: 'environments/staging.yaml',
    trigger: 'git',
    commit: 'a1b2c3d',
    startedAt: '2026-11-23T22:30:15.000Z',
    endedAt: '2026-11-23T22:30:25.250Z',
    durationMs: 10250,
    mode: 'apply',
    outcome: 'failed',
    specHash: 'sha256:abc',
    usingLastGood: false,
    driftBefore: 3,
    driftAfter: 2,
    driftByReconciler: { containers: 1, database: 1 },
    resumes: null,
    findings: 1,
  });
  t.same(result.changes, { planned: 3, applied: 1, failed: 1, skipped: 1, inProgress: 0 });
  t.same(result.errors, [{ code: 'PULSER_E_HEALTH_CHECK_FAILED', class: 'terminal', reason: 'HealthCheckFailed', message: 'svc1 never became healthy' }]);

  const summary = await readFile(join(path, 'summary.md'), 'utf8');
  t.match(summary, /^# staging: failed\n/);
  t.match(summary, /\| 1 \| staging\/containers\/svc0 \| update \| safe \| image 17\.0\.0 → 17\.0\.1 \| applied \|/);
  t.match(summary, /\| 2 \| staging\/containers\/svc1 \| update \| disruptive \| .* \| failed \(`PULSER_E_HEALTH_CHECK_FAILED`\) \|/);
  t.match(summary, /\| 3 \| .* \| destructive \| .* \| skipped \(`PULSER_E_DEPENDENCY_FAILED`\) \|/);
  t.match(summary, /`PULSER_E_HEALTH_CHECK_FAILED` HealthCheckFailed: svc1 never became healthy/);
  t.match(summary, /Drift: 3 → 2 \(containers 1, database 1\)/);
  t.match(summary, /commit `a1b2c3d`/);
  t.match(summary, /took 10\.3 s/);
  t.match(summary, /`PULSER_E_NAME_CONFLICT` container stray is in the way/);
});

t.test('an invalid spec and a plan-only pass still give a readable pack', async (t) => {
  const dir = t.testdir();
  const store = storeIn(dir);
  const rec = record(store, { desiredYaml: null, outcome: 'invalid', mode: 'plan', apply: [], plan: { changes: [change(0)], findings: [] }, driftAfter: null, endedAt: undefined, durationMs: undefined });
  const path = await store.write(rec);
  const desired = await readFile(join(path, 'desired.yaml'), 'utf8');
  t.match(desired, /^# The spec was invalid/);
  t.equal(parseYaml(desired), null, 'only a comment');
  t.equal((await readFile(join(path, 'apply.jsonl'), 'utf8')), '');
  const result = (await readJson(join(path, 'result.json'))) as unknown as ResultJson;
  t.equal(result.driftAfter, null);
  t.type(result.durationMs, 'number');
  t.ok(result.endedAt, 'endedAt filled in when the caller left it out');
  const summary = await readFile(join(path, 'summary.md'), 'utf8');
  t.match(summary, /\| planned \|/);
  t.match(summary, /Drift: 3 → not observed/);
});

t.test('a secret placed anywhere in the record is absent from every file', async (t) => {
  const dir = t.testdir();
  const store = storeIn(dir);
  const rec = record(store, {
    desiredYaml: `name: staging\nodoo:\n  env:\n    SMTP_PASSWORD: "${CANARY}"\n`,
    observed: { env: { SMTP_PASSWORD: CANARY }, [`key-${CANARY}`]: 1 },
    trigger: `webhook ${CANARY}`,
    errors: [new PulserError('PULSER_E_DOCKER_API', `docker said: bad password ${CANARY}`).toJSON()],
  });
  rec.apply[0]!.output = `connected with ${CANARY}\n`.repeat(400) + `last line ${CANARY}`;
  rec.plan.changes[0]!.summary = `password ${CANARY} | rotated`;
  rec.plan.changes[0]!.diff = { password: { before: CANARY, after: CANARY } };
  await store.beginApply(rec);
  await store.appendApply('staging', rec.apply[0]!);
  const inflight = await walk(join(dir, '.inflight'));
  for (const file of inflight) t.notOk((await readFile(file)).includes(Buffer.from('Zq8')), `${file} is masked`);

  const path = await store.write(rec);
  const files = await walk(path);
  t.equal(files.length, PACK_FILES.length);
  const needles = [CANARY, JSON.stringify(CANARY).slice(1, -1), 'Zq8'].map((s) => Buffer.from(s));
  for (const file of files) {
    const bytes = await readFile(file);
    for (const n of needles) t.notOk(bytes.includes(n), `${file} has no trace of the secret`);
  }
  t.match(await readFile(join(path, 'summary.md'), 'utf8'), /\*{8}/);
  const line = (await readFile(join(path, 'apply.jsonl'), 'utf8')).split('\n')[0]!;
  const output = (JSON.parse(line) as ApplyEntry).output!;
  t.ok(Buffer.byteLength(output) <= OUTPUT_LIMIT, 'output excerpt within 4 KiB');
  t.match(output, /bytes cut/);
});

t.test('a secret containing a shorter secret is masked whole', async (t) => {
  const dir = t.testdir();
  const store = storeIn(dir, undefined, ['abcd', 'xxabcdyy']);
  const path = await store.write(record(store, { trigger: 'manual xxabcdyy' }));
  const result = await readFile(join(path, 'result.json'), 'utf8');
  t.notMatch(result, /xx\*|\*yy/);
  t.match(result, /"manual \*{8}"/);
});

t.test('excerpt stays within the byte limit without splitting characters', async (t) => {
  const text = 'é'.repeat(5000) + 'END';
  const e = excerpt(text, 1000);
  t.ok(Buffer.byteLength(e) <= 1000);
  t.notMatch(e, /\uFFFD/);
  t.match(e, /END$/);
  t.equal(excerpt('short'), 'short');
});

t.test('the pack appears whole or not at all', async (t) => {
  const dir = t.testdir();
  const store = storeIn(dir);
  const rec = record(store);
  const path = await store.write(rec);
  const names = await readdir(join(dir, rec.passId));
  t.same(names, ['staging'], 'no temporary folder left');
  const before = await readFile(join(path, 'result.json'), 'utf8');
  await t.rejects(store.write({ ...rec, outcome: 'applied' }), { code: 'PULSER_E_INTERNAL', message: /already exists/ });
  t.equal(await readFile(join(path, 'result.json'), 'utf8'), before, 'first pack untouched');
  t.same(await readdir(join(dir, rec.passId)), ['staging'], 'failed write cleaned up');

  await mkdir(join(dir, rec.passId, 'production'));
  await t.rejects(store.write({ ...rec, env: 'production' }), { message: /already exists/ }, 'even an empty folder is not replaced');
  await t.rejects(store.write({ ...rec, env: '../x' }), { code: 'PULSER_E_INTERNAL' });
  await t.rejects(store.write({ ...rec, passId: '../../etc' }), { code: 'PULSER_E_INTERNAL' });
});

t.test('a crash after some changes is reported by recoverInterrupted', async (t) => {
  const dir = t.testdir();
  const store = storeIn(dir);
  const rec = record(store, { outcome: undefined, endedAt: undefined, durationMs: undefined, apply: [], errors: [], driftAfter: null });
  await store.beginApply(rec);
  const intent = await readJson(join(dir, '.inflight', 'staging', 'intent.json'));
  t.match(intent, { passId: rec.passId, env: 'staging', startedAt: rec.startedAt, trigger: 'git', commit: 'a1b2c3d', specHash: 'sha256:abc', desiredYaml: rec.desiredYaml, observed: rec.observed });
  t.equal((intent.plan as PassRecord['plan']).changes.length, 3);

  await store.appendApply('staging', entry(0, undefined));
  await store.appendApply('staging', entry(0, 'applied', { output: 'ok' }));
  await store.appendApply('staging', entry(1, undefined));
  // pulser dies here: write() is never called

  const again = storeIn(dir);
  const recovered = await again.recoverInterrupted();
  t.equal(recovered.length, 1);
  const r = recovered[0]!;
  t.equal(r.passId, rec.passId, 'original pass id');
  t.equal(r.outcome, 'interrupted');
  t.equal(r.apply.length, 2);
  t.equal(r.apply[0]!.outcome, 'applied');
  t.equal(r.apply[0]!.output, 'ok');
  t.equal(r.apply[1]!.outcome, undefined, 'started but never finished');
  t.equal(r.errors.length, 1);
  t.match(r.errors[0], { code: 'PULSER_E_PASS_INTERRUPTED', message: /1 of 3 planned changes had completed/, details: { planned: 3, completed: 1, inProgress: 1 } });
  t.equal(r.endedAt, '2026-11-23T22:30:21.000Z', 'last thing known to have happened');

  const path = join(dir, rec.passId, 'staging');
  const result = (await readJson(join(path, 'result.json'))) as unknown as ResultJson;
  t.equal(result.outcome, 'interrupted');
  t.same(result.changes, { planned: 3, applied: 1, failed: 0, skipped: 0, inProgress: 1 });
  t.match(await readFile(join(path, 'summary.md'), 'utf8'), /in progress when interrupted/);
  t.match(await readFile(join(path, 'summary.md'), 'utf8'), /\| 3 \| .* \| not attempted \|/);
  t.same(await readdir(join(dir, '.inflight')), [], 'inflight cleared');
  t.same(await again.recoverInterrupted(), [], 'nothing left to recover');
});

t.test('a torn journal line and a half-written intent do not break recovery', async (t) => {
  const dir = t.testdir();
  const store = storeIn(dir);
  const rec = record(store, { apply: [] });
  await store.beginApply(rec);
  await store.appendApply('staging', entry(0, undefined));
  await store.appendApply('staging', entry(0, 'applied'));
  await appendFile(join(dir, '.inflight', 'staging', 'apply.jsonl'), '{"index":1,"subject":"staging/cont');
  const [r] = await store.recoverInterrupted();
  t.ok(r);
  t.equal(r!.apply.length, 1);
  t.match(r!.errors.at(-1), { message: /1 of 3 planned changes had completed/ });

  // Crash between writing the intent's temp file and renaming it: nothing was applied yet.
  await mkdir(join(dir, '.inflight', 'production'), { recursive: true });
  await writeFile(join(dir, '.inflight', 'production', 'intent.json.tmp-1234'), '{"passId":"2026');
  t.same(await store.recoverInterrupted(), []);
  t.same(await readdir(join(dir, '.inflight')), []);

  // A complete temp file that never got renamed is still the intent of that pass.
  const other = record(store, { env: 'preview', passId: '20261124-010203-abcd' });
  await mkdir(join(dir, '.inflight', 'preview'), { recursive: true });
  await writeFile(join(dir, '.inflight', 'preview', 'intent.json.tmp-9'), JSON.stringify({ ...other, apply: undefined }));
  const [p] = await store.recoverInterrupted();
  t.match(p, { passId: '20261124-010203-abcd', env: 'preview', outcome: 'interrupted' });
  t.match(p!.errors.at(-1), { message: /0 of 3 planned/ });

  // A garbage intent with a journal still gets reported under a new pass id.
  await mkdir(join(dir, '.inflight', 'dev'), { recursive: true });
  await writeFile(join(dir, '.inflight', 'dev', 'intent.json'), 'not json');
  await writeFile(join(dir, '.inflight', 'dev', 'apply.jsonl'), JSON.stringify(entry(0, 'applied')) + '\n');
  const [d] = await store.recoverInterrupted();
  t.match(d, { env: 'dev', outcome: 'interrupted', passId: /^20261123-223020-/ });
});

t.test('a pack written before the crash cleaned up is not reported twice', async (t) => {
  const dir = t.testdir();
  const store = storeIn(dir);
  const rec = record(store);
  await store.beginApply(rec);
  await store.appendApply('staging', entry(0, 'applied'));
  const path = await store.write(rec);
  t.same(await readdir(join(dir, '.inflight')), [], 'write clears its own inflight');
  // Put the journal back as if the clean-up had been lost.
  await store.beginApply(rec);
  t.same(await store.recoverInterrupted(), []);
  t.equal(((await readJson(join(path, 'result.json'))) as unknown as ResultJson).outcome, 'failed');
});

t.test('inflight state of another pass is never lost', async (t) => {
  const dir = t.testdir();
  const store = storeIn(dir);
  const crashed = record(store, { passId: '20261123-223015-aaaa', apply: [] });
  await store.beginApply(crashed);
  await store.appendApply('staging', entry(0, 'applied'));

  const planOnly = record(store, { passId: '20261123-230000-bbbb', mode: 'plan', outcome: 'planned', apply: [] });
  await store.write(planOnly);
  t.ok(await stat(join(dir, '.inflight', 'staging', 'intent.json')), 'plan pack leaves the crashed journal alone');

  const next = record(store, { passId: '20261123-231000-cccc', apply: [] });
  await store.beginApply(next);
  const result = (await readJson(join(dir, crashed.passId, 'staging', 'result.json'))) as unknown as ResultJson;
  t.equal(result.outcome, 'interrupted', 'the older pass was reported before the new intent');
  t.match(await readJson(join(dir, '.inflight', 'staging', 'intent.json')), { passId: next.passId });
  await t.rejects(readFile(join(dir, '.inflight', 'staging', 'apply.jsonl')), { code: 'ENOENT' }, 'fresh journal');
});

t.test('retention keeps the newest packs of each environment and removes stale temporary folders only', async (t) => {
  const dir = t.testdir({ 'README.txt': 'not ours', 'notes': { 'x.txt': 'x' }, '99999999-999999-zzzz.txt': 'file, not a pass folder' });
  const ids = ['20260101-000000-aaaa', '20260102-000000-aaaa', '20260103-000000-aaaa', '20260104-000000-aaaa', '20260105-000000-aaaa'];
  // Written by an earlier pulser: the index of kept packs is read from disk.
  const earlier = storeIn(dir, 3);
  for (const id of ids.slice(0, 2)) await earlier.write(record(earlier, { passId: id }));
  await earlier.write(record(earlier, { passId: ids[0]!, env: 'production' }));

  const store = storeIn(dir, 3);
  for (const id of ids.slice(2, 4)) await store.write(record(store, { passId: id }));
  const stale = join(dir, ids[3]!, '.tmp-production-dead');
  const fresh = join(dir, ids[3]!, '.tmp-preview-live');
  await mkdir(stale);
  await mkdir(fresh);
  const old = new Date(Date.now() - 2 * 60 * 60 * 1000);
  await utimes(stale, old, old);
  await store.write(record(store, { passId: ids[4]! }));
  // Many passes of one environment do not push out the only pack of another.
  for (let i = 10; i < 20; i++) await store.write(record(store, { passId: `202602${i}-000000-aaaa` }));

  const left = (await readdir(dir)).sort();
  t.same(left, [ids[0]!, '20260217-000000-aaaa', '20260218-000000-aaaa', '20260219-000000-aaaa', ids[3]!, '99999999-999999-zzzz.txt', 'README.txt', 'notes'].sort());
  t.same(await readdir(join(dir, ids[0]!)), ['production'], 'the pass folder keeps the pack still kept');
  t.same((await readdir(join(dir, ids[3]!))).sort(), ['.tmp-preview-live'], 'stale temp removed, fresh one kept, the folder too while a write may be in progress');
  t.same((await store.list('staging')).map((r) => r.passId), ['20260219-000000-aaaa', '20260218-000000-aaaa', '20260217-000000-aaaa']);
  t.equal(await readFile(join(dir, 'notes', 'x.txt'), 'utf8'), 'x');
  t.throws(() => storeIn(dir, 0), { code: 'PULSER_E_INTERNAL' });
});

t.test('read serves the six files and refuses everything else', async (t) => {
  const dir = t.testdir({ 'secret.txt': 'outside' });
  const store = storeIn(dir);
  const rec = record(store);
  await store.write(rec);
  t.match(await store.read(rec.passId, 'staging', 'summary.md'), /^# staging: failed/);
  for (const f of PACK_FILES) t.type(await store.read(rec.passId, 'staging', f), 'string');
  t.equal(await store.read(rec.passId, 'production', 'summary.md'), null, 'unknown pack');
  t.equal(await store.read('20200101-000000-abcd', 'staging', 'summary.md'), null);
  await t.rejects(store.read(rec.passId, 'staging', '../../secret.txt'), { code: 'PULSER_E_USAGE' });
  await t.rejects(store.read(rec.passId, 'staging', 'intent.json'), { code: 'PULSER_E_USAGE' });
  await t.rejects(store.read(rec.passId, '..', 'summary.md'), { code: 'PULSER_E_USAGE' });
  await t.rejects(store.read('..', 'staging', 'summary.md'), { code: 'PULSER_E_USAGE' });
  await t.rejects(store.read(`${rec.passId}/../..`, 'staging', 'summary.md'), { code: 'PULSER_E_USAGE' });
  await t.rejects(store.read(rec.passId, 'staging/../..', 'secret.txt'), { code: 'PULSER_E_USAGE' });
});

t.test('latest and list read result.json newest first', async (t) => {
  const dir = t.testdir();
  const store = storeIn(dir);
  t.equal(await store.latest('staging'), null);
  await store.write(record(store, { passId: '20260101-000000-aaaa', outcome: 'applied' }));
  await store.write(record(store, { passId: '20260103-000000-aaaa', outcome: 'in-sync' }));
  await store.write(record(store, { passId: '20260102-000000-aaaa', outcome: 'failed' }));
  await store.write(record(store, { passId: '20260104-000000-aaaa', env: 'production', outcome: 'planned' }));
  await mkdir(join(dir, '20260105-000000-aaaa', 'staging'), { recursive: true });
  await writeFile(join(dir, '20260105-000000-aaaa', 'staging', 'result.json'), '{broken');

  t.match(await store.latest('staging'), { passId: '20260103-000000-aaaa', outcome: 'in-sync' });
  t.match(await store.latest('production'), { passId: '20260104-000000-aaaa' });
  t.same((await store.list('staging')).map((r) => r.passId), ['20260103-000000-aaaa', '20260102-000000-aaaa', '20260101-000000-aaaa']);
  t.same((await store.list(undefined, 2)).map((r) => `${r.passId}/${r.env}`), ['20260104-000000-aaaa/production', '20260103-000000-aaaa/staging']);
  t.equal((await store.list()).length, 4);
});

t.test('list refuses a malformed environment name', async (t) => {
  const store = storeIn(t.testdir());
  await t.rejects(store.list('../x'), { code: 'PULSER_E_USAGE' });
  await t.rejects(store.latest('a/b'), { code: 'PULSER_E_USAGE' });
});
