// kv keys arrive from Odoo dispatches and become file names: hostile keys must never reach the
// file system, and writes must never leave a half-written value behind.
import t from 'tap';
import { readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  KV_KEY_MAX_LENGTH,
  KV_VALUE_MAX_BYTES,
  readKv,
  validateKvKey,
  validateKvValue,
  writeKv,
} from '../../src/spec/kv.ts';
import { PulserError } from '../../src/errors.ts';

t.equal(KV_KEY_MAX_LENGTH, 128);
t.equal(KV_VALUE_MAX_BYTES, 4096);

t.test('valid keys', async (t) => {
  for (const key of ['staging.image_tag', 'a', 'A-b_c.d', '0', 'x'.repeat(128), 'prod.refresh-2024', 'a.b.c', 'trailing.']) {
    t.equal(validateKvKey(key), null, JSON.stringify(key));
  }
});

t.test('hostile and malformed keys', async (t) => {
  const table: [string, string, RegExp][] = [
    ['empty', '', /is empty$/],
    ['parent dir', '../x', /contains "\/" \(keys are file names, not paths\)/],
    ['bare dotdot', '..', /contains "\.\."/],
    ['dotdot inside', 'a..b', /contains "\.\."/],
    ['slash', 'a/b', /contains "\/"/],
    ['backslash', 'a\\b', /contains "\\" \(keys are file names, not paths\)/],
    ['absolute', '/etc/passwd', /contains "\/"/],
    ['NUL', 'a\0b', /contains a NUL character \(U\+0000\)/],
    ['newline', 'a\nb', /contains a control character \(U\+000A\)/],
    ['tab', 'a\tb', /contains a control character \(U\+0009\)/],
    ['DEL', 'a\u007fb', /contains a control character \(U\+007F\)/],
    ['space', 'a b', /contains a space/],
    ['too long', 'x'.repeat(200), /is 200 characters long \(at most 128\)/],
    ['one too long', 'x'.repeat(129), /is 129 characters long/],
    ['full-width letters', 'ｓｔａｇｉｎｇ', /contains the non-ASCII character "ｓ" \(U\+FF53\)/],
    ['Cyrillic look-alike', 'stаging', /non-ASCII character "а" \(U\+0430\)/],
    ['zero-width space', 'stag\u200bing', /non-ASCII character .* \(U\+200B\)/],
    ['hidden', '.hidden', /must not start with "\."/],
    ['option-like', '-rf', /must not start with "-"/],
    ['colon', 'a:b', /contains ":"/],
    ['glob', 'a*', /contains "\*"/],
    ['reference inside', '${kv:x}', /contains "\$"/],
  ];
  for (const [name, key, why] of table) {
    const err = validateKvKey(key);
    t.ok(err instanceof PulserError, name);
    t.equal(err?.code, 'PULSER_E_KV_KEY_INVALID', `${name}: code`);
    t.match(err?.message ?? '', why, `${name}: message says what is wrong`);
    t.notMatch(err?.message ?? '', /[\u0000-\u001f\u007f]/u, `${name}: no raw control characters in the message`);
  }
});

t.test('values', async (t) => {
  t.equal(validateKvValue('1.4.2'), null);
  t.equal(validateKvValue('  spaced out  \n'), null, 'checked after trimming');
  t.equal(validateKvValue(''), null, 'empty is a value');
  t.equal(validateKvValue('é'.repeat(2048)), null, '4096 bytes of UTF-8 fit');
  t.equal(validateKvValue('x'.repeat(4096) + '\n'), null, 'the trailing newline does not count');
  const table: [string, string, RegExp][] = [
    ['NUL', 'a\0b', /contains a NUL character/],
    ['two lines', 'a\nb', /spans several lines/],
    ['CR inside', 'a\rb', /spans several lines/],
    ['line separator', 'a\u2028b', /spans several lines/],
    ['escape sequence', 'a\u001b[31mb', /contains a control character \(U\+001B\)/],
    ['tab inside', 'a\tb', /contains a control character \(U\+0009\)/],
    ['too large', 'x'.repeat(4097), /is 4097 bytes long \(at most 4096\)/],
    ['too large in bytes', 'é'.repeat(2049), /is 4098 bytes long/],
  ];
  for (const [name, value, why] of table) {
    const err = validateKvValue(value);
    t.equal(err?.code, 'PULSER_E_KV_VALUE_INVALID', name);
    t.match(err?.message ?? '', why, `${name}: message`);
  }
  const secretish = validateKvValue('hunter2\0');
  t.notMatch(secretish?.message ?? '', /hunter2/, 'the value is never echoed');
});

