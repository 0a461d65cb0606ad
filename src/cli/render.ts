// Text renderings for people: plans like `terraform plan`, validation reports, the status table.
import type { PassRecord } from '../core/record.ts';
import type { EnvStatus } from '../core/status.ts';
import type { SpecSnapshot } from '../spec/model.ts';
import type { Change } from '../core/reconciler.ts';

const SYMBOL: Record<Change['action'], string> = { create: '+', update: '~', delete: '-', run: '>' };

function color(enabled: boolean) {
  const wrap = (code: number) => (s: string) => (enabled ? `\x1b[${code}m${s}\x1b[0m` : s);
  return { green: wrap(32), yellow: wrap(33), red: wrap(31), bold: wrap(1), dim: wrap(2) };
}

function show(v: unknown): string {
  if (v === undefined) return '(none)';
  if (typeof v === 'string') return v.endsWith(' (secret)') ? v : JSON.stringify(v);
  return JSON.stringify(v);
}

export function renderPlan(rec: PassRecord, useColor = false): string {
  const c = color(useColor);
  const lines: string[] = [];
  const head = `${c.bold(rec.env)} (${rec.file})`;
  if (rec.outcome === 'invalid') {
    lines.push(`${head}: ${c.red('spec invalid — nothing planned')}`);
  } else if (rec.plan.changes.length === 0) {
    lines.push(`${head}: ${c.green('no changes')} — the environment matches its spec.`);
  } else {
    lines.push(`${head}: pulser will perform the following actions:`, '');
    for (const ch of rec.plan.changes) {
      const sym = ch.action === 'create' ? c.green(SYMBOL.create) : ch.action === 'delete' ? c.red(SYMBOL.delete) : c.yellow(SYMBOL[ch.action]);
      const risk = ch.risk === 'safe' ? ch.risk : ch.risk === 'disruptive' ? c.yellow(ch.risk) : c.red(ch.risk);
      lines.push(`  ${sym} ${c.bold(ch.subject)}  ${c.dim('(')}${ch.action}, ${risk}${c.dim(')')}`);
      lines.push(`      ${ch.summary}`);
      for (const [k, d] of Object.entries(ch.diff)) {
        if (typeof d.after === 'string' && d.after.endsWith(' (secret)') && d.before !== undefined) lines.push(`      ${k}: changed (secret)`);
        else lines.push(`      ${k}: ${show(d.before)} → ${show(d.after)}`);
      }
      lines.push(`      ${c.dim('reason: ' + ch.reason)}`);
    }
    const n = (a: Change['action']) => rec.plan.changes.filter((x) => x.action === a).length;
    lines.push('', `Plan: ${n('create')} to create, ${n('update')} to update, ${n('delete')} to delete, ${n('run')} to run.`);
  }
  for (const e of rec.errors) {
    const where = e.location ? `${e.location.file}:${e.location.line}:${e.location.col} ` : '';
    lines.push(`  ${c.red('error')} ${e.code}: ${where}${e.message}`);
  }
  return lines.join('\n');
}

export function renderApply(rec: PassRecord, useColor = false): string {
  const c = color(useColor);
  const lines = [renderPlan(rec, useColor)];
  if (rec.apply.length > 0) {
    lines.push('', 'Applied:');
    for (const a of rec.apply) {
      const mark = a.outcome === 'applied' ? c.green('ok') : a.outcome === 'skipped' ? c.yellow('skipped') : c.red('FAILED');
      lines.push(`  ${mark} ${a.subject}: ${a.output ?? a.error?.message ?? a.summary}`);
    }
  }
  const out = rec.outcome ?? 'failed';
  const tone = out === 'applied' || out === 'in-sync' ? c.green : out === 'planned' ? c.yellow : c.red;
  lines.push('', `${rec.env}: ${tone(out)} in ${rec.durationMs ?? 0} ms (pass ${rec.passId})`);
  return lines.join('\n');
}

export function renderValidation(snap: SpecSnapshot): { text: string; ok: boolean } {
  const lines: string[] = [];
  let ok = snap.hostErrors.length === 0;
  for (const e of snap.hostErrors) lines.push(`${e.toString()}  [${e.code}]`);
  for (const load of [...snap.envs.values()].sort((a, b) => a.name.localeCompare(b.name))) {
    if (load.ok) {
      lines.push(`ok       ${load.file} (${load.desired.tier} on ${load.desired.hostName})`);
    } else {
      ok = false;
      lines.push(`invalid  ${load.file}`);
      for (const e of load.errors) lines.push(`  ${e.toString()}  [${e.code}]`);
    }
  }
  if (snap.envs.size === 0) lines.push('no environments found in environments/');
  for (const n of snap.notices ?? []) lines.push(`notice   ${n.toString()}  [${n.code}]`);
  return { text: lines.join('\n'), ok };
}

function pad(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
}

export function ago(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return '-';
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.round(s / 60)}m ago`;
  if (s < 86400) return `${Math.round(s / 3600)}h ago`;
  return `${Math.round(s / 86400)}d ago`;
}

export function renderStatus(envs: EnvStatus[]): string {
  const rows = [['ENV', 'TIER', 'HOST', 'SPEC', 'SYNC', 'DRIFT', 'IMAGE', 'LAST PASS', 'OUTCOME', 'ERROR']];
  for (const s of envs) {
    const running = (s.facts.containers as { running?: { image?: string } | null } | undefined)?.running;
    rows.push([
      s.env,
      s.tier ?? '-',
      s.host ?? '-',
      s.specValid ? 'valid' : s.usingLastGood ? 'INVALID (last good)' : 'INVALID',
      s.inSync ? 'in sync' : s.stalled ? 'stalled' : 'drift',
      String(s.drift),
      running?.image ?? '-',
      ago(s.lastPass.endedAt ?? s.lastPass.startedAt),
      s.lastPass.outcome,
      s.lastError ? `${s.lastError.code}` : '',
    ]);
  }
  return pad(rows);
}
