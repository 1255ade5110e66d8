// Where the secret files of NAME_FILE=vault:… go when no directory is set (docs/files.md):
// /run/vaultrun, else $XDG_RUNTIME_DIR/vaultrun, /dev/shm/vaultrun-UID, then $TMPDIR/vaultrun-UID; an explicitly
// set directory has no fallback (exit 74). Run for real as an unprivileged user (nobody, through util-linux
// `setpriv`), for whom /run/vaultrun cannot be created, against a real OpenBao. A fallback planted by someone
// else is left alone: a fresh directory next to it is used (never the next, disk-backed candidate).
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { baseEnv, spawnVaultrun, VAULTRUN_BIN } from '../support/cli.js';
import { asNobody, NOBODY, nobodyCan, nobodysDir, openDir, reachable } from '../support/nobody.js';
import { type OpenBao, startOpenBao } from '../support/openbao.js';
import { PROBE, type ProbeReport } from '../support/processes.js';
import { expectNoLeaks, Sensitive, unique } from '../support/resolution.js';

/** The fallback in /dev/shm for nobody's uid. */
const SHM_DIR = `/dev/shm/vaultrun-${NOBODY.uid}`;

interface Stat {
  uid: number;
  gid: number;
  mode: number;
  type: 'dir' | 'file' | 'symlink' | 'other';
}

function stat(path: string): Stat {
  const st = lstatSync(path);
  const type = st.isSymbolicLink() ? 'symlink' : st.isDirectory() ? 'dir' : st.isFile() ? 'file' : 'other';
  return { uid: st.uid, gid: st.gid, mode: st.mode & 0o7777, type };
}

