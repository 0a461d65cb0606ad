// The content of an evidence pack, rendered from a PassRecord without touching the disk, so the
// format can be tested on its own and the store only deals with durability.
import { pickFields, type PassRecord, type PassOutcome, type ApplyEntry } from '../core/record.ts';
import type { ErrorRecord } from '../errors.ts';
import { redact, redactText, MIN_SECRET_LENGTH } from '../core/redact.ts';

export const PACK_FILES = ['desired.yaml', 'observed.json', 'plan.json', 'apply.jsonl', 'result.json', 'summary.md'] as const;
export type PackFile = (typeof PACK_FILES)[number];

/** `20261123-223015-k3x9`: UTC time of the pass, then 4 random base36 characters. */
export const PASS_ID_PATTERN = /^\d{8}-\d{6}-[a-z0-9]{4}$/;
/** Environment names as the schema allows them, with room for orphans named by container labels. */
export const ENV_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;

/** Output excerpts are for people reading a pack, not a log archive. */
export const OUTPUT_LIMIT = 4096;

/** Fields result.json copies from the record as they are. */
const RESULT_FIELDS = [
  'passId', 'env', 'file', 'trigger', 'commit', 'startedAt', 'mode', 'specHash', 'usingLastGood', 'driftBefore', 'driftAfter', 'driftByReconciler',
] as const;

export type ResultJson = { version: 1 } & Pick<PassRecord, (typeof RESULT_FIELDS)[number]> & {
  endedAt: string;
  durationMs: number;
  /** null only when the caller wrote a pack before deciding the outcome */
  outcome: PassOutcome | null;
  errors: Array<Pick<ErrorRecord, 'code' | 'class' | 'reason' | 'message' | 'location'>>;
  changes: { planned: number; applied: number; failed: number; skipped: number; inProgress: number };
  findings: number;
  resumes: NonNullable<PassRecord['resumes']> | null;
  leaseTakenOver: NonNullable<PassRecord['leaseTakenOver']> | null;
};

export type PackContent = Record<PackFile, string>;

/**
 * Secrets list for masking rendered text, longest first: masking a short secret first could cut
 * a longer one that contains it and leave the rest of the longer one readable. Escaped forms are
 * included because a value serialised into JSON or a Markdown table no longer matches verbatim.
 */
export function maskList(secrets: Iterable<string>): string[] {
  const out = new Set<string>();
  for (const s of secrets) {
    if (s.length < MIN_SECRET_LENGTH) continue;
    out.add(s);
    out.add(JSON.stringify(s).slice(1, -1));
    out.add(escapeCell(s));
  }
  return [...out].filter((s) => s.length >= MIN_SECRET_LENGTH).sort((a, b) => b.length - a.length);
}

/** Keeps the head and the tail (where errors usually are) within `limit` UTF-8 bytes. */
export function excerpt(text: string, limit = OUTPUT_LIMIT): string {
  const buf = Buffer.from(text, 'utf8');
  if (buf.length <= limit) return text;
  const marker = (n: number) => `\n… [${n} bytes cut] …\n`;
  const budget = Math.max(0, limit - Buffer.byteLength(marker(buf.length)));
  let head = Math.floor(budget / 2);
  let start = buf.length - (budget - head);
  // Never cut inside a multi-byte character: a replacement character would grow the excerpt.
  while (head > 0 && (buf[head]! & 0xc0) === 0x80) head--;
  while (start < buf.length && (buf[start]! & 0xc0) === 0x80) start++;
  return buf.subarray(0, head).toString('utf8') + marker(start - head) + buf.subarray(start).toString('utf8');
}

export function countChanges(record: PassRecord): ResultJson['changes'] {
  const c = { planned: record.plan.changes.length, applied: 0, failed: 0, skipped: 0, inProgress: 0 };
  for (const e of record.apply) {
    if (e.outcome === 'applied') c.applied++;
    else if (e.outcome === 'failed') c.failed++;
    else if (e.outcome === 'skipped') c.skipped++;
    else c.inProgress++;
  }
  return c;
}

function endOf(record: PassRecord, now: Date): { endedAt: string; durationMs: number } {
  const endedAt = record.endedAt ?? now.toISOString();
  const measured = Date.parse(endedAt) - Date.parse(record.startedAt);
  const durationMs = record.durationMs ?? (Number.isFinite(measured) ? Math.max(0, measured) : 0);
  return { endedAt, durationMs };
}

export function resultOf(record: PassRecord, now: Date): ResultJson {
  const { endedAt, durationMs } = endOf(record, now);
  return {
    version: 1,
    ...pickFields(record, RESULT_FIELDS),
    endedAt,
    durationMs,
    outcome: record.outcome ?? null,
    errors: record.errors.map((e) => ({
      code: e.code,
      class: e.class,
      reason: e.reason,
      message: e.message,
      ...(e.location ? { location: e.location } : {}),
    })),
    changes: countChanges(record),
    findings: record.plan.findings.length,
    resumes: record.resumes ?? null,
    leaseTakenOver: record.leaseTakenOver ?? null,
  };
}

/** One line per change, fields in a fixed order so lines read well side by side. */
export function applyLine(e: ApplyEntry): string {
  return JSON.stringify({
    index: e.index,
    subject: e.subject,
    action: e.action,
    summary: e.summary,
    startedAt: e.startedAt,
    endedAt: e.endedAt,
    outcome: e.outcome,
    output: e.output === undefined ? undefined : excerpt(e.output),
    error: e.error,
    detail: e.detail,
  });
}

