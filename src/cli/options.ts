// The options and help texts of commands whose code loads on demand: parsing the command line and
// `pulser help` need them before any command module (and the packages it imports) is loaded.

const env = process.env;

export const GITOPS_CLI_OPTIONS = {
  git: { type: 'string', default: env.PULSER_GIT_URL },
  branch: { type: 'string', default: env.PULSER_GIT_BRANCH ?? 'main' },
  'git-poll': { type: 'string', default: env.PULSER_GIT_POLL ?? '60s' },
  'state-dir': { type: 'string', default: env.PULSER_STATE_DIR },
  'public-url': { type: 'string', default: env.PULSER_PUBLIC_URL },
  'github-repository': { type: 'string', default: env.PULSER_GITHUB_REPOSITORY },
  'github-app-id': { type: 'string', default: env.PULSER_GITHUB_APP_ID },
  'github-installation-id': { type: 'string', default: env.PULSER_GITHUB_INSTALLATION_ID },
  'github-api-url': { type: 'string', default: env.PULSER_GITHUB_API_URL },
  commit: { type: 'boolean', default: false },
  message: { type: 'string' },
} as const;

export const GITOPS_USAGE = `  kv get KEY               print the value of ops/kv/KEY.txt
  kv set KEY VALUE         write ops/kv/KEY.txt atomically (--commit [--message M]: commit it like a dispatch)

GitOps options (reconcile --watch, kv set --commit):
  --git URL                follow a branch of this repository in a clone of pulser's own ($PULSER_GIT_URL)
  --branch B               the tracked branch (default: main)
  --git-poll DURATION      fetch interval besides webhooks (default: 60s)
  --state-dir DIR          clone, evidence and state with --git (default: DIR/.pulser)
  --public-url URL         pulser's public URL, for deployment log links
  --github-repository O/R  GitHub App: repository, with --github-app-id and --github-installation-id
  --github-api-url URL     GitHub API root (default: https://api.github.com)
`;

export const BACKUP_USAGE = `  backup <env>             take a backup of the environment now (its \`backup\` policy's destination)
  backups [env]            list backups: age, size, whether a restore drill verified them (--json)
  restore <id> --to <env>  restore a backup into an environment by swapping databases
                           (--force-production to restore over a production environment)
`;
