// Per-environment monitoring series written straight in the Prometheus text format. With 200
// environments they are some 6000 series, and prom-client's generic export (label objects
// rebuilt per bucket and per scrape) tripled the time of a scrape (bench M1); these keep each
// series' label text ready and write a scrape with one pass over plain maps.

type Labels<L extends string> = Record<L, string>;

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function formatValue(v: number): string {
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  if (Number.isNaN(v)) return 'NaN';
  return String(v);
}

abstract class Family<L extends string> {
  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly L[],
  ) {}

  protected key(labels: Labels<L>): string {
    return this.labelNames.map((n) => `${n}="${escapeLabel(labels[n])}"`).join(',');
  }

  protected header(type: string): string {
    return `# HELP ${this.name} ${this.help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}\n# TYPE ${this.name} ${type}\n`;
  }

  abstract text(): string;
}

export class TextGauge<L extends string> extends Family<L> {
  private readonly values = new Map<string, number>();

  set(labels: Labels<L>, value: number): void {
    this.values.set(this.key(labels), value);
  }

  remove(labels: Labels<L>): void {
    this.values.delete(this.key(labels));
  }

  text(): string {
    let out = this.header('gauge');
    for (const [k, v] of this.values) out += `${this.name}{${k}} ${formatValue(v)}\n`;
    return out;
  }
}

interface HistogramSeries {
  /** per bucket, not cumulative; the last one is +Inf */
  counts: number[];
  sum: number;
  count: number;
}

export class TextHistogram<L extends string> extends Family<L> {
  private readonly series = new Map<string, HistogramSeries>();
  private readonly les: string[];

  constructor(
    name: string,
    help: string,
    labelNames: readonly L[],
    readonly buckets: readonly number[],
  ) {
    super(name, help, labelNames);
    this.les = [...buckets.map(formatValue), '+Inf'];
  }

  observe(labels: Labels<L>, value: number): void {
    const k = this.key(labels);
    let s = this.series.get(k);
    if (!s) {
      s = { counts: new Array<number>(this.buckets.length + 1).fill(0), sum: 0, count: 0 };
      this.series.set(k, s);
    }
    let i = this.buckets.findIndex((b) => value <= b);
    if (i < 0) i = this.buckets.length;
    s.counts[i]!++;
    s.sum += value;
    s.count++;
  }

  remove(labels: Labels<L>): void {
    this.series.delete(this.key(labels));
  }

  text(): string {
    let out = this.header('histogram');
    for (const [k, s] of this.series) {
      let cumulative = 0;
      for (let i = 0; i < this.les.length; i++) {
        cumulative += s.counts[i]!;
        out += `${this.name}_bucket{${k},le="${this.les[i]}"} ${cumulative}\n`;
      }
      out += `${this.name}_sum{${k}} ${formatValue(s.sum)}\n${this.name}_count{${k}} ${s.count}\n`;
    }
    return out;
  }
}
