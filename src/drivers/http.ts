// HTTP health probes: one GET with a hard timeout, reported as data (status, body excerpt, error).
// node:http rather than fetch: the request keeps the process alive while it waits, and the
// timeout covers connecting, headers and body alike.
import http from 'node:http';
import type { Duplex } from 'node:stream';

/** Opens the connection a probe uses instead of a TCP socket (an SSH forward to a remote host). */
export type ProbeConnect = (cb: (err: Error | null, stream?: Duplex) => void) => void;

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

const BODY_LIMIT = 200;

export function probeHttp(url: string, timeoutMs: number, connect?: ProbeConnect): Promise<ProbeResult> {
  const started = performance.now();
  const took = () => Math.round(performance.now() - started);
  return new Promise((resolve) => {
    let settled = false;
    const done = (r: Omit<ProbeResult, 'url' | 'durationMs'>) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      resolve({ ...r, url, durationMs: took() });
    };
    const options: http.RequestOptions = { headers: { connection: 'close', 'user-agent': 'pulser-probe' } };
    // Node uses createConnection only when no agent is given (not even `agent: false`).
    if (connect) options.createConnection = ((_o: unknown, cb: (err: Error | null, s?: Duplex) => void) => connect(cb)) as unknown as http.RequestOptions['createConnection'];
    else options.agent = false;
    const req = http.get(url, options, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
        if (body.length >= BODY_LIMIT) finish();
      });
      res.on('end', finish);
      res.on('error', finish);
      function finish() {
        const status = res.statusCode ?? 0;
        done({ ok: status >= 200 && status < 300, status, body: body.slice(0, BODY_LIMIT), error: null });
      }
    });
    req.on('error', (err: NodeJS.ErrnoException) => done({ ok: false, status: null, body: '', error: describeSocketError(err) }));
    const timer = setTimeout(() => done({ ok: false, status: null, body: '', error: `timeout after ${timeoutMs} ms` }), timeoutMs);
  });
}

function describeSocketError(err: NodeJS.ErrnoException): string {
  // An SSH forward to a closed port is refused by the remote sshd ("Connection refused").
  if (/connection refused/i.test(err.message)) return 'connection refused';
  if (err.code === 'ECONNREFUSED') return 'connection refused';
  if (err.code === 'ECONNRESET' || err.message === 'socket hang up') return 'connection reset';
  return err.code ? `${err.code}: ${err.message}` : err.message;
}

/** One-line description of a probe, as shown in status and evidence. */
export function describeProbe(p: ProbeResult): string {
  if (p.status === null) return `GET ${p.url}: ${p.error}`;
  const body = p.body.replace(/\s+/g, ' ').trim().slice(0, 80);
  return `GET ${p.url}: HTTP ${p.status}${body ? ` ${JSON.stringify(body)}` : ''}`;
}
