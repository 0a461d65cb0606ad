// The Odoo log parser, the werkzeug status helper, log queries and the Docker log demultiplexer.
import t from 'tap';
import { parseOdooLog, OdooLogParser, httpStatusOf, werkzeugRequest, isErrorRecord, parseLogQuery, LastMatching, forEachDockerLogLine } from '../../src/logs/index.ts';
import { formatRecord } from '../../src/logs/read.ts';

const NOW = new Date('2024-05-01T12:00:00Z');

t.test('a header line becomes a record with every field', async (t) => {
  const [r] = parseOdooLog('2024-05-01 10:00:00,123 42 INFO dbname odoo.modules.loading: 12 modules loaded\n');
  t.same(r, { time: '2024-05-01T10:00:00.123Z', pid: 42, level: 'INFO', db: 'dbname', logger: 'odoo.modules.loading', message: '12 modules loaded', lines: [] });
  t.equal(formatRecord(r!), '2024-05-01 10:00:00,123 42 INFO dbname odoo.modules.loading: 12 modules loaded', 'printed back as Odoo printed it');
});

t.test('`?` is no database; a message may contain colons', async (t) => {
  const [r] = parseOdooLog('2024-05-01 10:00:00,001 7 WARNING ? odoo.service.server: cannot reach: db:5432 refused');
  t.equal(r!.db, null);
  t.equal(r!.logger, 'odoo.service.server');
  t.equal(r!.message, 'cannot reach: db:5432 refused');
});

t.test('continuation lines stay with their record; lines before the first record are kept', async (t) => {
  const text = [
    'Starting odoo',
    '2024-05-01 10:00:00,000 1 ERROR prod odoo.http: Exception during request handling.',
    'Traceback (most recent call last):',
    '  File "x.py", line 1, in f',
    '2024-05-01 10:00:01 not a header',
    'ValueError: boom\r',
    '2024-05-01 10:00:02,000 1 INFO prod odoo: next',
  ].join('\n');
  const rs = parseOdooLog(text);
  t.equal(rs.length, 3);
  t.same(rs[0], { time: null, pid: null, level: null, db: null, logger: null, message: 'Starting odoo', lines: [] });
  t.same(rs[1]!.lines, ['Traceback (most recent call last):', '  File "x.py", line 1, in f', '2024-05-01 10:00:01 not a header', 'ValueError: boom']);
  t.ok(isErrorRecord(rs[1]!));
  t.notOk(isErrorRecord(rs[2]!));
  t.equal(rs[2]!.message, 'next');
});

t.test('the streaming parser gives the same records', async (t) => {
  const p = new OdooLogParser();
  t.equal(p.push('2024-05-01 10:00:00,000 1 CRITICAL prod odoo: a'), null);
  t.equal(p.push('detail'), null);
  const first = p.push('2024-05-01 10:00:00,001 1 INFO prod odoo: b');
  t.same(first?.lines, ['detail']);
  t.equal(p.end()?.message, 'b');
  t.equal(p.end(), null);
});

t.test('werkzeug request records give their HTTP status', async (t) => {
  const [r] = parseOdooLog('2024-05-01 10:00:00,123 42 INFO db werkzeug: 127.0.0.1 - - [01/May/2024 10:00:00] "GET /web HTTP/1.1" 500 - 3 0.001 0.003');
  t.equal(httpStatusOf(r!), 500);
  t.same(werkzeugRequest(r!), { remote: '127.0.0.1', method: 'GET', path: '/web', status: 500, queries: 3, sqlSeconds: 0.001, otherSeconds: 0.003 });
  const [old] = parseOdooLog('2024-05-01 10:00:00,123 42 INFO db werkzeug: 10.0.0.2 - - [01/May/2024 10:00:00] "POST /longpolling/poll HTTP/1.1" 200 -');
  t.equal(httpStatusOf(old!), 200, 'without the query counters of Odoo ≥ 13');
  t.equal(werkzeugRequest(old!)!.queries, null);
  const [other] = parseOdooLog('2024-05-01 10:00:00,123 42 INFO db odoo.http: "GET /web HTTP/1.1" 500 -');
  t.equal(httpStatusOf(other!), null, 'only werkzeug records count');
  const [noise] = parseOdooLog('2024-05-01 10:00:00,123 42 INFO db werkzeug: Serving on 0.0.0.0:8069');
  t.equal(httpStatusOf(noise!), null);
});

t.test('queries: bad input is a coded error', async (t) => {
  const bad = (input: Parameters<typeof parseLogQuery>[0], re: RegExp) => t.throws(() => parseLogQuery(input, NOW), { code: 'PULSER_E_LOGS_QUERY', message: re });
  bad({ n: '0' }, /-n must be/);
  bad({ n: '10001' }, /-n must be/);
  bad({ n: '5x' }, /-n must be/);
  bad({ since: 'yesterday' }, /--since/);
  bad({ until: '2024-13-45' }, /--until/);
  bad({ grep: '(' }, /not a valid regular expression/);
  bad({ grep: 'x'.repeat(300) }, /--grep must be/);
  bad({ since: '2024-05-02', until: '2024-05-01' }, /after/);
  bad({ service: '../etc' }, /service/);
  const q = parseLogQuery({ since: '15m', until: '2024-05-01 11:59:00', n: '3', errors: true }, NOW);
  t.equal(q.since!.toISOString(), '2024-05-01T11:45:00.000Z');
  t.equal(q.until!.toISOString(), '2024-05-01T11:59:00.000Z');
  t.equal(q.limit, 3);
});

t.test('the last N matching records are kept, in order', async (t) => {
  const q = parseLogQuery({ n: '2', grep: 'keep' }, NOW);
  const sel = new LastMatching(q);
  const lines = ['a keep', 'b', 'c keep', 'd keep', 'e'];
  for (const [i, m] of lines.entries()) sel.offer({ time: `2024-05-01T10:00:0${i}.000Z`, pid: 1, level: 'INFO', db: null, logger: 'x', message: m, lines: [] });
  t.same(sel.result().map((r) => r.message), ['c keep', 'd keep']);
  t.equal(sel.seen, 5);
  t.equal(sel.matched, 3);
});

function frame(stream: number, text: string): Buffer {
  const body = Buffer.from(text);
  const h = Buffer.alloc(8);
  h[0] = stream;
  h.writeUInt32BE(body.length, 4);
  return Buffer.concat([h, body]);
}

async function collect(chunks: Buffer[]): Promise<string[]> {
  const out: string[] = [];
  async function* src() {
    yield* chunks;
  }
  await forEachDockerLogLine(src(), (l) => out.push(l));
  return out;
}

t.test('multiplexed frames are split into lines wherever the chunks break', async (t) => {
  const all = Buffer.concat([frame(2, 'first li'), frame(1, 'out line\n'), frame(2, 'ne été\nsecond\n'), frame(2, 'tail')]);
  const expected = ['out line', 'first line été', 'second', 'tail'];
  // Every split point, including inside headers and inside the two-byte é.
  for (let cut = 1; cut < all.length; cut++) {
    const got = await collect([all.subarray(0, cut), all.subarray(cut)]);
    if (JSON.stringify(got) !== JSON.stringify(expected)) {
      t.fail(`split at ${cut}: ${JSON.stringify(got)}`);
      return;
    }
  }
  t.pass('every split point gives the same lines');
  t.same(await collect([Buffer.from('raw tty output\nline two')]), ['raw tty output', 'line two'], 'a TTY stream is read as it is');
});
