// P5: backups. Pulser's backup (pg_dump streamed through sha256 into the store, manifest counts in
// the same snapshot) against a raw `pg_dump -Fc` of the same database to a file, and pulser's
// restore drill (checksums read beside pg_restore, row counts, drop) against a raw createdb +
// pg_restore + dropdb of the same dump, side by side in each round. The database is made by
// `pgbench -i`. The two run in turns, alternating which goes first. Not a test: nothing here asserts.
import { parseArgs } from 'node:util';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { createPulser } from '../src/app.ts';
import { PG_BIN } from '../reconcilers/backups/commands.ts';
import { LocalBackupStore, takeBackup, backupId, drill } from '../reconcilers/backups/index.ts';
import { BenchRoot, fmtMs, load1, median, printSection, summaryLine, type SectionResult } from './lib.ts';
import { backupEnvYaml, createPgbenchDb, dropPgbenchDb, LONG, mib, PG, pgArgs, run, timed } from './pg.ts';

const { values: flags } = parseArgs({ strict: false, options: { only: { type: 'string' }, scale: { type: 'string', default: process.env.PULSER_BENCH_SCALE ?? '35' }, rounds: { type: 'string', default: '2' } } });
const only = typeof flags.only === 'string' ? new Set(flags.only.split(',').map((s) => s.trim().toUpperCase())) : null;
const SCALE = Number(flags.scale);
const ROUNDS = Number(flags.rounds);

/**
 * Runs the baseline and pulser's step of round `r`, the baseline first in even rounds and second in
 * odd ones, so neither always pays for what the other left behind (dirty buffers, a checkpoint).
 */
async function inTurn(r: number, baseline: () => Promise<unknown>, pulser: () => Promise<unknown>): Promise<void> {
  for (const step of r % 2 === 0 ? [baseline, pulser] : [pulser, baseline]) await step();
}

const rate = (bytes: number, ms: number) => `${(bytes / 1048576 / (ms / 1000)).toFixed(1)} MiB/s`;

