// S2: backups to an SFTP destination. Pulser's backup to a folder on another host (a network
// namespace running only sshd, from test/harness/hosts.sh) against what an operator would script
// by hand, `pg_dump -Fc | ssh host 'cat > file'`, side by side in the same run; and a drill of that
// backup (copy to $TMPDIR, checksums, pg_restore, row counts, drop) against the same drill of the
// same backup kept in a local folder. Not a test: nothing here asserts.
//
//   bash test/harness/with-engines.sh node --import tsx bench/backups-sftp.bench.ts [--scale 10] [--rounds 2]
import { parseArgs } from 'node:util';
import { spawn } from 'node:child_process';
import { cp, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { createPulser } from '../src/app.ts';
import { PG_BIN } from '../reconcilers/backups/commands.ts';
import { LocalBackupStore, SftpBackupStore, takeBackup, backupId, drill } from '../reconcilers/backups/index.ts';
import { RemoteHosts } from '../test/helpers/remote-hosts.ts';
import { BenchRoot, fmtMs, load1, median, printSection, summaryLine, type SectionResult } from './lib.ts';
import { backupEnvYaml, createPgbenchDb, dropPgbenchDb, mib, PG, pgArgs, timed } from './pg.ts';

const { values: flags } = parseArgs({ options: { scale: { type: 'string', default: process.env.PULSER_BENCH_SCALE ?? '10' }, rounds: { type: 'string', default: '2' }, 'random-mib': { type: 'string', default: '64' } } });
const SCALE = Number(flags.scale);
const ROUNDS = Number(flags.rounds);
// pgbench's rows compress to almost nothing; random bytes make the transfer itself count.
const RANDOM_MIB = Number(flags['random-mib']);
/** `pg_dump -Fc | ssh host 'cat > file'`: the hand-made remote backup. */
function dumpOverSsh(host: { address: string; port: number; user: string; keyFile: string }, database: string, file: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const dump = spawn(`${PG_BIN}/pg_dump`, [...pgArgs, '--format=custom', `--dbname=${database}`], { stdio: ['ignore', 'pipe', 'inherit'] });
    const ssh = spawn('ssh', ['-i', host.keyFile, '-p', String(host.port), '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR', `${host.user}@${host.address}`, `cat > '${file}'`], { stdio: ['pipe', 'inherit', 'inherit'] });
    dump.stdout.pipe(ssh.stdin);
    let left = 2;
    const done = (what: string) => (code: number | null) => {
      if (code !== 0) return reject(new Error(`${what} exited ${code}`));
      if (--left === 0) resolve();
    };
    dump.once('close', done('pg_dump'));
    ssh.once('close', done('ssh'));
  });
}

