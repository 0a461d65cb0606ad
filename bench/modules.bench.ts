// Benchmarks of the module side, no engine needed: `node --import tsx bench/modules.bench.ts`.
// M1 reads manifests against JSON.parse of the same data (the floor for any text format),
// M2 resolves a large module graph against a plain recursive depth-first sort measured in the
// same run, M3 catches mail over SMTP against the same SMTP server that only counts messages.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import nodemailer from 'nodemailer';
import { SMTPServer } from 'smtp-server';
import { parseManifest } from '../src/odoo/manifest.ts';
import { resolveModules, type AvailableModule } from '../src/odoo/resolve.ts';
import { MailCatcher } from '../src/mail/catcher.ts';
import { fmtMs, load1, now, printSection, summaryLine, type SectionResult } from './lib.ts';

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function best(runs: number, fn: () => void): number {
  let min = Infinity;
  for (let i = 0; i < runs; i++) {
    const t0 = now();
    fn();
    min = Math.min(min, now() - t0);
  }
  return min;
}

function manifestText(i: number): { py: string; json: string } {
  const depends = Array.from({ length: 1 + (i % 5) }, (_, k) => `module_${(i * 7 + k) % 500}`);
  const data = Array.from({ length: 8 + (i % 10) }, (_, k) => `views/view_${k}.xml`);
  const value = {
    name: `Module ${i}`,
    summary: 'Does one useful thing',
    version: `17.0.1.${i % 10}.0`,
    author: 'Example, Odoo Community Association (OCA)',
    website: 'https://github.com/example/addons',
    license: 'AGPL-3',
    category: 'Tools',
    depends,
    data,
    external_dependencies: { python: ['requests'] },
    installable: true,
  };
  const lines = [
    '# Copyright 2024 Example',
    '# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).',
    '{',
    `    "name": "Module ${i}",`,
    '    "summary": "Does one useful thing",',
    `    "version": "17.0.1.${i % 10}.0",`,
    '    "author": "Example, "',
    '    "Odoo Community Association (OCA)",',
    '    "website": "https://github.com/example/addons",',
    '    "license": "AGPL-3",',
    '    "category": "Tools",',
    `    "depends": [${depends.map((d) => `"${d}"`).join(', ')}],`,
    '    "data": [',
    ...data.map((d) => `        "${d}",  # a view`),
    '    ],',
    '    "external_dependencies": {"python": ["requests"]},',
    '    "installable": True,',
    '}',
  ];
  return { py: lines.join('\n') + '\n', json: JSON.stringify(value) };
}

function benchManifests(): SectionResult {
  const n = 2000;
  const texts = Array.from({ length: n }, (_, i) => manifestText(i));
  const ours = best(5, () => texts.forEach((t, i) => parseManifest(t.py, `m${i}/__manifest__.py`)));
  const floor = best(5, () => texts.forEach((t) => JSON.parse(t.json)));
  const per = ours / n;
  return {
    id: 'M1',
    title: `read ${n} manifests (≈${Math.round(texts[0]!.py.length / 100) / 10} kB each)`,
    lines: [
      ['pulser', `${fmtMs(ours)} (${(per * 1000).toFixed(1)} µs each)`],
      ['JSON.parse', fmtMs(floor)],
    ],
    baseline: `JSON.parse of the same data as JSON, ${fmtMs(floor)}`,
    ratio: ours / floor,
    targets: [{ label: 'per manifest', value: per, limit: 0.5, show: (v) => `${(v * 1000).toFixed(0)} µs` }],
    notes: ['a real addons folder holds tens to a few hundred manifests'],
  };
}

function graph(n: number): AvailableModule[] {
  const r = rng(42);
  return Array.from({ length: n }, (_, i) => {
    const depends = i === 0 ? ['base'] : Array.from({ length: 1 + Math.floor(r() * 4) }, () => `m${Math.floor(r() * i)}`);
    return { name: `m${i}`, repo: `repo${i % 30}`, depends };
  });
}

/** The textbook sort: recursive depth-first, no tie-breaking, no problem reporting. */
function naiveOrder(mods: AvailableModule[], requested: string[]): string[] {
  const by = new Map(mods.map((m) => [m.name, m]));
  const seen = new Set<string>();
  const out: string[] = [];
  const visit = (name: string) => {
    if (seen.has(name)) return;
    seen.add(name);
    for (const d of by.get(name)?.depends ?? []) visit(d);
    out.push(name);
  };
  requested.forEach(visit);
  return out;
}

