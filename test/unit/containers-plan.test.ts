// Golden tests of the containers reconciler's pure half: the planner (desired + observed → exact
// changes) and the command builders (dockerode options, odoo.conf, labels). No Docker engine.
import t from 'tap';
import { containerLabels, createOptions, designOdooContainer, parkedName, renderOdooConf, shownSpecOf } from '../../reconcilers/containers/design.ts';
import { diffShown, planContainers, planOrphanContainers, summarize, type ContainersObserved } from '../../reconcilers/containers/plan.ts';
import type { Change, Plan } from '../../src/core/reconciler.ts';
import { LABEL } from '../../src/drivers/docker.ts';
import type { DesiredEnv } from '../../src/spec/model.ts';
import { container, containerId, DEFAULT_DB_PASSWORD, desiredEnv, observedWorld, type DesiredEnvOptions } from '../helpers/builders.ts';

const SUBJECT = 'staging/containers/odoo';
const NAME = 'pulser-staging-odoo';
const SMTP_OLD = 'smtp-canary-old-7f3a9c';
const SMTP_NEW = 'smtp-canary-new-b41d2e';

/** The environment most tests start from; each test changes one thing. */
const BASE: DesiredEnvOptions = {
  name: 'staging',
  tag: '17.0.1',
  port: 18070,
  config: { proxy_mode: true, db_maxconn: 64 },
  env: { SMTP_PASSWORD: '${secret:SMTP_PASSWORD}', LOG_LEVEL: 'info' },
  secrets: { SMTP_PASSWORD: SMTP_OLD },
};

function short(id: string): string {
  return id.slice(0, 12);
}

function hash19(d: DesiredEnv): string {
  return designOdooContainer(d).specHash.slice(0, 19);
}

function rolloutOp(d: DesiredEnv, previous: string | null, leftovers: string[] = []): Record<string, unknown> {
  const design = designOdooContainer(d);
  return { kind: 'rollout', name: NAME, image: design.image, specHash: design.specHash, previous, leftovers };
}

