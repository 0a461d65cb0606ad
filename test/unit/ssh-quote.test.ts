// What an SSH exec request carries: every argv element quoted so that the remote POSIX shell hands
// it to the process as one literal word. Checked by letting a real sh parse the command line.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { remoteCommand, shellQuote } from '../../src/drivers/ssh.ts';

const hostile = ['; touch /tmp/pwned', '$(id)', '`id`', `'`, `"'"'`, '\\', '*', '-rf /', 'a\nb', '$HOME ${PATH}', '|&<>', '', ' spaced  out '];

t.test('a real sh sees each element as one literal argument', async (t) => {
  const line = remoteCommand(['printf', '%s\\0', ...hostile]);
  const out = execFileSync('sh', ['-c', line], { encoding: 'utf8' });
  t.same(out.split('\0').slice(0, -1), hostile);
});

t.test('NUL cannot be passed and is refused', async (t) => {
  t.throws(() => shellQuote('a\0b'), { code: 'PULSER_E_TEMPLATE_PARAM' });
  t.throws(() => remoteCommand([]), { code: 'PULSER_E_INTERNAL' });
});
