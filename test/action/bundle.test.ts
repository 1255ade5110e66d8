// The action runs from the committed action/index.cjs (GitHub runs the repository's files as they are): it
// must be exactly what `npm run build:action` makes from the current sources, and action.yml must declare
// exactly the inputs the code reads.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ACTION_INPUTS } from '../../src/action/inputs.js';
import { ACTION_ENTRY, actionYaml } from '../support/github.js';
import { REPO_ROOT } from '../support/openbao.js';

describe('the committed action', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vaultrun-action-build-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('action/index.cjs is byte for byte a fresh build (run `npm run build:action` and commit it)', () => {
    const fresh = join(dir, 'index.cjs');
    execFileSync(process.execPath, ['scripts/build-action.mjs', '--outfile', fresh], { cwd: REPO_ROOT });
    const committed = readFileSync(ACTION_ENTRY);
    expect(
      committed.equals(readFileSync(fresh)),
      'action/index.cjs is stale: run `npm run build:action`',
    ).toBe(true);
  });

  it('action.yml runs it on node24 and declares exactly the inputs of src/action/inputs.ts', () => {
    const yml = actionYaml();
    expect(yml.runs).toEqual({ using: 'node24', main: 'action/index.cjs' });
    expect(Object.keys(yml.inputs)).toEqual(ACTION_INPUTS.map((i) => i.name));
    for (const input of ACTION_INPUTS) {
      expect(yml.inputs[input.name]?.default, input.name).toBe(input.default);
      expect(yml.inputs[input.name]?.required ?? false, input.name).toBe(input.required ?? false);
    }
  });

  it('the bundle does not use what Node 24 lacks (process.execve is only for exec mode)', () => {
    const text = readFileSync(ACTION_ENTRY, 'utf8');
    expect(text).not.toMatch(/\bexecve\b/);
    expect(text).not.toContain("from 'node:sqlite'");
  });
});
