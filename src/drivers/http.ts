// HTTP health probes: one GET with a timeout, reported as data (status, body excerpt, error).

export interface ProbeResult {
  ok: boolean;
  url: string;
  status: number | null;
  /** first 200 characters of the body */
  body: string;
  /** `timeout after 5000 ms`, `connection refused`, … when no HTTP answer came */
  error: string | null;
  durationMs: number;
}

export async function probeHttp(url: string, timeoutMs: number): Promise<ProbeResult> {
  const started = performance.now();
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), redirect: 'manual', headers: { connection: 'close' } });
    const text = await res.text();
    return {
      ok: res.status >= 200 && res.status < 300,
      url,
      status: res.status,
      body: text.slice(0, 200),
      error: null,
      durationMs: Math.round(performance.now() - started),
    };
  } catch (err) {
    return { ok: false, url, status: null, body: '', error: describeFetchError(err, timeoutMs), durationMs: Math.round(performance.now() - started) };
  }
}

function describeFetchError(err: unknown, timeoutMs: number): string {
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e.name === 'TimeoutError' || e.name === 'AbortError') return `timeout after ${timeoutMs} ms`;
  const code = e.cause?.code;
  if (code === 'ECONNREFUSED') return 'connection refused';
  if (code === 'ECONNRESET' || code === 'UND_ERR_SOCKET') return 'connection reset';
  return e.cause?.message ?? e.message ?? String(err);
}

/** One-line description of a probe, as shown in status and evidence. */
export function describeProbe(p: ProbeResult): string {
  if (p.status === null) return `GET ${p.url}: ${p.error}`;
  const body = p.body.replace(/\s+/g, ' ').trim().slice(0, 80);
  return `GET ${p.url}: HTTP ${p.status}${body ? ` ${JSON.stringify(body)}` : ''}`;
}
