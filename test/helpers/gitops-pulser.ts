// A pulser tracking a test git remote, its GitHub App aimed at the GitHub stand-in: the set-up of
// every test that goes through webhooks, pull-request plans or deployments.
import path from 'node:path';
import { createPulser, type Pulser } from '../../src/app.ts';
import type { GitHubStandIn } from './github-standin.ts';
import type { GitRemote } from './gitrepo.ts';

export function gitopsPulser(o: { remote: GitRemote; gh: GitHubStandIn; state: string; logs: string[]; publicUrl?: string }): Pulser {
  return createPulser({
    root: path.join(o.state, 'repo'),
    processMetrics: false,
    logJson: true,
    logWrite: (l) => o.logs.push(l),
    git: {
      url: o.remote.bare,
      branch: 'main',
      pollIntervalMs: 3_600_000,
      ...(o.publicUrl ? { publicUrl: o.publicUrl } : {}),
      github: { appId: o.gh.appId, installationId: o.gh.installationId, repository: `${o.gh.owner}/${o.gh.repo}`, baseUrl: o.gh.url },
    },
  });
}
