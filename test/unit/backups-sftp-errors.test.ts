// How failures on an SFTP destination become coded errors: OpenSSH reports a full disk as a plain
// "Failure", so the destination's free space decides; permissions and missing paths are the
// destination's; a session that ended under a request is a lost connection; the backup's own
// errors pass through untouched.
import t from 'tap';
import { SftpBackupFs } from '../../reconcilers/backups/store-sftp.ts';
import { RemoteFiles, SFTP_STATUS } from '../../src/drivers/sftp.ts';
import { PulserError } from '../../src/errors.ts';

function sftpError(code: number, message: string): Error {
  return Object.assign(new Error(message), { code });
}

function fsWithFree(free: number | Error): SftpBackupFs {
  const files = new RemoteFiles({
    session: () => Promise.reject(new Error('no session in this test')),
    timed: (_what, p) => p,
    drop: () => undefined,
    where: () => 'host vault (backup@10.0.0.9:22)',
  });
  return new SftpBackupFs(
    'vault',
    () => files,
    async () => {
      if (free instanceof Error) throw free;
      return { availableBytes: free };
    },
  );
}

t.test('a failed write on a nearly full destination is PULSER_E_BACKUP_NO_SPACE', async (t) => {
  const err = await fsWithFree(12_288).failure(sftpError(SFTP_STATUS.FAILURE, 'Failure'), 'writing vault:/srv/b/x.partial/db.dump', '/srv/b');
  t.equal(err.code, 'PULSER_E_BACKUP_NO_SPACE');
  t.equal(err.message, 'writing vault:/srv/b/x.partial/db.dump: no space left on the backup destination vault:/srv/b (12.0 KiB free)');
});

t.test('a plain failure with room to spare is the destination failing, not a full disk', async (t) => {
  const err = await fsWithFree(50 * 1024 ** 3).failure(sftpError(SFTP_STATUS.FAILURE, 'Failure'), 'writing x', '/srv/b');
  t.equal(err.code, 'PULSER_E_BACKUP_DESTINATION');
  t.equal(err.message, 'writing x on vault:/srv/b: Failure');
});

t.test('free space that cannot be read leaves the failure as it is', async (t) => {
  const err = await fsWithFree(new Error('statvfs refused')).failure(sftpError(SFTP_STATUS.FAILURE, 'Failure'), 'writing x', '/srv/b');
  t.equal(err.code, 'PULSER_E_BACKUP_DESTINATION');
});

t.test('permission denied and missing paths are named', async (t) => {
  const fs = fsWithFree(50 * 1024 ** 3);
  const denied = await fs.failure(sftpError(SFTP_STATUS.PERMISSION_DENIED, 'Permission denied'), 'preparing backup x', '/srv/b');
  t.equal(denied.code, 'PULSER_E_BACKUP_DESTINATION');
  t.equal(denied.message, 'preparing backup x on vault:/srv/b: permission denied');
  const missing = await fs.failure(sftpError(SFTP_STATUS.NO_SUCH_FILE, 'No such file'), 'listing backups', '/srv/b');
  t.equal(missing.message, 'listing backups on vault:/srv/b: no such file or folder');
});

t.test("the backup's own errors and a lost connection keep their codes", async (t) => {
  const fs = fsWithFree(0);
  const dump = new PulserError('PULSER_E_BACKUP_FAILED', 'pg_dump exited with status 1');
  t.equal(await fs.failure(dump, 'writing x', '/srv/b'), dump, 'passed through untouched, even on a full disk');
  const lost = await fs.failure(new PulserError('PULSER_E_SSH_UNREACHABLE', 'gone'), 'writing x', '/srv/b');
  t.equal(lost.code, 'PULSER_E_SSH_UNREACHABLE');
});

t.test('RemoteFiles: a request failed by an ending session is a lost connection', async (t) => {
  const files = new RemoteFiles({ session: () => Promise.reject(new Error('x')), timed: (_w, p) => p, drop: () => undefined, where: () => 'host vault (backup@10.0.0.9:22)' });
  const err = files.fail('write', '/srv/b/db.dump', new Error('No response from server'));
  t.equal(err.code, 'PULSER_E_SSH_UNREACHABLE');
  t.equal(err.message, 'host vault (backup@10.0.0.9:22): the connection ended before SFTP write /srv/b/db.dump was answered');
  const other = files.fail('open', '/srv/b/db.dump', sftpError(SFTP_STATUS.PERMISSION_DENIED, 'Permission denied'));
  t.equal(other.code, 'PULSER_E_SSH_CHANNEL');
  t.same(other.details, { sftpStatus: SFTP_STATUS.PERMISSION_DENIED, path: '/srv/b/db.dump' });
});
