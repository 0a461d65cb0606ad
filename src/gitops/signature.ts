// HMAC-SHA256 signatures of webhooks and dispatches (`sha256=<hex>` over the raw body, or over
// `<timestamp>.<body>` when a signed timestamp is sent), and the memory of accepted deliveries.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { PulserError } from '../errors.ts';

const SIGNATURE = /^sha256=([0-9a-fA-F]{64})$/;

export function signBody(secret: string, body: Buffer | string, timestamp?: string): string {
  const h = createHmac('sha256', secret);
  if (timestamp !== undefined) h.update(`${timestamp}.`);
  h.update(body);
  return 'sha256=' + h.digest('hex');
}

/** Throws PULSER_E_WEBHOOK_SIGNATURE unless `header` is the signature of `body` (compared in constant time). */
export function verifySignature(secret: string, body: Buffer, header: string | undefined, timestamp?: string): void {
  if (header === undefined || header === '') throw new PulserError('PULSER_E_WEBHOOK_SIGNATURE', 'the request is not signed (no signature header)');
  const m = SIGNATURE.exec(header);
  if (!m) throw new PulserError('PULSER_E_WEBHOOK_SIGNATURE', 'the signature header must be "sha256=" followed by 64 hex digits');
  const expected = Buffer.from(signBody(secret, body, timestamp).slice('sha256='.length), 'hex');
  const given = Buffer.from(m[1]!.toLowerCase(), 'hex');
  if (!timingSafeEqual(expected, given)) throw new PulserError('PULSER_E_WEBHOOK_SIGNATURE', 'the signature does not match the body');
}

/** Throws PULSER_E_WEBHOOK_STALE unless `ts` (unix seconds) is within `windowMs` of `now`. */
export function checkFreshness(ts: string, now: number, windowMs: number): void {
  if (!/^\d{1,12}$/.test(ts)) throw new PulserError('PULSER_E_WEBHOOK_STALE', 'the timestamp header must be unix seconds');
  const skew = Math.abs(now - Number(ts) * 1000);
  if (skew > windowMs) throw new PulserError('PULSER_E_WEBHOOK_STALE', `the signed timestamp is ${Math.round(skew / 1000)} s away from now (at most ${windowMs / 1000} s)`);
}

/**
 * Delivery ids accepted recently. Bounded (oldest forgotten first) and timed: a replay within the
 * window is refused; past it, the timestamp check (when used) refuses it instead.
 */
export class DeliveryLog {
  private readonly seen = new Map<string, number>();

  constructor(
    private readonly ttlMs = 24 * 3600_000,
    private readonly max = 100_000,
  ) {}

  /** Records `id`; false when it was already there (a replay). */
  claim(id: string, now = Date.now()): boolean {
    const at = this.seen.get(id);
    if (at !== undefined && now - at < this.ttlMs) return false;
    this.seen.delete(id);
    this.seen.set(id, now);
    while (this.seen.size > this.max) this.seen.delete(this.seen.keys().next().value as string);
    return true;
  }

  /** Forgets `id`, so that a delivery that failed on our side can be retried. */
  release(id: string): void {
    this.seen.delete(id);
  }
}
