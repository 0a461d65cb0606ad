// Which commit of the GitOps repository a pass applies: HEAD when the spec folders are clean,
// `uncommitted` when the working tree is used as is (edited files, or not a git repository).
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);
const SPEC_PATHS = ['environments', 'ops/kv'];

export async function specCommit(root: string, timeoutMs = 5_000): Promise<string> {
  try {
    const opts = { cwd: root, timeout: timeoutMs, maxBuffer: 1 << 20 };
    const head = (await run('git', ['rev-parse', 'HEAD'], opts)).stdout.trim();
    const dirty = (await run('git', ['status', '--porcelain', '--untracked-files=all', '--', ...SPEC_PATHS], opts)).stdout.trim();
    return dirty ? 'uncommitted' : head;
  } catch {
    return 'uncommitted';
  }
}
