// The live progress line on a terminal: drawn at most once a frame with the newest message, cut to
// the terminal's width, kept under log lines, and cleared for good at the end; plain lines elsewhere.
import t from 'tap';
import { Writable } from 'node:stream';
import { createProgress } from '../../src/cli/progress.ts';

function terminal(columns?: number): { stream: NodeJS.WritableStream & { columns?: number }; text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString('utf8'));
      cb();
    },
  }) as Writable & { columns?: number };
  if (columns !== undefined) stream.columns = columns;
  return { stream, text: () => chunks.join('') };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test('a burst of updates draws once, then the newest message when the frame is over', async (t) => {
  const term = terminal(40);
  const p = createProgress(term.stream, true, { frameMs: 50 });
  for (let i = 1; i <= 30; i++) p.update('prod', `dump: ${i} KiB`);
  t.equal(term.text(), '\r\x1b[Kprod: dump: 1 KiB', 'only the first update of the frame is drawn at once');
  await sleep(120);
  t.equal(term.text(), '\r\x1b[Kprod: dump: 1 KiB\r\x1b[Kprod: dump: 30 KiB', 'then the newest, once');
  p.end();
  t.equal(term.text().slice(-4), '\r\x1b[K', 'end clears the line');
  p.update('prod', 'restore: 1 KiB');
  p.update('prod', 'late');
  p.end();
  await sleep(80);
  t.notMatch(term.text(), /late/, 'a message pending at the end is never drawn');
});

t.test('lines are cut to the terminal width, control characters flattened', async (t) => {
  const term = terminal(20);
  const p = createProgress(term.stream, true, { frameMs: 0 });
  p.update('staging', 'restoring staging-20260324T020000Z\ninto the database');
  const drawn = term.text().split('\r\x1b[K').pop()!;
  t.equal(drawn, 'staging: restoring…');
  t.equal([...drawn].length, 19, 'one column short of the width');
  p.end();
});

t.test('a terminal without a size is taken as 80 columns', async (t) => {
  const term = terminal(0);
  const p = createProgress(term.stream, true, { frameMs: 0 });
  p.update('e', 'x'.repeat(200));
  t.equal([...term.text().split('\r\x1b[K').pop()!].length, 79);
  p.end();
});

t.test('a log line goes above the live line, which is drawn again', async (t) => {
  const term = terminal(80);
  const p = createProgress(term.stream, true, { frameMs: 0 });
  p.update('prod', 'step 1');
  p.log('{"level":"warn","msg":"slow"}');
  t.equal(term.text(), '\r\x1b[Kprod: step 1\r\x1b[K{"level":"warn","msg":"slow"}\n\r\x1b[Kprod: step 1');
  p.end();
});

t.test('not a terminal: one plain line per update, no escape codes, nothing to clear', async (t) => {
  const term = terminal();
  const p = createProgress(term.stream, false);
  p.update('prod', 'dump: 1 KiB');
  p.update('prod', 'dump: 2 KiB\r');
  p.end();
  t.equal(term.text(), 'progress prod: dump: 1 KiB\nprogress prod: dump: 2 KiB \n');
});
