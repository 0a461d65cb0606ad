// Which mail modes a tier may use: only production delivers, and production stops delivering only
// when the spec says so explicitly. Checked when a spec is loaded, so a bad mode is never applied.

export function mailPolicyProblem(tier: unknown, mail: unknown): string | null {
  if (!mail || typeof mail !== 'object') return null;
  const { mode, override } = mail as { mode?: unknown; override?: unknown };
  if (tier !== 'production' && mode === 'deliver') {
    return `mail.mode: a ${String(tier)} environment may not deliver mail to real recipients (use catch or block)`;
  }
  if (tier === 'production' && (mode === 'catch' || mode === 'block') && override !== true) {
    return `mail.mode: ${mode} on production stops real mail; set mail.override: true to confirm`;
  }
  return null;
}