function only(plan: Plan): Change {
  if (plan.changes.length !== 1) throw new Error(`expected one change, got ${plan.changes.length}`);
  return plan.changes[0]!;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

t.test('no container: create, safe, naming image, bind and port', async (t) => {
  const d = await desiredEnv(t, BASE);
  const plan = planContainers(d, observedWorld().build());
  t.strictSame(plan, {
    findings: [],
    changes: [
      {
        subject: SUBJECT,
        reconciler: 'containers',
        action: 'create',
        risk: 'safe',
        summary: 'create pulser-staging-odoo from pulser-demo/odoo:17.0.1 on 127.0.0.1:18070',
        diff: {
          image: { before: undefined, after: 'pulser-demo/odoo:17.0.1' },
          port: { before: undefined, after: 18070 },
          bind: { before: undefined, after: '127.0.0.1' },
          command: { before: undefined, after: undefined },
          'env.LOG_LEVEL': { before: undefined, after: 'info' },
          'env.SMTP_PASSWORD': { before: undefined, after: '${secret:SMTP_PASSWORD} (secret)' },
          'config.db_host': { before: undefined, after: 'host.docker.internal' },
          'config.db_maxconn': { before: undefined, after: '64' },
          'config.db_name': { before: undefined, after: 'odoo_staging' },
          'config.db_password': { before: undefined, after: '${secret:DB_PASSWORD} (secret)' },
          'config.db_port': { before: undefined, after: '5432' },
          'config.db_user': { before: undefined, after: 'odoo' },
          'config.dbfilter': { before: undefined, after: '^odoo_staging$' },
          'config.http_port': { before: undefined, after: '8069' },
          'config.list_db': { before: undefined, after: 'False' },
          'config.proxy_mode': { before: undefined, after: 'True' },
          'config.workers': { before: undefined, after: '2' },
        },
        reason: 'no Odoo container exists for this environment',
        op: rolloutOp(d, null),
      },
    ],
  });
  const text = JSON.stringify(plan);
  t.notOk(text.includes(SMTP_OLD), 'the SMTP secret is not in the plan');
  t.notOk(text.includes(DEFAULT_DB_PASSWORD), 'nor the database password');
});

t.test('a running container with the current spec hash: nothing to do', async (t) => {
  const d = await desiredEnv(t, BASE);
  const plan = planContainers(d, observedWorld().withContainer({ from: d }).build());
  t.strictSame(plan, { changes: [], findings: [] });
});

t.test('image tag changed: one disruptive rollout from the running container', async (t) => {
  const before = await desiredEnv(t, BASE);
  const after = await desiredEnv(t, { ...BASE, tag: '17.0.2' });
  const observed = observedWorld().withContainer({ from: before }).build();
  const prev = observed.containers[0]!.id;
  t.strictSame(planContainers(after, observed), {
    findings: [],
    changes: [
      {
        subject: SUBJECT,
        reconciler: 'containers',
        action: 'update',
        risk: 'disruptive',
        summary: 'image pulser-demo/odoo:17.0.1 → pulser-demo/odoo:17.0.2',
        diff: { image: { before: 'pulser-demo/odoo:17.0.1', after: 'pulser-demo/odoo:17.0.2' } },
        reason: `spec changed: ${hash19(before)} → ${hash19(after)}`,
        op: { kind: 'rollout', name: NAME, image: 'pulser-demo/odoo:17.0.2', specHash: designOdooContainer(after).specHash, previous: prev, leftovers: [] },
      },
    ],
  });
});

t.test('spec edits, one at a time', async (t) => {
  const cases: { name: string; before?: DesiredEnvOptions; after: DesiredEnvOptions; summary: string; diff: Change['diff'] }[] = [
    {
      name: 'a secret value changed under the same reference',
      after: { ...BASE, secrets: { SMTP_PASSWORD: SMTP_NEW } },
      summary: 'env.SMTP_PASSWORD changed (secret)',
      diff: { 'env.SMTP_PASSWORD': { before: '${secret:SMTP_PASSWORD} (secret)', after: '${secret:SMTP_PASSWORD} (secret)' } },
    },
    {
      name: 'a secret reference renamed (and its value with it)',
      after: { ...BASE, env: { ...BASE.env, SMTP_PASSWORD: '${secret:SMTP_PASSWORD_V2}' }, secrets: { SMTP_PASSWORD_V2: SMTP_NEW } },
      summary: 'env.SMTP_PASSWORD changed (secret)',
      diff: { 'env.SMTP_PASSWORD': { before: '${secret:SMTP_PASSWORD} (secret)', after: '${secret:SMTP_PASSWORD_V2} (secret)' } },
    },
    {
      name: 'the database password rotated',
      after: { ...BASE, secrets: { ...BASE.secrets, DB_PASSWORD: 'db-secret-2' } },
      summary: 'config.db_password changed (secret)',
      diff: { 'config.db_password': { before: '${secret:DB_PASSWORD} (secret)', after: '${secret:DB_PASSWORD} (secret)' } },
    },
    {
      name: 'a plain env var added',
      after: { ...BASE, env: { ...BASE.env, PGAPPNAME: 'odoo-staging' } },
      summary: 'env.PGAPPNAME added',
      diff: { 'env.PGAPPNAME': { before: undefined, after: 'odoo-staging' } },
    },
    {
      name: 'a plain env var removed',
      after: { ...BASE, env: { SMTP_PASSWORD: '${secret:SMTP_PASSWORD}' } },
      summary: 'env.LOG_LEVEL removed',
      diff: { 'env.LOG_LEVEL': { before: 'info', after: undefined } },
    },
    {
      name: 'a config option changed',
      after: { ...BASE, config: { proxy_mode: false, db_maxconn: 64 } },
      summary: 'config.proxy_mode True → False',
      diff: { 'config.proxy_mode': { before: 'True', after: 'False' } },
    },
    {
      name: 'workers changed',
      after: { ...BASE, workers: 4 },
      summary: 'config.workers 2 → 4',
      diff: { 'config.workers': { before: '2', after: '4' } },
    },
    {
      name: 'the port changed',
      after: { ...BASE, port: 18071 },
      summary: 'port 18070 → 18071',
      diff: { port: { before: 18070, after: 18071 } },
    },
    {
      name: 'a command override added',
      after: { ...BASE, command: ['odoo', '--proxy-mode'] },
      summary: 'command added',
      diff: { command: { before: undefined, after: ['odoo', '--proxy-mode'] } },
    },
  ];
  for (const c of cases) {
    await t.test(c.name, async (t) => {
      const before = await desiredEnv(t, c.before ?? BASE);
      const after = await desiredEnv(t, c.after);
      const observed = observedWorld().withContainer({ from: before }).build();
      const prev = observed.containers[0]!.id;
      const plan = planContainers(after, observed);
      t.strictSame(plan, {
        findings: [],
        changes: [
          {
            subject: SUBJECT,
            reconciler: 'containers',
            action: 'update',
            risk: 'disruptive',
            summary: c.summary,
            diff: c.diff,
            reason: `spec changed: ${hash19(before)} → ${hash19(after)}`,
            op: rolloutOp(after, prev),
          },
        ],
      });
      const text = JSON.stringify(plan);
      for (const secret of [SMTP_OLD, SMTP_NEW, DEFAULT_DB_PASSWORD, 'db-secret-2']) t.notOk(text.includes(secret), `${secret} is nowhere in the plan`);
    });
  }
});

t.test('a secret reference renamed to one holding the same value: the container is already right', async (t) => {
  const before = await desiredEnv(t, BASE);
  const after = await desiredEnv(t, { ...BASE, env: { ...BASE.env, SMTP_PASSWORD: '${secret:SMTP_PASSWORD_V2}' }, secrets: { SMTP_PASSWORD_V2: SMTP_OLD } });
  t.equal(designOdooContainer(after).specHash, designOdooContainer(before).specHash, 'the hash follows values, not reference names');
  t.strictSame(planContainers(after, observedWorld().withContainer({ from: before }).build()), { changes: [], findings: [] });
});

t.test('more than three differences are summarized as "N more"', async (t) => {
  const before = await desiredEnv(t, BASE);
  const after = await desiredEnv(t, { ...BASE, tag: '17.0.2', port: 18071, env: { ...BASE.env, PGAPPNAME: 'odoo' }, config: { proxy_mode: false, db_maxconn: 64 } });
  const change = only(planContainers(after, observedWorld().withContainer({ from: before }).build()));
  t.equal(change.summary, 'image pulser-demo/odoo:17.0.1 → pulser-demo/odoo:17.0.2; port 18070 → 18071; env.PGAPPNAME added; 1 more');
  t.strictSame(Object.keys(change.diff), ['image', 'port', 'env.PGAPPNAME', 'config.proxy_mode']);

  t.equal(
    summarize({
      image: { before: 'a:1', after: 'a:2' },
      'env.A': { before: undefined, after: 'x' },
      'env.B': { before: 'y', after: undefined },
      'env.C': { before: '${secret:C} (secret)', after: '${secret:C} (secret)' },
      'config.d': { before: '1', after: '2' },
    }),
    'image a:1 → a:2; env.A added; env.B removed; 2 more',
  );
  t.equal(summarize({ a: { before: 1, after: 2 }, b: { before: 1, after: 2 }, c: { before: 1, after: 2 } }), 'a 1 → 2; b 1 → 2; c 1 → 2', 'three are all shown');
  t.equal(summarize({}), 'no visible difference');
});

t.test('diffShown masks secrets by their reference and compares them by digest', async (t) => {
  const a = designOdooContainer(await desiredEnv(t, BASE)).shown;
  const b = designOdooContainer(await desiredEnv(t, { ...BASE, secrets: { SMTP_PASSWORD: SMTP_NEW } })).shown;
  t.strictSame(diffShown(a, a), {});
  t.strictSame(diffShown(a, b), { 'env.SMTP_PASSWORD': { before: '${secret:SMTP_PASSWORD} (secret)', after: '${secret:SMTP_PASSWORD} (secret)' } });
  t.equal(summarize(diffShown(a, b)), 'env.SMTP_PASSWORD changed (secret)');
});

t.test('the container was stopped or killed: start it', async (t) => {
  const d = await desiredEnv(t, BASE);
  const observed = observedWorld().withContainer({ from: d, state: 'exited', status: 'Exited (137) 2 minutes ago' }).build();
  const id = observed.containers[0]!.id;
  t.strictSame(planContainers(d, observed), {
    findings: [],
    changes: [
      {
        subject: SUBJECT,
        reconciler: 'containers',
        action: 'update',
        risk: 'safe',
        summary: 'start pulser-staging-odoo (exited)',
        diff: { state: { before: 'exited', after: 'running' } },
        reason: 'the container is exited (Exited (137) 2 minutes ago); it was stopped or killed outside pulser',
        op: { kind: 'start', id, specHash: designOdooContainer(d).specHash },
      },
    ],
  });
});

t.test('the container was removed: create it again', async (t) => {
  const d = await desiredEnv(t, BASE);
  t.strictSame(planContainers(d, observedWorld().withContainer({ from: d }).build()).changes, [], 'in sync while it exists');
  const change = only(planContainers(d, observedWorld().build()));
  t.equal(change.action, 'create');
  t.equal(change.risk, 'safe');
  t.equal(change.reason, 'no Odoo container exists for this environment');
  t.strictSame(change.op, rolloutOp(d, null));
});

t.test('unfinished rollout: the current container runs next to a stopped previous one', async (t) => {
  const before = await desiredEnv(t, BASE);
  const after = await desiredEnv(t, { ...BASE, tag: '17.0.2' });
  const prevId = containerId('previous');
  const world = () =>
    observedWorld()
      .withContainer({ from: before, id: prevId, name: parkedName(NAME, prevId), state: 'exited', status: 'Exited (0) 10 seconds ago' })
      .withContainer({ from: after, id: containerId('current') });
  const cur = containerId('current');
  const expected = (risk: Change['risk'], probe: string): Change => ({
    subject: SUBJECT,
    reconciler: 'containers',
    action: 'update',
    risk,
    summary: `finish interrupted rollout: keep ${short(cur)}, remove 1 previous container(s)`,
    diff: { containers: { before: [short(cur), short(prevId)], after: [short(cur)] } },
    reason: `a rollout was cut short: the new container runs next to 1 previous one(s)${probe}`,
    op: { kind: 'finish-rollout', id: cur, others: [prevId], specHash: designOdooContainer(after).specHash },
  });

  t.strictSame(
    planContainers(after, world().withProbe({ ok: true }).build()),
    { changes: [expected('safe', ' (probe: GET http://127.0.0.1:18070/web/health: HTTP 200 "{\\"status\\": \\"pass\\"}")')], findings: [] },
    'a passing probe: removing the previous container is safe',
  );
  t.strictSame(
    planContainers(after, world().withProbe({ ok: false }).build()),
    { changes: [expected('disruptive', ' (probe: GET http://127.0.0.1:18070/web/health: HTTP 503 "Service Unavailable")')], findings: [] },
    'a failing probe: finishing may roll back, so it is disruptive',
  );
  t.strictSame(
    planContainers(after, world().withProbe({ ok: false, status: null, body: '', error: 'connection refused' }).build()),
    { changes: [expected('disruptive', ' (probe: GET http://127.0.0.1:18070/web/health: connection refused)')], findings: [] },
    'no HTTP answer at all',
  );
  t.strictSame(planContainers(after, world().build()), { changes: [expected('disruptive', '')], findings: [] }, 'no probe taken: not known to be safe');
});

t.test('crash right after create: a never-started current container next to the running previous', async (t) => {
  const before = await desiredEnv(t, BASE);
  const after = await desiredEnv(t, { ...BASE, tag: '17.0.2' });
  const prevId = containerId('previous');
  const curId = containerId('current');
  const observed = observedWorld()
    .withContainer({ from: before, id: prevId, name: parkedName(NAME, prevId) })
    .withContainer({ from: after, id: curId, state: 'created' })
    .build();
  t.strictSame(planContainers(after, observed), {
    findings: [],
    changes: [
      {
        subject: SUBJECT,
        reconciler: 'containers',
        action: 'update',
        risk: 'disruptive',
        summary: 'image pulser-demo/odoo:17.0.1 → pulser-demo/odoo:17.0.2',
        diff: { image: { before: 'pulser-demo/odoo:17.0.1', after: 'pulser-demo/odoo:17.0.2' } },
        reason: `spec changed: ${hash19(before)} → ${hash19(after)}`,
        op: rolloutOp(after, prevId, [curId]),
      },
    ],
  });
});

t.test('changed behind pulser\'s back: recreate from the spec', async (t) => {
  const d = await desiredEnv(t, BASE);
  const id = containerId(1);
  const expected = (reason: string): Plan => ({
    findings: [],
    changes: [
      {
        subject: SUBJECT,
        reconciler: 'containers',
        action: 'update',
        risk: 'disruptive',
        summary: `container ${short(id)} → recreated`,
        diff: { container: { before: short(id), after: 'recreated' } },
        reason,
        op: rolloutOp(d, id),
      },
    ],
  });

  const otherImage = 'sha256:0b1e5c0ffee0000000000000000000000000000000000000000000000000000';
  t.strictSame(
    planContainers(d, observedWorld().withContainer({ from: d, id, image: otherImage }).build()),
    expected(`container ${NAME} no longer matches its spec (changed outside pulser: image ${otherImage})`),
    'another image under the current spec hash',
  );
  t.strictSame(
    planContainers(d, observedWorld().withContainer({ from: d, id, ports: [] }).build()),
    expected(`container ${NAME} no longer matches its spec (changed outside pulser: port 18070 not published)`),
    'the port is not published',
  );
  t.strictSame(
    planContainers(d, observedWorld().withContainer({ from: d, id, ports: [{ ip: '127.0.0.1', privatePort: 8069, publicPort: 18999, type: 'tcp' }] }).build()).changes[0]?.op,
    rolloutOp(d, id),
    'published on another port',
  );
});

t.test('a container not owned by this environment holds the name: a finding, no change', async (t) => {
  const d = await desiredEnv(t, BASE);
  const holderId = containerId('name-holder');

  const unlabelled = observedWorld().withNameHolder({ name: NAME, image: 'odoo:17.0', labels: {} }).build();
  t.strictSame(planContainers(d, unlabelled), {
    changes: [],
    findings: [
      {
        subject: SUBJECT,
        error: {
          code: 'PULSER_E_NAME_CONFLICT',
          class: 'terminal',
          reason: 'NameConflict',
          message: `container ${NAME} (${short(holderId)}) exists without pulser labels; pulser never touches it — rename or remove it by hand`,
          details: { container: holderId, name: NAME },
        },
      },
    ],
  });

  const qa = await desiredEnv(t, { ...BASE, name: 'qa' });
  const foreign = observedWorld().withContainer({ from: d, state: 'exited' }).withNameHolder({ from: qa, name: NAME }).build();
  t.strictSame(planContainers(d, foreign), {
    changes: [],
    findings: [
      {
        subject: SUBJECT,
        error: {
          code: 'PULSER_E_NAME_CONFLICT',
          class: 'terminal',
          reason: 'NameConflict',
          message: `container ${NAME} (${short(holderId)}) belongs to environment qa; pulser will not take it over`,
          details: { container: holderId, name: NAME },
        },
      },
    ],
  }, 'another environment\'s container: no change even though this environment\'s own container is stopped');
});

t.test('planOrphanContainers: destructive deletes of what pulser created', async (t) => {
  const d = await desiredEnv(t, { ...BASE, name: 'preview-42' });
  const a = container({ from: d, id: containerId('a') });
  const b = container({ from: d, id: containerId('b'), name: parkedName('pulser-preview-42-odoo', containerId('b')), state: 'exited', image: 'pulser-demo/odoo:17.0.0' });
  t.strictSame(planOrphanContainers('preview-42', [a, b]), {
    findings: [],
    changes: [a, b].map((c) => ({
      subject: 'preview-42/containers/odoo',
      reconciler: 'containers',
      action: 'delete',
      risk: 'destructive',
      summary: `remove ${c.name} (${short(c.id)}, ${c.image})`,
      diff: { container: { before: short(c.id), after: undefined } },
      reason: 'environment preview-42 is no longer in git and pruning is on',
      op: { kind: 'remove', id: c.id, name: c.name },
    })),
  });
  t.equal(planOrphanContainers('preview-42', [b]).changes[0]?.summary, `remove pulser-preview-42-odoo.prev-${short(containerId('b'))} (${short(containerId('b'))}, pulser-demo/odoo:17.0.0)`);
  t.strictSame(planOrphanContainers('preview-42', []), { changes: [], findings: [] });
});

// The fixture of the builder goldens. A change to these goldens changes the spec hash of every
// running environment, so each one rolls out on the next pass: update them deliberately.
const FIXTURE: DesiredEnvOptions = {
  name: 'staging',
  tag: '17.0.1',
  port: 18070,
  workers: 3,
  config: { proxy_mode: true, db_maxconn: 64, log_level: 'info', limit_time_real: 120, unaccent: false },
  env: { SMTP_PASSWORD: '${secret:SMTP_PASSWORD}', PGAPPNAME: 'odoo-staging' },
  secrets: { SMTP_PASSWORD: SMTP_OLD },
};

const FIXTURE_SHOWN =
  '{"image":"pulser-demo/odoo:17.0.1","port":18070,"bind":"127.0.0.1","command":null,' +
  '"env":{"PGAPPNAME":"odoo-staging","SMTP_PASSWORD":"${secret:SMTP_PASSWORD} #ef08b77a63d1"},' +
  '"config":{"db_host":"host.docker.internal","db_maxconn":"64","db_name":"odoo_staging","db_password":"${secret:DB_PASSWORD} #06a1eeb1d1cc",' +
  '"db_port":"5432","db_user":"odoo","dbfilter":"^odoo_staging$","http_port":"8069","limit_time_real":"120","list_db":"False",' +
  '"log_level":"info","proxy_mode":"True","unaccent":"False","workers":"3"}}';
const FIXTURE_HASH = 'sha256:0e59a5150e3a0e30529e9bf06f2b2c62c7e648deebd95fab799dc87da4f9df2e';

t.test('createOptions golden', async (t) => {
  const design = designOdooContainer(await desiredEnv(t, FIXTURE));
  // The label the same spec got before secrets counted by their keyed digest: still in sync.
  t.equal(design.legacySpecHash, 'sha256:0dd0b9f9bebf8c4a3eaaa75f6f0ed1b80dcc29ab78d9b7e896c0402d9ecc2f02');
  t.strictSame(createOptions(design), {
    name: NAME,
    Image: 'pulser-demo/odoo:17.0.1',
    Env: [`SMTP_PASSWORD=${SMTP_OLD}`, 'PGAPPNAME=odoo-staging', 'ODOO_RC=/etc/odoo/odoo.conf'],
    Labels: {
      'io.pulser.managed-by': 'pulser',
      'io.pulser.env': 'staging',
      'io.pulser.service': 'odoo',
      'io.pulser.spec-hash': FIXTURE_HASH,
      'io.pulser.spec': FIXTURE_SHOWN,
    },
    ExposedPorts: { '8069/tcp': {} },
    HostConfig: {
      PortBindings: { '8069/tcp': [{ HostIp: '127.0.0.1', HostPort: '18070' }] },
      Init: true,
      RestartPolicy: { Name: 'unless-stopped' },
      ExtraHosts: ['host.docker.internal:host-gateway'],
    },
  });
});

t.test('createOptions: command and bind address', async (t) => {
  const design = designOdooContainer(await desiredEnv(t, { ...BASE, bind: '0.0.0.0', command: ['odoo', '--limit-time-real=600'] }));
  const opts = createOptions(design);
  t.strictSame(opts.Cmd, ['odoo', '--limit-time-real=600']);
  t.strictSame(opts.HostConfig?.PortBindings, { '8069/tcp': [{ HostIp: '0.0.0.0', HostPort: '18070' }] });
  t.notOk('Cmd' in createOptions(designOdooContainer(await desiredEnv(t, BASE))), 'no Cmd without a command override: the image decides');
});

t.test('renderOdooConf golden', async (t) => {
  const design = designOdooContainer(await desiredEnv(t, FIXTURE));
  t.equal(
    renderOdooConf(design.options),
    [
      '; Written by pulser from the environment spec. Changes here are overwritten.',
      '[options]',
      'db_host = host.docker.internal',
      'db_maxconn = 64',
      'db_name = odoo_staging',
      `db_password = ${DEFAULT_DB_PASSWORD}`,
      'db_port = 5432',
      'db_user = odoo',
      'dbfilter = ^odoo_staging$',
      'http_port = 8069',
      'limit_time_real = 120',
      'list_db = False',
      'log_level = info',
      'proxy_mode = True',
      'unaccent = False',
      'workers = 3',
      '',
    ].join('\n'),
  );
  const noPassword = designOdooContainer(await desiredEnv(t, { ...BASE, database: { password: null } }));
  t.match(renderOdooConf(noPassword.options), /^db_password = False$/m, 'no password: Odoo\'s own False');
});

t.test('the spec label shows secrets only as reference and digest', async (t) => {
  const a = designOdooContainer(await desiredEnv(t, FIXTURE));
  const b = designOdooContainer(await desiredEnv(t, { ...FIXTURE, secrets: { SMTP_PASSWORD: SMTP_NEW } }));
  const la = containerLabels(a);
  const lb = containerLabels(b);
  for (const labels of [la, lb]) {
    const text = JSON.stringify(labels);
    for (const secret of [SMTP_OLD, SMTP_NEW, DEFAULT_DB_PASSWORD]) t.notOk(text.includes(secret), `${secret} is in no label`);
  }
  t.not(la[LABEL.spec], lb[LABEL.spec], 'the shown spec differs');
  t.not(la[LABEL.specHash], lb[LABEL.specHash]);
  const sa = shownSpecOf(la);
  const sb = shownSpecOf(lb);
  t.match(sa?.env.SMTP_PASSWORD, /^\$\{secret:SMTP_PASSWORD\} #[0-9a-f]{12}$/);
  t.match(sb?.env.SMTP_PASSWORD, /^\$\{secret:SMTP_PASSWORD\} #[0-9a-f]{12}$/);
  t.not(sa?.env.SMTP_PASSWORD, sb?.env.SMTP_PASSWORD, 'only the digest changed');
  t.strictSame({ ...sa, env: {} }, { ...sb, env: {} }, 'nothing else did');
  t.strictSame(sa, a.shown, 'the label reads back as the design\'s shown spec');
  t.equal(shownSpecOf({}), null, 'no label');
  t.equal(shownSpecOf({ [LABEL.spec]: '{"image":' }), null, 'damaged label');
  t.equal(shownSpecOf({ [LABEL.spec]: '{"image":"x"}' }), null, 'label without env and config');
});

t.test('the spec hash: new container for what the container holds, not for health or sync', async (t) => {
  const base = designOdooContainer(await desiredEnv(t, BASE));
  const hashOf = async (o: DesiredEnvOptions) => designOdooContainer(await desiredEnv(t, o)).specHash;
  t.match(base.specHash, /^sha256:[0-9a-f]{64}$/);
  t.equal(await hashOf(BASE), base.specHash, 'stable');
  t.not(await hashOf({ ...BASE, secrets: { SMTP_PASSWORD: SMTP_NEW } }), base.specHash, 'a secret value');
  t.not(await hashOf({ ...BASE, secrets: { ...BASE.secrets, DB_PASSWORD: 'db-secret-2' } }), base.specHash, 'the database password');
  t.not(await hashOf({ ...BASE, tag: '17.0.2' }), base.specHash, 'the image');
  t.not(await hashOf({ ...BASE, bind: '0.0.0.0' }), base.specHash, 'the bind address');
  t.not(await hashOf({ ...BASE, command: ['odoo'] }), base.specHash, 'the command');

  const health = await desiredEnv(t, { ...BASE, health: { path: '/web/login', interval: '1s', timeout: '2s', retries: 5 } });
  const sync = await desiredEnv(t, { ...BASE, sync: { auto: false, interval: '1h', prune: true } });
  const tier = await desiredEnv(t, { ...BASE, tier: 'production' });
  for (const [what, d] of [['health', health], ['sync', sync], ['tier', tier]] as const) {
    t.equal(designOdooContainer(d).specHash, base.specHash, `${what} does not need a new container`);
    t.strictSame(planContainers(d, observedWorld().withContainer({ from: base }).build()), { changes: [], findings: [] }, `${what} alone plans nothing`);
  }
  t.not(health.specHash, (await desiredEnv(t, BASE)).specHash, 'while the environment\'s own hash does follow health');
});

t.test('purity: same inputs, same plan; inputs are never mutated', async (t) => {
  const before = await desiredEnv(t, { ...BASE, command: ['odoo', '--proxy-mode'] });
  const after = await desiredEnv(t, { ...BASE, tag: '17.0.2', command: ['odoo', '--proxy-mode', '--workers=4'] });
  const worlds: [string, DesiredEnv, ContainersObserved][] = [
    ['empty', after, observedWorld().build()],
    ['in sync', before, observedWorld().withContainer({ from: before }).build()],
    ['rollout', after, observedWorld().withContainer({ from: before }).build()],
    ['stopped', before, observedWorld().withContainer({ from: before, state: 'exited' }).build()],
    [
      'unfinished rollout',
      after,
      observedWorld().withContainer({ from: before, state: 'exited' }).withContainer({ from: after }).withProbe({ ok: true }).build(),
    ],
    ['tampered', before, observedWorld().withContainer({ from: before, ports: [] }).build()],
    ['name conflict', before, observedWorld().withNameHolder({ name: NAME, image: 'odoo:17.0', labels: {} }).build()],
  ];
  for (const [name, desired, observed] of worlds) {
    const snapshot = structuredClone({ desired, observed });
    deepFreeze(desired);
    deepFreeze(observed);
    const first = planContainers(desired, observed);
    const second = planContainers(desired, observed);
    t.strictSame(second, first, `${name}: deterministic`);
    t.strictSame({ desired, observed }, snapshot, `${name}: inputs unchanged`);
    t.strictSame(JSON.parse(JSON.stringify(first)), JSON.parse(JSON.stringify(second)), `${name}: serializable`);
  }
  const orphans = deepFreeze(observedWorld().withContainer({ from: before }).build().containers);
  t.strictSame(planOrphanContainers('staging', orphans), planOrphanContainers('staging', orphans), 'orphans: deterministic on frozen input');
});

t.test('a secret inside odoo.command stays out of labels and plans', async (t) => {
  const command = ['odoo', '--admin-passwd=${secret:ADMIN_PASSWD}'];
  const [OLD, NEW] = ['admin-canary-1c9e', 'admin-canary-2f07'];
  const before = await desiredEnv(t, { ...BASE, command, secrets: { ...BASE.secrets, ADMIN_PASSWD: OLD } });
  const after = await desiredEnv(t, { ...BASE, command, secrets: { ...BASE.secrets, ADMIN_PASSWD: NEW } });
  t.strictSame(createOptions(designOdooContainer(before)).Cmd, ['odoo', `--admin-passwd=${OLD}`], 'the container itself gets the value');
  const labels = JSON.stringify(containerLabels(designOdooContainer(before)));
  t.notOk(labels.includes(OLD), 'not in the spec label');
  const plan = planContainers(after, observedWorld().withContainer({ from: before }).build());
  t.equal(plan.changes.length, 1, 'a rotated secret in the command rolls out');
  const text = JSON.stringify(plan);
  t.notOk(text.includes(OLD), 'the old value is not in the plan');
  t.notOk(text.includes(NEW), 'the new value is not in the plan');
  t.equal(plan.changes[0]?.summary, 'command changed (secret)', 'summarized as a changed secret');
});

t.test('an inline database password is never shown', async (t) => {
  const before = await desiredEnv(t, { ...BASE, database: { password: 'inline-pw-1' } });
  const after = await desiredEnv(t, { ...BASE, database: { password: 'inline-pw-2' } });
  t.notOk(JSON.stringify(containerLabels(designOdooContainer(before))).includes('inline-pw-1'), 'not in the spec label');
  const plan = planContainers(after, observedWorld().withContainer({ from: before }).build());
  t.equal(plan.changes[0]?.summary, 'config.db_password changed (secret)', 'shown as a changed secret');
  const text = JSON.stringify(plan);
  t.notOk(text.includes('inline-pw-1'), 'the old password is not in the plan');
  t.notOk(text.includes('inline-pw-2'), 'the new password is not in the plan');
});