function benchResolver(): SectionResult {
  const n = 5000;
  const mods = graph(n);
  const requested = mods.slice(-50).map((m) => m.name);
  let count = 0;
  const ours = best(5, () => {
    const r = resolveModules({ requested, available: mods, core: new Set(['base']) });
    if (r.problems.length) throw new Error(r.problems[0]!.message);
    count = r.order.length;
  });
  const floor = best(5, () => naiveOrder(mods, requested));
  return {
    id: 'M2',
    title: `resolve 50 modules in a graph of ${n} (${count} needed)`,
    lines: [
      ['pulser', fmtMs(ours)],
      ['recursive DFS', fmtMs(floor)],
    ],
    baseline: `a recursive depth-first sort of the same graph, ${fmtMs(floor)}`,
    ratio: ours / floor,
    targets: [{ label: 'resolve', value: ours, limit: 100, show: fmtMs }],
    notes: ['pulser also breaks ties by name, finds every problem and never recurses'],
  };
}

async function sendAll(host: string, port: number, auth: { user: string; pass: string }, n: number): Promise<number> {
  const transport = nodemailer.createTransport({ host, port, secure: false, ignoreTLS: true, auth, pool: true, maxConnections: 4, maxMessages: Infinity });
  const t0 = now();
  try {
    await Promise.all(
      Array.from({ length: n }, (_, i) =>
        transport.sendMail({ from: 'odoo@example.com', to: `c${i}@example.com`, subject: `Invoice ${i}`, text: 'Dear customer,\n'.repeat(40), html: `<p>${'Dear customer, '.repeat(40)}</p>` }),
      ),
    );
    return now() - t0;
  } finally {
    transport.close();
  }
}

async function benchCatcher(): Promise<SectionResult> {
  const n = 300;
  const dir = await mkdtemp(path.join(tmpdir(), 'pulser-bench-mail-'));
  const catcher = new MailCatcher({ dir, secret: 'bench', port: 0, retention: { maxMessages: 10_000 } });
  let counted = 0;
  const plain = new SMTPServer({
    authOptional: false,
    allowInsecureAuth: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onAuth: (_a, _s, cb) => cb(null, { user: 'bench' }),
    onData: (stream, _s, cb) => {
      stream.on('data', () => undefined);
      stream.on('end', () => {
        counted++;
        cb();
      });
    },
  });
  try {
    await catcher.listen();
    await new Promise<void>((r) => plain.listen(0, '127.0.0.1', r));
    const plainPort = (plain.server.address() as { port: number }).port;
    const auth = catcher.credentialsFor('bench');
    // Alternating runs, best of two each: the machine's load moves under a run of seconds.
    let floor = Infinity;
    let ours = Infinity;
    for (let round = 0; round < 2; round++) {
      floor = Math.min(floor, await sendAll('127.0.0.1', plainPort, auth, n));
      ours = Math.min(ours, await sendAll(catcher.address().host, catcher.address().port, auth, n));
    }
    const stored = catcher.store.list({ env: 'bench', limit: 1000 }).length;
    return {
      id: 'M3',
      title: `catch ${n} messages over SMTP (4 connections)`,
      lines: [
        ['pulser', `${fmtMs(ours)} (${Math.round((n / ours) * 1000)} msg/s), ${stored / 2} stored a run`],
        ['counting server', `${fmtMs(floor)}, ${counted / 2} counted a run`],
      ],
      baseline: `smtp-server that only counts messages, ${fmtMs(floor)}`,
      ratio: ours / floor,
      targets: [{ label: 'per message', value: ours / n, limit: 20, show: (v) => `${v.toFixed(1)} ms` }],
      notes: ['pulser parses each message, syncs its .eml and rewrites the index (atomically, rebuilt from the messages after a crash)'],
    };
  } finally {
    await catcher.close();
    await new Promise<void>((r) => plain.close(() => r()));
    await rm(dir, { recursive: true, force: true });
  }
}

console.log(`modules and mail benchmarks (load ${load1()})`);
const results = [benchManifests(), benchResolver(), await benchCatcher()];
results.forEach(printSection);
console.log(`\n${summaryLine(results)}`);