function escapeCell(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  const rest = Math.round(s - m * 60);
  return rest ? `${m} min ${rest} s` : `${m} min`;
}

function resultText(entry: ApplyEntry | undefined, record: PassRecord): string {
  if (!entry) {
    if (record.mode === 'plan' || record.outcome === 'planned') return 'planned';
    return 'not attempted';
  }
  if (entry.outcome === undefined) return 'in progress when interrupted';
  if (entry.outcome === 'failed' && entry.error) return `failed (\`${entry.error.code}\`)`;
  if (entry.outcome === 'skipped' && entry.error) return `skipped (\`${entry.error.code}\`)`;
  return entry.outcome;
}

export function summaryOf(record: PassRecord, result: ResultJson): string {
  const lines: string[] = [];
  lines.push(`# ${record.env}: ${result.outcome ?? 'no outcome'}`, '');
  lines.push(`- Pass: \`${record.passId}\` (${record.mode}, triggered by ${record.trigger})`);
  lines.push(`- Spec: \`${record.file}\` at commit \`${record.commit}\``);
  if (record.usingLastGood) lines.push('- The spec on disk is invalid: the last good desired state was used.');
  lines.push(`- Started ${result.startedAt}, took ${formatDuration(result.durationMs)}`);
  const per = Object.entries(result.driftByReconciler).filter(([, n]) => n > 0).map(([r, n]) => `${r} ${n}`);
  lines.push(`- Drift: ${result.driftBefore} → ${result.driftAfter ?? 'not observed'}` + (per.length ? ` (${per.join(', ')})` : ''));
  const c = result.changes;
  lines.push(`- Changes: ${c.planned} planned, ${c.applied} applied, ${c.failed} failed, ${c.skipped} skipped` + (c.inProgress ? `, ${c.inProgress} in progress when interrupted` : ''));
  if (record.resumes) {
    const r = record.resumes;
    lines.push(`- Follows pass \`${r.passId}\` (started ${r.startedAt}), cut short after ${r.applied} of ${r.planned} changes`);
  }
  if (record.leaseTakenOver) {
    const h = record.leaseTakenOver;
    lines.push(`- Took over the lease of pid ${h.pid} on ${h.host} (${h.command}, since ${h.since}), which had died`);
  }
  lines.push('');

  lines.push('## Changes', '');
  const byIndex = new Map(record.apply.map((e) => [e.index, e]));
  if (record.plan.changes.length === 0 && record.apply.length === 0) {
    lines.push('None.', '');
  } else {
    lines.push('| # | Subject | Action | Risk | Change | Result |', '|---|---|---|---|---|---|');
    record.plan.changes.forEach((ch, i) => {
      lines.push(`| ${i + 1} | ${escapeCell(ch.subject)} | ${ch.action} | ${ch.risk} | ${escapeCell(ch.summary)} | ${resultText(byIndex.get(i), record)} |`);
    });
    // Entries the plan does not list still happened: show them rather than hide them.
    for (const e of record.apply) {
      if (e.index >= 0 && e.index < record.plan.changes.length) continue;
      lines.push(`| ${e.index + 1} | ${escapeCell(e.subject)} | ${e.action} | ? | ${escapeCell(e.summary)} | ${resultText(e, record)} |`);
    }
    lines.push('');
  }

  if (record.plan.findings.length) {
    lines.push('## Findings', '');
    for (const f of record.plan.findings) lines.push(`- ${f.subject}: \`${f.error.code}\` ${oneLine(f.error.message)}`);
    lines.push('');
  }

  lines.push('## Errors', '');
  if (record.errors.length === 0) lines.push('None.');
  for (const e of record.errors) {
    const where = e.location ? ` (${e.location.file}:${e.location.line}:${e.location.col})` : '';
    lines.push(`- \`${e.code}\` ${e.reason}${where}: ${oneLine(e.message)}`);
  }
  lines.push('');
  return lines.join('\n');
}

function oneLine(s: string): string {
  return s.replace(/\s*\r?\n\s*/g, ' ');
}

function json(value: unknown): string {
  // Observed state may carry numbers from drivers as bigint; they must not abort the pack.
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), 2) + '\n';
}

/** Every file of the pack, masked twice: once as data, once as the final text. */
export function renderPack(record: PassRecord, secrets: Iterable<string>, now: Date): { files: PackContent; result: ResultJson } {
  const list = maskList(secrets);
  const masked = redact(record, list);
  const result = resultOf(masked, now);
  let desired: string;
  if (masked.desiredYaml === null) {
    desired = '# The spec was invalid and no last good desired state exists: nothing was desired.\n';
  } else {
    const header = masked.usingLastGood ? '# Last good desired state: the spec on disk is invalid.\n' : '';
    desired = header + masked.desiredYaml + (masked.desiredYaml.endsWith('\n') ? '' : '\n');
  }
  const files: PackContent = {
    'desired.yaml': desired,
    'observed.json': json(masked.observed),
    'plan.json': json({ changes: masked.plan.changes, findings: masked.plan.findings }),
    'apply.jsonl': masked.apply.map((e) => applyLine(e) + '\n').join(''),
    'result.json': json(result),
    'summary.md': summaryOf(masked, result),
  };
  for (const name of PACK_FILES) files[name] = redactText(files[name], list);
  return { files, result };
}