describe('the secret-file directory, as an unprivileged user', () => {
  let bao: OpenBao;
  const sensitive = new Sensitive();
  const secret = sensitive.add('secret', unique('runtime-dir-secret'));
  /** [vaultrun…] and the node binary, as nobody can run them. */
  let vaultrun: string[];
  let node: string;
  let probe: string;

  beforeAll(async () => {
    if (process.getuid?.() !== 0)
      throw new Error('these tests need root: they run vaultrun as nobody (setpriv)');
    bao = await startOpenBao();
    sensitive.add('root token', bao.rootToken);
    await bao.kvPut('rt/app', { key: secret });
    node = reachable(process.execPath, true);
    probe = reachable(PROBE, false);
    vaultrun = [
      ...asNobody(),
      ...VAULTRUN_BIN.map((file, i) => (file === '--' ? file : reachable(file, i === 0))),
    ];
  });

  afterAll(async () => {
    await bao?.stop();
  });

  // SHM_DIR, made by a run or planted by a test, and fresh SHM_DIR-XXXXXX ones: removed before and after each test.
  const freshShmDirs = () =>
    readdirSync('/dev/shm')
      .filter((n) => n.startsWith(`${basename(SHM_DIR)}-`))
      .map((n) => join('/dev/shm', n));
  const removeShm = () => {
    for (const dir of [SHM_DIR, ...freshShmDirs()]) rmSync(dir, { recursive: true, force: true });
  };
  beforeEach(removeShm);
  afterEach(removeShm);

  interface Dirs {
    /** Searchable by nobody: the parent of the others. */
    work: string;
    home: string;
    xdg: string;
    tmp: string;
    /** Nobody writes the probe's report here. */
    out: string;
  }

  function dirs(): Dirs {
    const work = openDir('vaultrun-rtdir-');
    return {
      work,
      home: nobodysDir(work, 'home'),
      xdg: nobodysDir(work, 'xdg'),
      tmp: nobodysDir(work, 'tmp'),
      out: nobodysDir(work, 'out'),
    };
  }

  interface NobodyRun {
    exitCode: number | null;
    stderr: string;
    output: string;
    probe: ProbeReport | undefined;
  }

  /** `X_FILE=vault:secret/rt/app#key vaultrun [args] -- node probe.mjs`, as nobody, exec mode, debug log. */
  async function runAsNobody(d: Dirs, env: Record<string, string>, args: string[] = []): Promise<NobodyRun> {
    const report = join(d.out, 'report.json');
    const { result } = spawnVaultrun([...args, '--', node, probe], {
      bin: vaultrun,
      cwd: d.work,
      env: baseEnv({
        HOME: d.home,
        VAULT_ADDR: bao.addr,
        VAULT_TOKEN: bao.rootToken,
        VAULTRUN_LOG_LEVEL: 'debug',
        X_FILE: 'vault:secret/rt/app#key',
        PROBE_OUT: report,
        ...env,
      }),
    });
    const res = await result;
    const output = `${res.stdout}${res.stderr}`;
    expectNoLeaks(output, sensitive);
    const probeReport = existsSync(report)
      ? (JSON.parse(readFileSync(report, 'utf8')) as ProbeReport)
      : undefined;
    return { exitCode: res.exitCode, stderr: res.stderr, output, probe: probeReport };
  }

  /**
   * The run succeeded, X_FILE is `dir`/PID-XXXXXX/X (the process's own directory in the runtime directory), and
   * both directories and the file are nobody's, private, with the secret.
   */
  function expectSecretFileIn(run: NobodyRun, dir: string): void {
    expect(run.exitCode, run.output).toBe(0);
    expect(run.probe, `the probe did not run:\n${run.output}`).toBeDefined();
    const file = run.probe?.env.X_FILE as string;
    const own = dirname(file);
    expect(dirname(own)).toBe(dir);
    expect(basename(own)).toMatch(/^\d+-\w{6}$/);
    expect(basename(file)).toBe('X');
    expect(stat(dir)).toEqual({ ...NOBODY, mode: 0o700, type: 'dir' });
    expect(readdirSync(dir)).toEqual([basename(own)]);
    expect(stat(own)).toEqual({ ...NOBODY, mode: 0o700, type: 'dir' });
    expect(stat(file)).toEqual({ ...NOBODY, mode: 0o400, type: 'file' });
    expect(readdirSync(own)).toEqual(['X']); // no temporary file left
    expect(readFileSync(file, 'utf8')).toBe(secret);
    // The command (nobody) can read it, as the app must.
    const [cmd, ...args] = asNobody();
    const cat = spawnSync(cmd as string, [...args, 'cat', file], { encoding: 'utf8' });
    expect(cat.status, cat.stderr).toBe(0);
    expect(cat.stdout === secret, 'nobody read something else than the secret').toBe(true);
  }

  /** The debug line naming the directory used and the candidates that failed before it. */
  function fallbackLine(run: NobodyRun): string {
    const line = run.stderr.split('\n').find((l) => l.includes('using fallback runtime directory'));
    expect(line, run.stderr).toBeDefined();
    return line as string;
  }

  it('preconditions: vaultrun runs as nobody, who cannot create /run/vaultrun', () => {
    expect(NOBODY.uid).not.toBe(0);
    expect(nobodyCan('w', '/run')).toBe(false);
    // Had it been made for nobody before, the default would simply work.
    if (existsSync('/run/vaultrun')) expect(stat('/run/vaultrun').uid).not.toBe(NOBODY.uid);
    for (const file of vaultrun.slice(asNobody().length).filter((a) => a !== '--'))
      expect(nobodyCan('r', file), file).toBe(true);
    expect(nobodyCan('x', node)).toBe(true);
    expect(nobodyCan('r', probe)).toBe(true);
  });

  it('with XDG_RUNTIME_DIR set: $XDG_RUNTIME_DIR/vaultrun', async () => {
    const d = dirs();
    const run = await runAsNobody(d, { XDG_RUNTIME_DIR: d.xdg, TMPDIR: d.tmp });
    const dir = join(d.xdg, 'vaultrun');
    expectSecretFileIn(run, dir);
    expect(fallbackLine(run)).toMatch(/\/run\/vaultrun \((EACCES|EPERM)\)/);
    expect(fallbackLine(run)).toContain(dir);
    // The later candidates were not touched.
    expect(existsSync(SHM_DIR)).toBe(false);
    expect(readdirSync(d.tmp)).toEqual([]);
  });

  it('without XDG_RUNTIME_DIR: /dev/shm/vaultrun-UID', async () => {
    const d = dirs();
    const run = await runAsNobody(d, { TMPDIR: d.tmp });
    expectSecretFileIn(run, SHM_DIR);
    expect(fallbackLine(run)).toMatch(/\/run\/vaultrun \((EACCES|EPERM)\)/);
    expect(fallbackLine(run)).toContain(SHM_DIR);
    expect(readdirSync(d.tmp)).toEqual([]);
    expect(readdirSync(d.xdg)).toEqual([]);
  });

  it('XDG_RUNTIME_DIR that nobody cannot write: the next candidate, /dev/shm/vaultrun-UID', async () => {
    const d = dirs();
    const rootsXdg = openDir('vaultrun-roots-xdg-'); // root's, 0755
    const run = await runAsNobody(d, { XDG_RUNTIME_DIR: rootsXdg, TMPDIR: d.tmp });
    expectSecretFileIn(run, SHM_DIR);
    expect(fallbackLine(run)).toContain(`${join(rootsXdg, 'vaultrun')} (EACCES)`);
    expect(readdirSync(rootsXdg)).toEqual([]);
  });

  /** The warning that a planted directory was left alone, and the fresh SHM_DIR-XXXXXX used instead. */
  function freshShmDir(run: NobodyRun): string {
    const fresh = freshShmDirs();
    expect(fresh, run.output).toHaveLength(1);
    const line = run.stderr.split('\n').find((l) => l.includes('runtime directory is not ours'));
    expect(line, run.stderr).toBeDefined();
    expect(line).toContain(SHM_DIR);
    expect(line).toContain(fresh[0]);
    expect(fresh[0]).toMatch(new RegExp(`^${SHM_DIR}-\\w{6}$`));
    return fresh[0] as string;
  }

  describe('/dev/shm/vaultrun-UID planted by someone else is left alone: a fresh /dev/shm/vaultrun-UID-XXXXXX (still memory), never $TMPDIR', () => {
    it('a directory owned by another user (root)', async () => {
      const d = dirs();
      mkdirSync(SHM_DIR, { mode: 0o755 });
      chmodSync(SHM_DIR, 0o755);
      const run = await runAsNobody(d, { TMPDIR: d.tmp });
      expectSecretFileIn(run, freshShmDir(run));
      expect(fallbackLine(run)).toContain(`${SHM_DIR} (EPERM)`);
      // Left as it was; the disk-backed $TMPDIR was not used.
      expect(stat(SHM_DIR)).toEqual({ uid: 0, gid: 0, mode: 0o755, type: 'dir' });
      expect(readdirSync(SHM_DIR)).toEqual([]);
      expect(readdirSync(d.tmp)).toEqual([]);
    });

    it('a symlink (to a directory nobody owns)', async () => {
      const d = dirs();
      const target = nobodysDir(d.work, 'elsewhere');
      symlinkSync(target, SHM_DIR);
      const run = await runAsNobody(d, { TMPDIR: d.tmp });
      expectSecretFileIn(run, freshShmDir(run));
      expect(fallbackLine(run)).toContain(`${SHM_DIR} (ENOTDIR)`);
      expect(stat(SHM_DIR).type).toBe('symlink');
      expect(readdirSync(target)).toEqual([]);
      expect(readdirSync(d.tmp)).toEqual([]);
    });

    it('a dangling symlink to a disk location', async () => {
      const d = dirs();
      const disk = nobodysDir(d.work, 'disk');
      symlinkSync(join(disk, 'secrets'), SHM_DIR);
      const run = await runAsNobody(d, { TMPDIR: d.tmp });
      expectSecretFileIn(run, freshShmDir(run));
      expect(stat(SHM_DIR).type).toBe('symlink');
      expect(readdirSync(disk)).toEqual([]);
      expect(readdirSync(d.tmp)).toEqual([]);
    });
  });

  it.each([
    ['--runtime-dir', (dir: string) => ({ args: ['--runtime-dir', dir], env: {} })],
    ['VAULTRUN_RUNTIME_DIR', (dir: string) => ({ args: [], env: { VAULTRUN_RUNTIME_DIR: dir } })],
  ])('an explicit directory (%s) nobody cannot create: exit 74, no fallback', async (_, how) => {
    const d = dirs();
    const explicit = `/run/vaultrun-explicit-${unique('t')}`;
    const { args, env } = how(explicit);
    const run = await runAsNobody(d, { XDG_RUNTIME_DIR: d.xdg, TMPDIR: d.tmp, ...env }, args);
    expect(run.exitCode, run.output).toBe(74);
    expect(run.probe, 'the probe ran although vaultrun failed').toBeUndefined();
    expect(run.stderr).toContain(`no usable directory for secret files: ${explicit} (EACCES)`);
    expect(run.stderr).toContain('set VAULTRUN_RUNTIME_DIR / --runtime-dir to a writable directory');
    // Only the explicit one was tried.
    expect(run.stderr).not.toContain('/run/vaultrun ');
    expect(existsSync(explicit)).toBe(false);
    expect(readdirSync(d.xdg)).toEqual([]);
    expect(existsSync(SHM_DIR)).toBe(false);
    expect(readdirSync(d.tmp)).toEqual([]);
  });
});
