// The contract every folder under reconcilers/ implements: observe reads the world, plan is pure,
// apply performs one change. Changes are plain data so they can be printed, stored and tested.
import type { DesiredEnv } from '../spec/model.ts';
import type { ErrorRecord } from '../errors.ts';
import type { Drivers } from '../drivers/index.ts';
import type { Logger } from './log.ts';
import type { Metrics } from '../metrics.ts';
import type { MailCatcherRoute } from '../odoo/catcher-route.ts';

export type ChangeAction = 'create' | 'update' | 'delete' | 'run';
export type ChangeRisk = 'safe' | 'disruptive' | 'destructive';

export interface FieldDiff {
  before?: unknown;
  after?: unknown;
}

export interface Change {
  /** `staging/containers/odoo` */
  subject: string;
  reconciler: string;
  action: ChangeAction;
  risk: ChangeRisk;
  /** `image 17.0.1 → 17.0.2` */
  summary: string;
  /** before/after per field, secrets already masked */
  diff: Record<string, FieldDiff>;
  /** why this change is needed */
  reason: string;
  /** what apply will do, as data (no secrets: apply re-derives sensitive values from the desired spec) */
  op: Record<string, unknown>;
  /** when this change fails, every later change of the pass is skipped (a pre-change backup) */
  gate?: boolean;
}

/** Something the planner found wrong that no change can fix (an unlabelled container in the way…). */
export interface Finding {
  subject: string;
  error: ErrorRecord;
}

export interface Plan {
  changes: Change[];
  findings: Finding[];
}

export interface ApplyResult {
  outcome: 'applied' | 'failed';
  /** short human text, e.g. the probe that passed */
  output?: string;
  error?: ErrorRecord;
  /** structured, secret-free facts for evidence (container id, image id, probe log…) */
  detail?: Record<string, unknown>;
}

export interface ReconcileContext {
  desired: DesiredEnv;
  drivers: Drivers;
  log: Logger;
  /** progress of long steps: shown live on a TTY, as plain lines otherwise */
  progress: (message: string) => void;
  signal: AbortSignal;
  /** for reconcilers that export what they observe (host facts) */
  metrics?: Metrics;
  /** pulser's mail catcher, when this pulser runs one */
  mailCatcher: MailCatcherRoute | null;
  /** commit of the spec repository the pass applies */
  commit?: string;
  /** another environment's desired state, null when unknown or invalid */
  peer?: (env: string) => DesiredEnv | null;
  /** pulser's own state folder */
  stateDir?: string;
}

export interface Reconciler<Observed = unknown> {
  name: string;
  dependsOn: string[];
  observe(ctx: ReconcileContext): Promise<Observed>;
  plan(desired: DesiredEnv, observed: Observed, now: Date): Plan;
  apply(ctx: ReconcileContext, change: Change): Promise<ApplyResult>;
  /** Pure: may put changes of its own in front of the whole plan (a backup before a risky change), given what it observed. */
  prepare?(desired: DesiredEnv, changes: Change[], now: Date, observed: Observed): Change[];
  /** Facts worth showing in status (the running image…), read from what observe returned. */
  summarize?(observed: Observed): Record<string, unknown>;
}
