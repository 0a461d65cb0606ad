// The DigitalOcean API v2 client for droplets: fetch with a timeout on every request, coded
// errors (terminal: 401/403, 404, 422; transient: 429, 5xx, timeouts), 429 waits for
// `ratelimit-reset` / `retry-after`, and only idempotent requests are retried — a create that
// failed is never repeated blindly (the next pass looks the droplet up by name and tag first).
import { PulserError } from '../errors.ts';

export interface DropletNetwork {
  ip_address: string;
  type: 'public' | 'private';
}

export interface Droplet {
  id: number;
  name: string;
  status: 'new' | 'active' | 'off' | 'archive';
  tags: string[];
  created_at: string;
  size_slug: string;
  region: { slug: string };
  image: { slug?: string | null; id?: number };
  networks: { v4: DropletNetwork[] };
}

export interface DropletCreate {
  name: string;
  region: string;
  size: string;
  image: string;
  ssh_keys?: (string | number)[];
  tags?: string[];
  user_data?: string;
}

export interface DigitalOceanOptions {
  baseUrl?: string;
  /** the API token, read per request (it comes from a secret) */
  token: () => Promise<string>;
  timeoutMs?: number;
  /** retries of idempotent requests after 429 or 5xx */
  maxRetries?: number;
  /** longest wait honoured for a rate limit before giving up with a transient error */
  maxRateLimitWaitMs?: number;
  backoffBaseMs?: number;
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
}

interface ApiError {
  id?: string;
  message?: string;
}

const sleepFor = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class DigitalOceanClient {
  private readonly o: Required<DigitalOceanOptions>;
  /** requests sent (tests and status read it) */
  requests = 0;

  constructor(opts: DigitalOceanOptions) {
    this.o = {
      baseUrl: 'https://api.digitalocean.com',
      timeoutMs: 15_000,
      maxRetries: 3,
      maxRateLimitWaitMs: 60_000,
      backoffBaseMs: 500,
      sleep: sleepFor,
      now: Date.now,
      ...opts,
    };
  }

  /** Droplets carrying a tag, every page. */
  async dropletsByTag(tag: string): Promise<Droplet[]> {
    const out: Droplet[] = [];
    let path: string | null = `/v2/droplets?tag_name=${encodeURIComponent(tag)}&per_page=200`;
    for (let page = 0; path && page < 50; page++) {
      const body = (await this.request('GET', path)) as { droplets: Droplet[]; links?: { pages?: { next?: string } } };
      out.push(...body.droplets);
      const next = body.links?.pages?.next;
      path = next ? new URL(next).pathname + new URL(next).search : null;
    }
    return out;
  }

  async droplet(id: number): Promise<Droplet | null> {
    try {
      return ((await this.request('GET', `/v2/droplets/${id}`)) as { droplet: Droplet }).droplet;
    } catch (err) {
      if (err instanceof PulserError && err.details?.status === 404) return null;
      throw err;
    }
  }

  async createDroplet(req: DropletCreate): Promise<Droplet> {
    return ((await this.request('POST', '/v2/droplets', req)) as { droplet: Droplet }).droplet;
  }

  async deleteDroplet(id: number): Promise<void> {
    await this.request('DELETE', `/v2/droplets/${id}`);
  }

  private async request(method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<unknown> {
    const idempotent = method !== 'POST';
    let attempt = 0;
    for (;;) {
      attempt++;
      const res = await this.send(method, path, body);
      if (res.status >= 200 && res.status < 300) return res.body;
      const err = res.body as ApiError | null;
      const what = `DigitalOcean ${method} ${path.split('?')[0]}: HTTP ${res.status}${err?.id ? ` ${err.id}` : ''}${err?.message ? `: ${err.message}` : ''}`;
      const details = { status: res.status, id: err?.id ?? null };
      if (res.status === 401 || res.status === 403) throw new PulserError('PULSER_E_DO_AUTH', what, { details });
      if (res.status === 404 || res.status === 422 || (res.status >= 400 && res.status < 500 && res.status !== 429)) {
        throw new PulserError('PULSER_E_DO_INVALID', what, { details });
      }
      const retryable = idempotent && attempt <= this.o.maxRetries;
      if (res.status === 429) {
        const wait = this.rateLimitWait(res.headers);
        if (!retryable || wait > this.o.maxRateLimitWaitMs) {
          throw new PulserError('PULSER_E_DO_RATE_LIMITED', `${what} (retry in ${Math.ceil(wait / 1000)} s)`, { details: { ...details, retryAfterMs: wait } });
        }
        await this.o.sleep(wait);
        continue;
      }
      if (!retryable) throw new PulserError('PULSER_E_DO_SERVER', what, { details });
      await this.o.sleep(this.o.backoffBaseMs * 2 ** (attempt - 1));
    }
  }

  /** `ratelimit-reset` is a unix time in seconds; `retry-after` a number of seconds. */
  private rateLimitWait(h: Headers): number {
    const retryAfter = Number(h.get('retry-after'));
    if (h.get('retry-after') !== null && Number.isFinite(retryAfter)) return Math.max(0, retryAfter * 1000);
    const reset = Number(h.get('ratelimit-reset'));
    if (h.get('ratelimit-reset') !== null && Number.isFinite(reset)) return Math.max(0, reset * 1000 - this.o.now());
    return this.o.backoffBaseMs;
  }

  private async send(method: string, path: string, body: unknown): Promise<{ status: number; headers: Headers; body: unknown }> {
    this.requests++;
    const token = await this.o.token();
    let res: Response;
    try {
      res = await fetch(this.o.baseUrl.replace(/\/$/, '') + path, {
        method,
        headers: { authorization: `Bearer ${token}`, accept: 'application/json', ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.o.timeoutMs),
      });
    } catch (err) {
      const e = err as Error;
      const timedOut = e.name === 'TimeoutError' || e.name === 'AbortError';
      throw new PulserError('PULSER_E_DO_SERVER', `DigitalOcean ${method} ${path.split('?')[0]}: ${timedOut ? `no answer within ${this.o.timeoutMs} ms` : e.message}`, { cause: err });
    }
    const text = await res.text();
    let parsed: unknown = null;
    if (text) {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = { message: text.slice(0, 200) };
      }
    }
    return { status: res.status, headers: res.headers, body: parsed };
  }
}

/** The droplet's public IPv4 address, if it has one yet. */
export function publicIpv4(d: Droplet): string | null {
  return d.networks.v4.find((n) => n.type === 'public')?.ip_address ?? null;
}
