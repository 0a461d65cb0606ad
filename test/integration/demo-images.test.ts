// The stand-in Odoo images: built locally, served over a published port,
// healthy / broken / crashing as their tags say.
import http from 'node:http';
import t from 'tap';
import Dockerode from 'dockerode';
import { CONTENT_LABEL, CRASH_EXIT_CODE, DEMO_IMAGES, ensureDemoImages } from '../../src/demo/images.ts';

const docker = new Dockerode();
const created: string[] = [];
const runTag = `${process.pid}-${Date.now().toString(36)}`;
let seq = 0;

t.teardown(async () => {
  await Promise.all(
    created.map((id) =>
      docker
        .getContainer(id)
        .remove({ force: true, v: true })
        .catch(() => undefined),
    ),
  );
});

interface Started {
  container: Dockerode.Container;
  port: number;
}

async function start(
  image: string,
  opts: { cmd?: string[]; containerPort?: number; publish?: boolean } = {},
): Promise<Started> {
  const containerPort = `${opts.containerPort ?? 8069}/tcp`;
  const publish = opts.publish ?? true;
  const container = await docker.createContainer({
    name: `pulser-test-demo-images-${runTag}-${++seq}`,
    Image: image,
    Cmd: opts.cmd,
    Labels: { 'org.pulser.test': 'demo-images' },
    ExposedPorts: publish ? { [containerPort]: {} } : undefined,
    HostConfig: {
      Init: true,
      PortBindings: publish ? { [containerPort]: [{ HostIp: '127.0.0.1', HostPort: '' }] } : undefined,
    },
  });
  created.push(container.id);
  await container.start();
  if (!publish) return { container, port: 0 };
  const info = await container.inspect();
  const binding = info.NetworkSettings.Ports?.[containerPort]?.[0];
  if (!binding?.HostPort) throw new Error(`no host port published for ${containerPort}`);
  return { container, port: Number(binding.HostPort) };
}

/** One GET on 127.0.0.1 (node:http: fetch can stall without keeping the process alive). */
function getOnce(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false, timeout: 2_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
  });
}

/** GET, retried until the server answers (it needs a moment to listen behind the published port). */
async function get(
  port: number,
  path: string,
  timeoutMs = 15_000,
): Promise<{ status: number; body: string }> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      return await getOnce(port, path);
    } catch (err) {
      last = err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`GET ${path} on port ${port} did not answer within ${timeoutMs} ms: ${String(last)}`);
}

/** Stdout and stderr of a container (non-TTY, so the stream is multiplexed). */
async function logs(container: Dockerode.Container): Promise<string> {
  const buf = (await container.logs({ stdout: true, stderr: true, follow: false })) as unknown as Buffer;
  let out = '';
  for (let i = 0; i + 8 <= buf.length;) {
    const size = buf.readUInt32BE(i + 4);
    out += buf.subarray(i + 8, i + 8 + size).toString();
    i += 8 + size;
  }
  return out;
}

// Only against the harness's engine, never the machine's default one.
if (!process.env.DOCKER_HOST) {
  t.fail('DOCKER_HOST is not set: run the suite with `npm test` (test/harness/run.sh)');
} else {
  suite();
}

function suite(): void {
  t.test('builds the demo images, then finds them present', async (t) => {
    await ensureDemoImages(docker);
    for (const tag of DEMO_IMAGES) {
      const info = await docker.getImage(tag).inspect();
      t.ok(info.Config.Labels?.[CONTENT_LABEL], `${tag} exists and carries its content label`);
      t.same(info.Config.Entrypoint, ['/entrypoint.sh'], `${tag} entrypoint`);
      t.same(info.Config.Cmd, ['odoo'], `${tag} cmd`);
      t.ok(info.Config.Env?.includes('ODOO_RC=/etc/odoo/odoo.conf'), `${tag} ODOO_RC`);
      t.ok(info.Config.ExposedPorts?.['8069/tcp'], `${tag} exposes 8069`);
    }
    t.same(await ensureDemoImages(docker), [], 'a second call builds nothing');
    await t.rejects(ensureDemoImages(docker, { tags: ['pulser-demo/odoo:nope'] }), /unknown demo image/);
  });

  t.test('17.0.2 serves /web/health, /web/login and its version', async (t) => {
    const { container, port } = await start('pulser-demo/odoo:17.0.2');
    const health = await get(port, '/web/health');
    t.equal(health.status, 200, '/web/health is 200');
    t.same(JSON.parse(health.body), { status: 'pass' }, '/web/health body');
    const version = await get(port, '/version.txt');
    t.equal(version.body.trim(), '17.0.2', '/version.txt');
    const login = await get(port, '/web/login');
    t.equal(login.status, 200, '/web/login is 200');
    t.match(login.body, '17.0.2', '/web/login shows the version');
    const out = await logs(container);
    t.match(
      out,
      /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} \d+ INFO \? odoo: Odoo version 17\.0\.2$/m,
      'Odoo-style log line',
    );
    t.match(out, /odoo\.service\.server: HTTP service \(werkzeug\) running on 0\.0\.0\.0:8069/);
  });

  t.test('http_port from the [options] section of the configuration file', async (t) => {
    const conf = '[other]\\nhttp_port = 1\\n[options]\\n; comment\\nhttp_port = 9069\\n';
    const { port } = await start('pulser-demo/odoo:17.0.1', {
      containerPort: 9069,
      cmd: ['sh', '-c', `printf '${conf}' > /etc/odoo/odoo.conf && exec /entrypoint.sh odoo`],
    });
    const health = await get(port, '/web/health');
    t.equal(health.status, 200, 'answers on the configured port');
    t.equal((await get(port, '/version.txt')).body.trim(), '17.0.1');
  });

  t.test('broken answers 404 on /web/health', async (t) => {
    const { port } = await start('pulser-demo/odoo:broken');
    const login = await get(port, '/web/login');
    t.equal(login.status, 200, 'the server is up');
    const health = await get(port, '/web/health');
    t.equal(health.status, 404, '/web/health is 404');
  });

  t.test(`crash exits with code ${CRASH_EXIT_CODE}`, async (t) => {
    const { container } = await start('pulser-demo/odoo:crash', { publish: false });
    let timer: NodeJS.Timeout | undefined;
    const result = (await Promise.race([
      container.wait(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error('crash image did not exit within 15 s')), 15_000);
      }),
    ]).finally(() => clearTimeout(timer))) as { StatusCode: number };
    t.equal(result.StatusCode, CRASH_EXIT_CODE, 'exit code');
    const out = await logs(container);
    t.match(out, /INFO \? odoo: Odoo version 17\.0-crash/);
    t.match(out, /CRITICAL \? odoo\.service\.server: /);
  });
}
