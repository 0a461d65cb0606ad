// The hand-written rollout the benchmarks compare pulser with: plain dockerode calls, no spec,
// no planning, no evidence. create new (same port binding) → stop old → start new → poll
// GET /web/health every interval until HTTP 200 → remove old.
import http from 'node:http';
import type Docker from 'dockerode';
import { LABEL } from '../src/drivers/docker.ts';
import { now, sleep } from './lib.ts';

/** One GET with a hard timeout; true on HTTP 200. */
export function healthy(port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/web/health', agent: false, timeout: timeoutMs }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode === 200));
      res.on('error', () => resolve(false));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
  });
}

export interface HandTimings {
  totalMs: number;
  probes: number;
}

/** One service rolled by hand: the containers are labelled with the env so cleanup finds them. */
export class HandRollout {
  private current: string | null = null;
  private serial = 0;

  constructor(
    private readonly docker: Docker,
    readonly env: string,
    readonly port: number,
    private readonly intervalMs = 200,
    private readonly maxProbes = 100,
  ) {}

  private async createFor(tag: string): Promise<string> {
    const c = await this.docker.createContainer({
      name: `${this.env}-hand-${++this.serial}`,
      Image: `pulser-demo/odoo:${tag}`,
      Labels: { [LABEL.env]: this.env },
      ExposedPorts: { '8069/tcp': {} },
      HostConfig: {
        Init: true,
        PortBindings: { '8069/tcp': [{ HostIp: '127.0.0.1', HostPort: String(this.port) }] },
      },
    });
    return c.id;
  }

  private async waitHealthy(): Promise<number> {
    for (let probe = 1; probe <= this.maxProbes; probe++) {
      if (await healthy(this.port)) return probe;
      await sleep(this.intervalMs);
    }
    throw new Error(`${this.env}: not healthy after ${this.maxProbes} probes`);
  }

  /** Takes over a running container of the same shape as the current one. */
  adopt(id: string): void {
    this.current = id;
  }

  /** First container (not part of any measured figure). */
  async init(tag: string): Promise<void> {
    const id = await this.createFor(tag);
    await this.docker.getContainer(id).start();
    await this.waitHealthy();
    this.current = id;
  }

  async rollout(tag: string): Promise<HandTimings> {
    const t0 = now();
    const old = this.current;
    const id = await this.createFor(tag);
    if (old) await this.docker.getContainer(old).stop({ t: 10 });
    await this.docker.getContainer(id).start();
    const probes = await this.waitHealthy();
    if (old) await this.docker.getContainer(old).remove({ force: true, v: true });
    this.current = id;
    return { totalMs: now() - t0, probes };
  }
}
