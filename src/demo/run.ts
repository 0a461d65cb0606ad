// `npm start`: makes the demo runnable on a bare machine — checks the Docker engine (saying
// exactly what is missing), builds the stand-in Odoo images when absent, and supplies the demo's
// throwaway secrets unless real ones are set.
import Docker from 'dockerode';
import { access } from 'node:fs/promises';
import { ensureDemoImages } from './images.ts';
import { PulserError } from '../errors.ts';
import { defaultDockerSocket } from '../drivers/index.ts';

/** Values for the demo environments only; real deployments set them in a secrets file. */
const DEMO_SECRETS: Record<string, string> = {
  DEMO_DB_PASSWORD: 'demo-db-password',
  DEMO_SMTP_PASSWORD: 'demo-smtp-password',
};

export async function prepareDemo(_root: string, say: (line: string) => void): Promise<void> {
  const socket = defaultDockerSocket();
  const missing = async (why: string): Promise<never> => {
    const dockerd = await access('/usr/sbin/dockerd').then(
      () => true,
      () => false,
    );
    const how = dockerd
      ? 'start it: `dockerd --iptables=false --storage-driver=vfs > /var/log/dockerd.log 2>&1 &` (or `systemctl start docker`)'
      : 'install and start one: `apt-get install -y docker.io busybox-static` then `dockerd > /var/log/dockerd.log 2>&1 &`';
    throw new PulserError('PULSER_E_DOCKER_UNREACHABLE', `the demo needs a Docker engine at ${socket} (${why}); ${how}, or set DOCKER_HOST=unix:///path/to/docker.sock`);
  };
  await access(socket).catch(() => missing('no socket there'));
  const docker = new Docker({ socketPath: socket, timeout: 60_000 });
  await docker.ping().catch((err: Error) => missing(err.message));
  const built = await ensureDemoImages(docker, { onProgress: say });
  say(built.length ? `built demo images: ${built.join(', ')}` : 'demo images present');
  for (const [k, v] of Object.entries(DEMO_SECRETS)) process.env[k] ??= v;
  // The demo's specs read these two from the process environment: declare their prefix.
  process.env.PULSER_SECRETS_ENV_PREFIX ??= 'DEMO_';
}