t.test('readKv', async (t) => {
  const root = t.testdir({
    outside: 'not for you\n',
    ops: {
      kv: {
        'tag.txt': '  1.4.2 \n',
        'empty.txt': '',
        'dir.txt': {},
        'nul.txt': 'a\0b',
        'bad-utf8.txt': Buffer.from([0x31, 0xff, 0x32]),
        'inside.txt': t.fixture('symlink', 'tag.txt'),
        'escape.txt': t.fixture('symlink', '../../outside'),
        'dangling.txt': t.fixture('symlink', 'nowhere.txt'),
      },
    },
  });
  t.equal(await readKv(root, 'tag'), '1.4.2', 'trimmed');
  t.equal(await readKv(root, 'empty'), '');
  t.equal(await readKv(root, 'inside'), '1.4.2', 'a link inside ops/kv is fine');
  const rejects = async (key: string, code: string, why: RegExp) => {
    await t.rejects(readKv(root, key), { code, message: why }, `${JSON.stringify(key)} → ${code}`);
  };
  await rejects('missing', 'PULSER_E_KV_MISSING', /ops\/kv\/missing\.txt does not exist/);
  await rejects('dangling', 'PULSER_E_KV_MISSING', /does not exist/);
  await rejects('escape', 'PULSER_E_KV_VALUE_INVALID', /symbolic link pointing outside ops\/kv/);
  await rejects('dir', 'PULSER_E_KV_VALUE_INVALID', /not a regular file/);
  await rejects('nul', 'PULSER_E_KV_VALUE_INVALID', /NUL/);
  await rejects('bad-utf8', 'PULSER_E_KV_VALUE_INVALID', /not valid UTF-8/);
  await rejects('../outside', 'PULSER_E_KV_KEY_INVALID', /contains "\/"/);
  await rejects('', 'PULSER_E_KV_KEY_INVALID', /is empty/);
  await writeFile(path.join(root, 'ops/kv/huge.txt'), 'x'.repeat(100_000));
  await rejects('huge', 'PULSER_E_KV_VALUE_INVALID', /100000 bytes long/);
});

t.test('writeKv', async (t) => {
  const root = t.testdir({});
  await writeKv(root, 'staging.image_tag', '  1.4.3 ');
  t.equal(await readFile(path.join(root, 'ops/kv/staging.image_tag.txt'), 'utf8'), '1.4.3\n', 'creates ops/kv, stores trimmed with a newline');
  t.equal(await readKv(root, 'staging.image_tag'), '1.4.3');
  await writeKv(root, 'staging.image_tag', '1.4.4');
  t.equal(await readKv(root, 'staging.image_tag'), '1.4.4', 'replaces');
  t.same(await readdir(path.join(root, 'ops/kv')), ['staging.image_tag.txt'], 'no temp file left behind');

  await t.rejects(writeKv(root, '../escape', 'x'), { code: 'PULSER_E_KV_KEY_INVALID' });
  await t.rejects(writeKv(root, 'ok', 'two\nlines'), { code: 'PULSER_E_KV_VALUE_INVALID' });
  await t.rejects(writeKv(root, 'ok', 'x'.repeat(KV_VALUE_MAX_BYTES + 1)), { code: 'PULSER_E_KV_VALUE_INVALID' });
  t.same(await readdir(path.join(root, 'ops/kv')), ['staging.image_tag.txt'], 'refused writes touch nothing');
  t.same(await readdir(root), ['ops'], 'nothing written outside ops/kv');

  // A writer replaces the link itself, never the file the link points to.
  const target = path.join(root, 'target.txt');
  await writeFile(target, 'original\n');
  await symlink(target, path.join(root, 'ops/kv/linked.txt'));
  await writeKv(root, 'linked', 'new');
  t.equal(await readFile(target, 'utf8'), 'original\n');
  t.equal(await readKv(root, 'linked'), 'new');
});

t.test('concurrent writers never expose a partial value', async (t) => {
  const root = t.testdir({});
  const values = Array.from({ length: 20 }, (_, i) => String(i).repeat(200 + i));
  const reads: string[] = [];
  await writeKv(root, 'race', values[0]);
  await Promise.all([
    ...values.map((v) => writeKv(root, 'race', v)),
    ...Array.from({ length: 40 }, async () => {
      reads.push(await readKv(root, 'race'));
    }),
  ]);
  for (const r of reads) t.ok(values.includes(r), 'every read sees one whole value');
  t.ok(values.includes(await readKv(root, 'race')));
  t.same(await readdir(path.join(root, 'ops/kv')), ['race.txt']);
});
