import { describe, expect, it } from 'vitest';
import {
  NODE_ENV_STASH,
  NODE_VARIABLES,
  neutralisedIn,
  parseStash,
  reexecPlan,
} from '../../src/run/node-env.js';

describe('neutralisedIn', () => {
  it('names the neutralised variables that are set; NODE_OPTIONS only outside the single executable', () => {
    const env = {
      NODE_DEBUG: 'http',
      NODE_OPTIONS: '--x',
      TZ: 'UTC',
      NODE_NO_WARNINGS: '1',
      HTTP_PROXY: 'p',
    };
    expect(neutralisedIn(env, false)).toEqual(['NODE_DEBUG', 'NODE_OPTIONS']);
    expect(neutralisedIn(env, true)).toEqual(['NODE_DEBUG']);
    expect(neutralisedIn({ TZ: 'UTC' }, false)).toEqual([]);
  });

  it('has one decision per variable', () => {
    const names = NODE_VARIABLES.map((v) => v.name);
    expect(new Set(names).size).toBe(names.length);
  });
});

describe('reexecPlan', () => {
  const env = { NODE_DEBUG: 'http', VAULT_TOKEN: 't', PATH: '/bin' };

  it('node vaultrun.cjs: keeps Node options and the script; the values go to the stash', () => {
    const plan = reexecPlan(env, ['NODE_DEBUG'], {
      argv0: 'node',
      argv: ['/usr/bin/node', '/app/vaultrun.cjs', '--supervise', '--', 'app'],
      execArgv: ['--no-warnings'],
      sea: false,
    });
    expect(plan.argv).toEqual(['node', '--no-warnings', '/app/vaultrun.cjs', '--supervise', '--', 'app']);
    expect(plan.env).toEqual({ VAULT_TOKEN: 't', PATH: '/bin', [NODE_ENV_STASH]: '{"NODE_DEBUG":"http"}' });
  });

  it('single executable: argv is [exe, exe, ...args], re-executed as [argv0, ...args]', () => {
    const plan = reexecPlan(env, ['NODE_DEBUG'], {
      argv0: 'vaultrun',
      argv: ['/usr/local/bin/vaultrun', '/usr/local/bin/vaultrun', '--', 'app'],
      execArgv: [],
      sea: true,
    });
    expect(plan.argv).toEqual(['vaultrun', '--', 'app']);
  });
});

describe('parseStash', () => {
  it('gives back only neutralised Node variables with string values', () => {
    expect(parseStash('{"NODE_DEBUG":"http","VAULT_TOKEN":"x","NODE_OPTIONS":1,"TZ":"UTC"}')).toEqual({
      NODE_DEBUG: 'http',
    });
    expect(parseStash('not json')).toEqual({});
    expect(parseStash(undefined)).toEqual({});
  });
});
