// Issue 8, property 4: vaultrun, as root, never does a path-based operation on anything a less privileged user
// can swap. The attack: `--user nobody --runtime-dir P/rt` where nobody owns P (a directory of the --user
// target). A racing process, as nobody, waits for vaultrun to create P/rt, then after a random delay moves it
// away and puts a symlink to a victim directory in its place — many times, so that the swap falls between a
// check and a use in many runs. Whatever the timing: no secret file ever lands in a victim, no victim is
// chown-ed or chmod-ed, and every secret file is in a directory vaultrun made for it (nobody's, 0700, inside a
// root-owned 0711 directory); a run either succeeds or fails with exit 74.
import type { ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, lstatSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { baseEnv, spawnVaultrun, VAULTRUN_BIN } from '../support/cli.js';
import { asNobody, NOBODY, nobodysDir, openDir, reachable } from '../support/nobody.js';
import { type OpenBao, REPO_ROOT, startOpenBao } from '../support/openbao.js';
import { expectNoLeaks, Sensitive, unique } from '../support/resolution.js';

const RUNS = 40;
const VARIABLES = 8;
const SWAPPER = join(REPO_ROOT, 'test/fixtures/dir-swapper.mjs');

interface Identity {
  uid: number;
  gid: number;
  mode: number;
  entries: string[];
}

const identity = (dir: string): Identity => {
  const st = lstatSync(dir);
  return { uid: st.uid, gid: st.gid, mode: st.mode & 0o7777, entries: readdirSync(dir) };
};

/** Every regular file under dir (symlinks not followed). */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return filesUnder(path);
    return e.isFile() ? [path] : [];
  });
}

describe('the runtime directory under a racing attacker who owns its parent', () => {
  let bao: OpenBao;
  const sensitive = new Sensitive();
  const secret = sensitive.add('secret', unique('race-secret'));
  let work: string;
  /** nobody's: the attacker can rename anything in it. */
  let parent: string;
  /** root's, 0755: a chown or a file here is a privilege escalation. */
  let victim: string;
  /** the attacker's own, group root, 0777: a chown/chmod by vaultrun would show. */
  let attackers: string;
  let swapper: ChildProcess | undefined;
  let swaps = 0;

  beforeAll(async () => {
    if (process.getuid?.() !== 0) throw new Error('this test needs root: vaultrun runs as root with --user');
    bao = await startOpenBao();
    sensitive.add('root token', bao.rootToken);
    await bao.kvPut('race/app', { key: secret });
    work = openDir('vaultrun-race-');
    parent = nobodysDir(work, 'parent');
    chmodSync(parent, 0o755);
    victim = join(work, 'victim');
    mkdirSync(victim, { mode: 0o755 });
    chmodSync(victim, 0o755);
    attackers = nobodysDir(work, 'attackers');
    chownSync(attackers, NOBODY.uid, 0);
    chmodSync(attackers, 0o777);
    const node = reachable(process.execPath, true);
    const script = reachable(SWAPPER, false);
    const { child } = spawnVaultrun([], {
      bin: [...asNobody(), node, script, parent, 'rt', '8', victim, attackers],
      timeoutMs: 600_000,
    });
    swapper = child;
    await new Promise<void>((resolve) => {
      child.stdout?.on('data', (d: Buffer) => {
        const text = d.toString('utf8');
        swaps += text.split('\n').filter((l) => l.startsWith('swap ')).length;
        if (text.includes('ready')) resolve();
      });
    });
  });

  afterAll(async () => {
    if (swapper?.pid !== undefined) process.kill(-swapper.pid, 'SIGKILL');
    await bao?.stop();
  });

  async function untilGone(path: string): Promise<void> {
    for (let i = 0; i < 400; i++) {
      try {
        lstatSync(path);
      } catch {
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    throw new Error(`${path} is still there`);
  }

  it(`${RUNS} starts, each raced: nothing outside vaultrun's own directories, no victim touched`, async () => {
    const before = { victim: identity(victim), attackers: identity(attackers) };
    const vars: Record<string, string> = {};
    for (let i = 0; i < VARIABLES; i++) vars[`S${i}_FILE`] = 'vault:secret/race/app#key';
    const exits: Array<number | null> = [];
    for (let run = 0; run < RUNS; run++) {
      await untilGone(join(parent, 'rt'));
      const { result } = spawnVaultrun(
        ['--user', 'nobody', '--runtime-dir', join(parent, 'rt'), '--', '/bin/true'],
        {
          bin: VAULTRUN_BIN,
          env: baseEnv({ VAULT_ADDR: bao.addr, VAULT_TOKEN: bao.rootToken, ...vars }),
        },
      );
      const res = await result;
      expectNoLeaks(`${res.stdout}${res.stderr}`, sensitive);
      exits.push(res.exitCode);
      if (res.exitCode !== 0) {
        expect(res.exitCode, res.stderr).toBe(74);
        expect(res.stderr).toContain(join(parent, 'rt'));
      }
    }
    // The race happened: the attacker swapped the directory in most runs.
    expect(swaps, `swaps: ${swaps}`).toBeGreaterThan(RUNS / 2);
    // Nothing happened to the victims: no chown, no chmod, no file.
    expect({ victim: identity(victim), attackers: identity(attackers) }).toEqual(before);
    // Every file with the secret is in a directory vaultrun made for it: nobody's, 0700, in a root-owned 0711
    // directory (wherever the attacker moved it).
    const secretFiles = filesUnder(work).filter((f) => readFileSync(f, 'utf8') === secret);
    for (const file of secretFiles) {
      const own = lstatSync(dirname(file));
      const base = lstatSync(dirname(dirname(file)));
      expect(
        { own: [own.uid, own.mode & 0o7777], base: [base.uid, base.mode & 0o7777] },
        `${file} (exits: ${exits.join(',')})`,
      ).toEqual({ own: [NOBODY.uid, 0o700], base: [0, 0o711] });
    }
    // And the runs that succeeded wrote all their files.
    const successes = exits.filter((c) => c === 0).length;
    expect(secretFiles.length).toBeGreaterThanOrEqual(successes * VARIABLES);
  }, 600_000);
});
