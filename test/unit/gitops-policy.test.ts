// Pure parts of the GitOps intake: ops/policy.yaml (routing and located, coded errors),
// signatures and freshness, delivery memory, dispatch bodies and branch names.
import t from 'tap';
import { parsePolicy, routeKv, loadPolicy, DEFAULT_POLICY } from '../../src/gitops/policy.ts';
import { signBody, verifySignature, checkFreshness, DeliveryLog } from '../../src/gitops/signature.ts';
import { parseDispatch } from '../../src/gitops/dispatch.ts';
import { branchProblem } from '../../src/gitops/repo.ts';
import { PulserError } from '../../src/errors.ts';

function code(fn: () => unknown): string | null {
  try {
    fn();
    return null;
  } catch (e) {
    return e instanceof PulserError ? e.code : 'not coded';
  }
}

t.test('routing: pull_request patterns win over direct, then the default', async (t) => {
  const p = await parsePolicy('kv:\n  default: direct\n  direct: ["staging.*"]\n  pull_request: ["staging.secret*", production.image_tag]\n');
  t.equal(routeKv(p, 'staging.image_tag'), 'direct');
  t.equal(routeKv(p, 'staging.secret_thing'), 'pull_request');
  t.equal(routeKv(p, 'production.image_tag'), 'pull_request');
  t.equal(routeKv(p, 'production.image_tag2'), 'direct', 'an exact pattern is exact');
  t.equal(routeKv(await parsePolicy('kv: {}\n'), 'anything'), 'pull_request', 'the default default is a pull request');
  t.equal(routeKv(await parsePolicy('x-note: free\n'), 'a'), 'pull_request', 'no kv section: defaults');
  t.same(await loadPolicy('/nonexistent-root'), DEFAULT_POLICY, 'no file: everything through a pull request');
});

t.test('invalid policies: PULSER_E_POLICY_INVALID with file, line and column', async (t) => {
  const cases: [string, RegExp][] = [
    ['kv:\n  default: sometimes\n', /^ops\/policy\.yaml:2:12 kv\.default: must be equal to one of the allowed values/],
    ['kv:\n  direkt: [a]\n', /^ops\/policy\.yaml:2:3 kv\.direkt: unknown key/],
    ['kv:\n  direct: ["a/b"]\n', /^ops\/policy\.yaml:2:12 kv\.direct\.0: must match pattern/],
    ['kv:\n  direct: ["*.x"]\n', /kv\.direct\.0: must match pattern/],
    ['kv: [\n', /^ops\/policy\.yaml:\d+:\d+ /],
    ['kv:\n  direct: a\n  direct: b\n', /^ops\/policy\.yaml:3:3 /],
    ['- a\n', /^ops\/policy\.yaml:1:1 \(root\): must be a mapping/],
  ];
  for (const [text, re] of cases) {
    const err = await parsePolicy(text).then(
      () => null,
      (e: unknown) => e,
    );
    t.ok(err instanceof PulserError && err.code === 'PULSER_E_POLICY_INVALID', `${JSON.stringify(text)} is coded`);
    t.match((err as Error).message, re);
  }
});

t.test('signatures', async (t) => {
  const body = Buffer.from('{"a":1}');
  verifySignature('s3cret', body, signBody('s3cret', body));
  verifySignature('s3cret', body, signBody('s3cret', body).toUpperCase().replace('SHA256=', 'sha256='));
  verifySignature('s3cret', body, signBody('s3cret', body, '1700000000'), '1700000000');
  t.equal(code(() => verifySignature('s3cret', body, signBody('s3cret', body), '1700000000')), 'PULSER_E_WEBHOOK_SIGNATURE', 'the timestamp is part of what is signed');
  t.equal(code(() => verifySignature('s3cret', body, signBody('other', body))), 'PULSER_E_WEBHOOK_SIGNATURE');
  t.equal(code(() => verifySignature('s3cret', body, undefined)), 'PULSER_E_WEBHOOK_SIGNATURE');
  t.equal(code(() => verifySignature('s3cret', body, 'sha256=' + '0'.repeat(63))), 'PULSER_E_WEBHOOK_SIGNATURE');
  t.equal(signBody('key', 'The quick brown fox jumps over the lazy dog'), 'sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8', 'RFC-style HMAC-SHA256 test vector');
  const now = 1_700_000_000_000;
  checkFreshness('1700000100', now, 300_000);
  t.equal(code(() => checkFreshness('1700000301', now, 300_000)), 'PULSER_E_WEBHOOK_STALE');
  t.equal(code(() => checkFreshness('1699999699', now, 300_000)), 'PULSER_E_WEBHOOK_STALE');
  t.equal(code(() => checkFreshness('-5', now, 300_000)), 'PULSER_E_WEBHOOK_STALE');
});

t.test('delivery memory: replays refused within the window, bounded, releasable', async (t) => {
  const log = new DeliveryLog(1000, 3);
  t.equal(log.claim('a', 0), true);
  t.equal(log.claim('a', 500), false, 'a replay');
  t.equal(log.claim('a', 1500), true, 'past the window the timestamp check takes over');
  log.release('a');
  t.equal(log.claim('a', 1600), true, 'released: may be retried');
  for (const id of ['b', 'c', 'd']) log.claim(id, 1700);
  t.equal(log.claim('a', 1800), true, 'the oldest is forgotten first when full');
});

t.test('dispatch bodies and branch names', async (t) => {
  t.same(parseDispatch({ branch: 'main', kv_key: 'a.b', kv_value: ' 1.2 ' }), { branch: 'main', key: 'a.b', value: '1.2', message: 'kv: set a.b\n' }, 'default message, trimmed value');
  t.equal(code(() => parseDispatch({ branch: 'main', kv_key: 'a', kv_value: 'v', message: 'x'.repeat(9000) })), 'PULSER_E_DISPATCH_INVALID');
  t.equal(code(() => parseDispatch(null)), 'PULSER_E_WEBHOOK_PAYLOAD');
  for (const ok of ['main', 'feature/x-1', 'odoo/prod.tag', 'release-18.0']) t.equal(branchProblem(ok), null, ok);
  for (const bad of ['', '-x', '/x', 'x/', 'a..b', 'a//b', 'x.lock', 'a/.b', 'HEAD', 'a b', 'a~1', 'a^', 'a:b', 'x.', 'é']) t.not(branchProblem(bad), null, JSON.stringify(bad));
});
