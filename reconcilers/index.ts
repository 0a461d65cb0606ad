// Every reconciler pulser runs, in one list; the engine orders them by dependsOn.
import type { Reconciler } from '../src/core/reconciler.ts';
import { containers } from './containers/index.ts';
import { hosts } from './hosts/index.ts';
import { addons } from './addons/index.ts';
import { mail } from './mail/index.ts';

import { backups } from './backups/index.ts';
import { staging } from './staging/index.ts';

export const reconcilers: Reconciler[] = [
  hosts as Reconciler,
  containers as Reconciler,
  addons as Reconciler,
  mail as Reconciler,
  backups as Reconciler,
  staging as Reconciler,
];
