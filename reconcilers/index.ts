// Every reconciler pulser runs, in one list; the engine orders them by dependsOn.
import type { Reconciler } from '../src/core/reconciler.ts';
import { containers } from './containers/index.ts';
import { hosts } from './hosts/index.ts';

export const reconcilers: Reconciler[] = [hosts as Reconciler, containers as Reconciler];
