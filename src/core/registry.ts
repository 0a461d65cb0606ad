// Orders reconcilers by `dependsOn` into levels: every reconciler of a level can observe
// concurrently, and a level only starts when the one before has finished.
import type { Reconciler } from './reconciler.ts';
import { PulserError } from '../errors.ts';

export function orderReconcilers(list: Reconciler[]): Reconciler[][] {
  const byName = new Map(list.map((r) => [r.name, r]));
  for (const r of list) {
    for (const d of r.dependsOn) {
      if (!byName.has(d)) throw new PulserError('PULSER_E_INTERNAL', `reconciler ${r.name} depends on unknown reconciler ${d}`);
    }
  }
  const levels: Reconciler[][] = [];
  const placed = new Set<string>();
  while (placed.size < list.length) {
    const level = list.filter((r) => !placed.has(r.name) && r.dependsOn.every((d) => placed.has(d)));
    if (level.length === 0) {
      const rest = list.filter((r) => !placed.has(r.name)).map((r) => r.name);
      throw new PulserError('PULSER_E_INTERNAL', `reconcilers depend on each other in a cycle: ${rest.join(', ')}`);
    }
    level.sort((a, b) => a.name.localeCompare(b.name));
    for (const r of level) placed.add(r.name);
    levels.push(level);
  }
  return levels;
}

/** Names of every reconciler that depends, directly or not, on `name`. */
export function dependentsOf(list: Reconciler[], name: string): Set<string> {
  const out = new Set<string>();
  let grew = true;
  while (grew) {
    grew = false;
    for (const r of list) {
      if (out.has(r.name)) continue;
      if (r.dependsOn.some((d) => d === name || out.has(d))) {
        out.add(r.name);
        grew = true;
      }
    }
  }
  return out;
}
