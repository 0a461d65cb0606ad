// Alert notifications: one signed POST per transition (fired, resolved), retried with
// exponential backoff; every attempt has a timeout. The payload carries `text` for
// Slack-compatible receivers and structured fields for n8n and the like.
import { createHmac } from 'node:crypto';
import type { AlertName, WebhookSettings } from './settings.ts';

export const SIGNATURE_HEADER = 'x-pulser-signature';

export interface AlertNotification {
  status: 'firing' | 'resolved';
  alert: AlertName;
  env: string;
  tier: string;
  severity: 'critical' | 'warning';
  summary: string;
  value: number | null;
  threshold: number;
  startsAt: string;
  endsAt: string | null;
}

/** The exact body that is signed and sent. */
export function notificationBody(n: AlertNotification): string {
  const mark = n.status === 'firing' ? 'FIRING' : 'RESOLVED';
  return JSON.stringify({ text: `[${mark}] ${n.alert} ${n.summary}`, ...n });
}

/** `sha256=<hex HMAC-SHA256 of the raw body>` */
export function signBody(secret: string, body: string): string {
  return 'sha256=' + createHmac('sha256', secret).update(body).digest('hex');
}

export interface DeliveryResult {
  ok: boolean;
  attempts: number;
  /** `HTTP 500`, `timeout after 5000 ms`, … of the last failed attempt */
  error: string | null;
}

export interface DeliverOptions {
  /** base of the exponential backoff between attempts */
  backoffMs?: number;
  /** cuts the delivery short (pulser stopping); the notification stays owed */
  signal?: AbortSignal;
}

function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
  });
}

export async function deliverNotification(hook: WebhookSettings, n: AlertNotification, opts: DeliverOptions = {}): Promise<DeliveryResult> {
  const body = notificationBody(n);
  const headers: Record<string, string> = { 'content-type': 'application/json', 'user-agent': 'pulser-alerts', 'x-pulser-event': 'alert' };
  if (hook.secret) headers[SIGNATURE_HEADER] = signBody(hook.secret, body);
  const backoff = opts.backoffMs ?? 500;
  let error: string | null = null;
  let attempts = 0;
  for (let attempt = 0; attempt <= hook.retries; attempt++) {
    if (attempt > 0) await pause(Math.min(30_000, backoff * 2 ** (attempt - 1)), opts.signal);
    if (opts.signal?.aborted) return { ok: false, attempts, error: error ?? 'stopped before delivery' };
    attempts++;
    try {
      const signal = opts.signal ? AbortSignal.any([AbortSignal.timeout(hook.timeoutMs), opts.signal]) : AbortSignal.timeout(hook.timeoutMs);
      const res = await fetch(hook.url, { method: 'POST', headers, body, signal, redirect: 'error' });
      await res.arrayBuffer();
      if (res.ok) return { ok: true, attempts: attempt + 1, error: null };
      error = `HTTP ${res.status}`;
      // A 4xx other than 408/429 will not get better by retrying the same body.
      if (res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429) return { ok: false, attempts: attempt + 1, error };
    } catch (err) {
      const e = err as Error;
      error = e.name === 'TimeoutError' ? `timeout after ${hook.timeoutMs} ms` : e.name === 'AbortError' ? 'stopped during delivery' : ((e.cause as Error | undefined)?.message ?? e.message);
    }
  }
  return { ok: false, attempts, error };
}
