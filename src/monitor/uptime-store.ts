// Probe outcomes per environment in per-minute buckets, kept across restarts. Each environment
// has one file of `<minute> <up> <total>` lines, appended as minutes close and rewritten
// atomically (older minutes folded into `h<hour> <up> <total>` lines) when it grows, so a file
// stays under a few thousand lines whatever the uptime of pulser.
import { appendFile, mkdir, readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { writeFileAtomic, isErrno } from '../evidence/durable.ts';
import { uptimeRatio, type UptimeBucket } from './kpi.ts';
import type { UptimeWindow } from '../../reconcilers/alerts/settings.ts';

const MINUTE_MS = 60_000;
const DAY_MINUTES = 1440;
const MONTH_HOURS = 720;
/** Lines a file may reach before it is compacted. */
const COMPACT_AT = DAY_MINUTES + MONTH_HOURS + 720;

interface Counts {
  up: number;
  total: number;
}

interface EnvSeries {
  /** closed and open minutes of the last 24 h */
  minutes: Map<number, Counts>;
  /** every hour of the last 30 days, including the minutes above */
  hours: Map<number, Counts>;
  /** minute whose counts are not yet in the file */
  openMinute: number | null;
  open: Counts;
  lines: number;
  /** closed minutes not yet in the file: a full rewrite (after compaction) and/or lines to append */
  unwritten: { rewrite: string | null; lines: string } | null;
  writing: boolean;
}

function add(map: Map<number, Counts>, key: number, up: number, total: number): void {
  const c = map.get(key);
  if (c) {
    c.up += up;
    c.total += total;
  } else map.set(key, { up, total });
}

export class UptimeStore {
  private readonly series = new Map<string, EnvSeries>();
  private readonly dir: string;

  constructor(
    stateDir: string,
    private readonly onError: (err: unknown) => void,
  ) {
    this.dir = path.join(stateDir, 'uptime');
  }

  /** Reads every environment's file; lines that do not parse are dropped. */
  async load(): Promise<void> {
    let files: string[] = [];
    try {
      files = (await readdir(this.dir)).filter((f) => f.endsWith('.log'));
    } catch (err) {
      if (!isErrno(err, 'ENOENT')) throw err;
    }
    for (const f of files) {
      const env = f.slice(0, -'.log'.length);
      const s = this.seriesOf(env);
      const text = await readFile(path.join(this.dir, f), 'utf8');
      for (const line of text.split('\n')) {
        const m = /^(h?)(\d+) (\d+) (\d+)$/.exec(line);
        if (!m) continue;
        const [key, up, total] = [Number(m[2]), Number(m[3]), Number(m[4])];
        if (up > total) continue;
        s.lines++;
        if (m[1] === 'h') add(s.hours, key, up, total);
        else {
          add(s.minutes, key, up, total);
          add(s.hours, Math.floor(key / 60), up, total);
        }
      }
    }
  }

  /** One probe outcome at `atMs`; closing a minute appends it to the file in the background. */
  record(env: string, atMs: number, up: boolean): void {
    const s = this.seriesOf(env);
    const minute = Math.floor(atMs / MINUTE_MS);
    if (s.openMinute !== null && minute !== s.openMinute && s.open.total > 0) void this.closeMinute(env, s);
    s.openMinute = minute;
    s.open.total++;
    if (up) s.open.up++;
    add(s.minutes, minute, up ? 1 : 0, 1);
    add(s.hours, Math.floor(minute / 60), up ? 1 : 0, 1);
  }

  /** Uptime over a rolling window ending at `nowMs`; the 30 d window counts whole hours. */
  ratio(env: string, window: UptimeWindow, nowMs: number): number | null {
    const s = this.series.get(env);
    if (!s) return null;
    const minute = Math.floor(nowMs / MINUTE_MS);
    this.prune(s, minute);
    if (window === '30d') {
      const hours = [...s.hours].map(([hour, c]) => ({ minute: hour, ...c }));
      return uptimeRatio(hours, Math.floor(minute / 60), MONTH_HOURS);
    }
    const buckets: UptimeBucket[] = [...s.minutes].map(([m, c]) => ({ minute: m, ...c }));
    return uptimeRatio(buckets, minute, window === '1h' ? 60 : DAY_MINUTES);
  }

  /** Stops tracking an environment; its file stays, so a renamed-back environment keeps its history. */
  forget(env: string): void {
    this.series.delete(env);
  }

  /** Writes every minute not yet in the files (closed ones and the open one). */
  async flush(): Promise<void> {
    for (const [env, s] of this.series) {
      if (s.open.total > 0) await this.closeMinute(env, s);
    }
    await this.pendingWrites;
  }

  private pendingWrites: Promise<void> = Promise.resolve();
  private dirReady: Promise<void> | undefined;

  private closeMinute(env: string, s: EnvSeries): Promise<void> {
    const line = `${s.openMinute} ${s.open.up} ${s.open.total}\n`;
    s.open = { up: 0, total: 0 };
    s.lines++;
    if (s.lines > COMPACT_AT) {
      // The compacted text is taken now, while memory holds closed minutes only; it holds every
      // line still waiting, so those are dropped.
      s.unwritten = { rewrite: this.compactText(s), lines: '' };
    } else {
      s.unwritten ??= { rewrite: null, lines: '' };
      s.unwritten.lines += line;
    }
    if (s.writing) return this.pendingWrites;
    s.writing = true;
    // One write job per environment at a time takes whatever waits: lines land in order, a
    // compaction never races an append, and minutes closed in a burst cost one write.
    this.pendingWrites = this.pendingWrites
      .then(async () => {
        const job = s.unwritten;
        s.unwritten = null;
        s.writing = false;
        if (!job) return;
        this.dirReady ??= mkdir(this.dir, { recursive: true }).then(() => undefined);
        await this.dirReady;
        if (job.rewrite !== null) await writeFileAtomic(this.file(env), job.rewrite + job.lines);
        else await appendFile(this.file(env), job.lines);
      })
      .catch(this.onError);
    return this.pendingWrites;
  }

  /** The file rebuilt from memory: hours older than the kept minutes, then the minutes of the last day. */
  private compactText(s: EnvSeries): string {
    this.prune(s, s.openMinute ?? 0);
    const firstMinuteHour = Math.floor(Math.min(...s.minutes.keys()) / 60);
    const out: string[] = [];
    for (const [hour, c] of [...s.hours].sort((a, b) => a[0] - b[0])) {
      if (hour < firstMinuteHour) out.push(`h${hour} ${c.up} ${c.total}`);
    }
    // The hour the kept minutes start in is rebuilt from those minutes alone; its older part is
    // dropped (at most one hour of 30 days of history).
    for (const [minute, c] of [...s.minutes].sort((a, b) => a[0] - b[0])) out.push(`${minute} ${c.up} ${c.total}`);
    for (const hour of [...s.hours.keys()]) if (hour >= firstMinuteHour) s.hours.delete(hour);
    for (const [minute, c] of s.minutes) add(s.hours, Math.floor(minute / 60), c.up, c.total);
    s.lines = out.length;
    return out.join('\n') + '\n';
  }

  private prune(s: EnvSeries, nowMinute: number): void {
    for (const m of s.minutes.keys()) if (m <= nowMinute - DAY_MINUTES) s.minutes.delete(m);
    const nowHour = Math.floor(nowMinute / 60);
    for (const h of s.hours.keys()) if (h <= nowHour - MONTH_HOURS) s.hours.delete(h);
  }

  private file(env: string): string {
    return path.join(this.dir, `${env}.log`);
  }

  private seriesOf(env: string): EnvSeries {
    let s = this.series.get(env);
    if (!s) {
      s = { minutes: new Map(), hours: new Map(), openMinute: null, open: { up: 0, total: 0 }, lines: 0, unwritten: null, writing: false };
      this.series.set(env, s);
    }
    return s;
  }
}