async function main(): Promise<void> {
  const sfx = randomBytes(3).toString('hex');
  const env = `bench-s2-${sfx}`;
  const database = `bench_s2_${sfx}`;
  const remote = await mkdtemp(path.join(tmpdir(), 'pulser-bench-s2-remote-'));
  const local = await mkdtemp(path.join(tmpdir(), 'pulser-bench-s2-local-'));
  const root = await BenchRoot.create('s2');
  const hosts = await RemoteHosts.up('bench-sftp', 1, [], { docker: false });
  const h = hosts.get('h1');
  const results: SectionResult[] = [];
  console.log(`pulser SFTP backup benchmarks — node ${process.version}, PostgreSQL ${PG.host}:${PG.port}, pgbench scale ${SCALE}, SFTP host ${h.address} (veth link), load ${load1()}`);
  const yaml = hosts.hostsYaml().replace('  h1:', '  vault:');
  await writeFile(path.join(root.dir, 'environments', 'hosts.yaml'), `hosts:\n  local:\n    kind: local\n${yaml.replace(/^hosts:\n/, '')}`);
  const p = createPulser({ root: root.dir, evidenceDir: null, processMetrics: false, logLevel: 'warn' });
  try {
    const randomSql = `CREATE TABLE bench_random AS SELECT g AS id, decode(string_agg(md5(random()::text), ''), 'hex') AS data FROM generate_series(1, ${RANDOM_MIB * 1024}) g, generate_series(1, 64) k GROUP BY g`;
    const { bytes: dbBytes } = await createPgbenchDb(database, SCALE, randomSql);
    console.log(`database ${database}: ${mib(dbBytes)} (pgbench scale ${SCALE} and ${RANDOM_MIB} MiB of random bytes)`);
    await writeFile(path.join(root.dir, 'environments', `${env}.yaml`), backupEnvYaml(env, database, 20998, `{ type: sftp, host: vault, path: ${remote} }`));
    const l = (await p.load()).envs.get(env);
    if (!l?.ok) throw new Error(`bench environment does not load: ${JSON.stringify(l)}`);
    const desired = l.desired;
    const ctx = p.engine.context(desired);
    const sftp = new SftpBackupStore('vault', remote, ctx.drivers);

    const raw: number[] = [];
    const ours: number[] = [];
    let bytes = 0;
    for (let r = 0; r < ROUNDS; r++) {
      raw.push(await timed(() => dumpOverSsh(h, database, path.join(remote, `raw-${r}.dump`))));
      const at = new Date(Date.now() + r * 1000);
      ours.push(await timed(async () => (bytes = (await takeBackup({ desired, drivers: ctx.drivers, store: sftp, commit: 'bench', progress: () => undefined }, { id: backupId(env, at), at, kind: 'manual', reason: 'bench' })).bytes)));
    }
    const rawBytes = (await stat(path.join(remote, 'raw-0.dump'))).size;
    const ratio = median(ours) / median(raw);
    results.push({
      id: 'S2a',
      title: `backup to an SFTP host: pulser vs pg_dump -Fc | ssh host 'cat > file' (${mib(dbBytes)} database, ${ROUNDS} rounds, medians)`,
      lines: [
        ['pulser backup', `${fmtMs(median(ours))} (${ours.map(fmtMs).join(', ')}), ${mib(bytes)} dump, ${((bytes / 1048576) / (median(ours) / 1000)).toFixed(1)} MiB/s written`],
        ['pg_dump | ssh', `${fmtMs(median(raw))} (${raw.map(fmtMs).join(', ')}), ${mib(rawBytes)} dump`],
      ],
      baseline: "pg_dump --format=custom piped into ssh … 'cat > file', same host, same run",
      ratio,
      targets: [],
      notes: ['pulser also counts the largest tables in the exported snapshot, hashes the stream, fsyncs the file on the host, writes the manifest and renames the folder'],
    });
    printSection(results.at(-1)!);

    const [newest] = await sftp.list(env);
    const localStore = new LocalBackupStore(local);
    await cp(path.join(remote, env, newest!.manifest.id), path.join(local, env, newest!.manifest.id), { recursive: true });
    const [localEntry] = await localStore.list(env);
    const fromLocal: number[] = [];
    const fromSftp: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      fromLocal.push(await timed(async () => assertOk(await drill({ desired, drivers: ctx.drivers, store: localStore, progress: () => undefined }, localEntry!))));
      fromSftp.push(await timed(async () => assertOk(await drill({ desired, drivers: ctx.drivers, store: sftp, progress: () => undefined }, newest!))));
    }
    const drillRatio = median(fromSftp) / median(fromLocal);
    results.push({
      id: 'S2b',
      title: `restore drill of a backup on the SFTP host vs the same backup in a local folder (${ROUNDS} rounds, medians)`,
      lines: [
        ['drill from SFTP', `${fmtMs(median(fromSftp))} (${fromSftp.map(fmtMs).join(', ')}): copy to $TMPDIR, sha256, pg_restore, row counts, drop`],
        ['drill from local', `${fmtMs(median(fromLocal))} (${fromLocal.map(fmtMs).join(', ')})`],
      ],
      baseline: 'the same drill of the same backup kept in a local folder, same run',
      ratio: drillRatio,
      targets: [],
      notes: [],
    });
    printSection(results.at(-1)!);
  } catch (err) {
    console.error(`\nbench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exitCode = 1;
  } finally {
    await p.close();
    await dropPgbenchDb(database);
    await hosts.down().catch(() => undefined);
    await rm(remote, { recursive: true, force: true });
    await rm(local, { recursive: true, force: true });
    await root.remove();
  }
  console.log(`\nsummary: ${summaryLine(results) || 'nothing measured'}`);
}

function assertOk(rec: { ok: boolean; error?: { message: string } }): void {
  if (!rec.ok) throw new Error(`the drill failed: ${rec.error?.message}`);
}

await main();