async function main(): Promise<void> {
  if (only && !only.has('P5')) return;
  const sfx = randomBytes(3).toString('hex');
  const env = `bench-p5-${sfx}`;
  const database = `bench_p5_${sfx}`;
  const dest = await mkdtemp(path.join(tmpdir(), 'pulser-bench-p5-'));
  const root = await BenchRoot.create('p5');
  const results: SectionResult[] = [];
  console.log(`pulser backup benchmarks — node ${process.version}, PostgreSQL ${PG.host}:${PG.port}, pgbench scale ${SCALE}, load ${load1()}`);
  const p = createPulser({ root: root.dir, evidenceDir: null, processMetrics: false, logLevel: 'warn' });
  try {
    const { bytes: dbBytes, initMs: tInit } = await createPgbenchDb(database, SCALE);
    console.log(`database ${database}: ${mib(dbBytes)} (pgbench -i -s ${SCALE} in ${fmtMs(tInit)})`);

    await writeFile(path.join(root.dir, 'environments', `${env}.yaml`), backupEnvYaml(env, database, 20999, `{ type: local, path: ${dest} }`));
    const snap = await p.load();
    const l = snap.envs.get(env);
    if (!l?.ok) throw new Error(`bench environment does not load: ${JSON.stringify(l)}`);
    const desired = l.desired;
    const ctx = p.engine.context(desired);
    const store = new LocalBackupStore(dest);

    const raw: number[] = [];
    const ours: number[] = [];
    let dumpBytes = 0;
    let rawFile = '';
    for (let r = 0; r < ROUNDS; r++) {
      rawFile = path.join(dest, `raw-${r}.dump`);
      const file = rawFile;
      const at = new Date(Date.now() + r * 1000);
      await inTurn(
        r,
        async () => raw.push(await timed(() => run(`${PG_BIN}/pg_dump`, [...pgArgs, '--format=custom', `--file=${file}`, `--dbname=${database}`], LONG))),
        async () => ours.push(await timed(async () => (dumpBytes = (await takeBackup({ desired, drivers: ctx.drivers, store, commit: 'bench', progress: () => undefined }, { id: backupId(env, at), at, kind: 'manual', reason: 'bench' })).bytes))),
      );
    }
    const rawBytes = (await stat(rawFile)).size;
    const backupRatio = median(ours) / median(raw);
    results.push({
      id: 'P5a',
      title: `backup throughput: pulser backup vs raw pg_dump -Fc to a file (${mib(dbBytes)} database, ${ROUNDS} rounds, medians)`,
      lines: [
        ['pulser backup', `${fmtMs(median(ours))} (${ours.map(fmtMs).join(', ')}), ${mib(dumpBytes)} dump, ${rate(dbBytes, median(ours))} of database`],
        ['raw pg_dump', `${fmtMs(median(raw))} (${raw.map(fmtMs).join(', ')}), ${mib(rawBytes)} dump, ${rate(dbBytes, median(raw))} of database`],
        ['throughput', `${(1 / backupRatio).toFixed(3)}× of raw (target ≥ 0.9×); round by round ${raw.map((r, i) => `${(r / ours[i]!).toFixed(3)}×`).join(', ')}`],
      ],
      baseline: `pg_dump --format=custom --file of the same database, same run`,
      ratio: backupRatio,
      targets: [{ label: 'time ratio', value: backupRatio, limit: 1 / 0.9, show: (v) => `${v.toFixed(3)}×` }],
      notes: [
        'pulser also: exports a snapshot from a REPEATABLE READ transaction and, beside pg_dump reading that snapshot, counts the 25 largest tables exactly in it (count(*), one process each, no JIT)',
        'and: pulls the dump through its stdout (64 KiB stdio buffer) and sha256, writes it to <id>.partial/, fsyncs it, writes the manifest (Odoo version, modules, sizes, checksums, durations) and renames the folder',
      ],
    });
    printSection(results.at(-1)!);

    const [newest] = await store.list(env);
    const rawRestore: number[] = [];
    const drills: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const scratch = `bench_p5_raw_${sfx}_${r}`;
      let ok = false;
      await inTurn(
        r,
        async () =>
          rawRestore.push(
            await timed(async () => {
              await run(`${PG_BIN}/createdb`, [...pgArgs, '--template=template0', scratch], LONG);
              await run(`${PG_BIN}/pg_restore`, [...pgArgs, '--no-owner', '--no-privileges', '--exit-on-error', '--jobs=2', `--dbname=${scratch}`, path.join(newest!.dir, newest!.manifest.files.dump.name)], LONG);
              await run(`${PG_BIN}/dropdb`, [...pgArgs, scratch], LONG);
            }),
          ),
        async () => drills.push(await timed(async () => (ok = (await drill({ desired, drivers: ctx.drivers, store, progress: () => undefined }, newest!)).ok))),
      );
      if (!ok) throw new Error('the drill failed');
    }
    const drillRatio = median(drills) / median(rawRestore);
    results.push({
      id: 'P5b',
      title: `restore drill vs raw createdb + pg_restore --jobs=2 + dropdb of the same dump (${ROUNDS} rounds, medians)`,
      lines: [
        ['pulser drill', `${fmtMs(median(drills))} (${drills.map(fmtMs).join(', ')})`],
        ['raw pg_restore', `${fmtMs(median(rawRestore))} (${rawRestore.map(fmtMs).join(', ')})`],
        ['round by round', drills.map((d, i) => `${(d / rawRestore[i]!).toFixed(3)}×`).join(', ')],
      ],
      baseline: 'createdb + pg_restore --jobs=2 + dropdb, same dump, same run',
      ratio: drillRatio,
      targets: [{ label: 'ratio', value: drillRatio, limit: 1.1, show: (v) => `${v.toFixed(3)}×` }],
      notes: [
        'pulser also: sha256 of the backup files against the manifest, read while pg_restore reads the dump (a mismatch stops pg_restore and fails the drill)',
        "and: exact count(*) of every table in the manifest's row counts in the restored database, compared with the manifest; the drill record written and fsynced",
      ],
    });
    printSection(results.at(-1)!);
  } catch (err) {
    console.error(`\nbench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exitCode = 1;
  } finally {
    await p.close();
    await dropPgbenchDb(database);
    await rm(dest, { recursive: true, force: true });
    await root.remove();
  }
  console.log(`\nsummary: ${summaryLine(results) || 'nothing measured'}`);
}

await main();
