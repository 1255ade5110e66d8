// Test harness: a REAL PostgreSQL server (Debian's `postgresql` package: /usr/lib/postgresql/<major>/bin),
// one per call of startPostgres(), in its own temp dir, on a free loopback port.
//
// - initdb creates the cluster with password authentication (scram-sha-256) for TCP connections, so the
//   dynamic credentials OpenBao creates are really checked (trust would let any role in without a password);
//   the superuser `postgres` gets a random password that only OpenBao's connection uses.
// - As root, PostgreSQL refuses to run: initdb and the server run as an unprivileged user — `postgres` when
//   that user exists (the Debian package creates it), else `nobody` — through util-linux `setpriv`, and the
//   temp dir is handed to that user.
// - The server runs in the foreground as our child (`postgres -D …`, not `pg_ctl start`, which would daemonize
//   it away from us): with `setpriv --pdeathsig KILL` it dies with the test worker; stop() asks for a fast
//   shutdown (SIGINT), as `pg_ctl stop -m fast` does.
// - Unix sockets go to the temp dir (not /var/run/postgresql, which may be missing or belong to the system's
//   own server).
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { leftovers } from './leftovers.js';
import { freePort } from './openbao.js';

const run = promisify(execFile);

export interface Postgres {
  port: number;
  /** Superuser and its password (what OpenBao's database engine connects with). */
  user: string;
  password: string;
  dir: string;
  logFile: string;
  /** Runs SQL with psql as the superuser over TCP; returns the rows, fields separated by `|`. */
  query(sql: string): Promise<string[]>;
  /** Runs SQL with psql as the given role and password over TCP (password authentication). */
  queryAs(user: string, password: string, sql: string): Promise<string[]>;
  stop(): Promise<void>;
}

const servers = leftovers('KEEP_POSTGRES_DIRS');
const { dirs } = servers;

/** The directory of the newest installed PostgreSQL server binaries. */
export function postgresBin(): string {
  const base = '/usr/lib/postgresql';
  const versions = existsSync(base)
    ? readdirSync(base)
        .filter((v) => /^\d+$/.test(v) && existsSync(join(base, v, 'bin/postgres')))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  const v = versions[0];
  if (v === undefined) {
    throw new Error(
      'PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin. Install the Debian package: apt-get install postgresql (.ci/run does).',
    );
  }
  return join(base, v, 'bin');
}

function idsOf(name: string): { uid: number; gid: number } | undefined {
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${name}:`));
  if (!line) return undefined;
  const f = line.split(':');
  return { uid: Number(f[2]), gid: Number(f[3]) };
}

/** As root: the unprivileged user the server runs as. Not root: nobody to switch to. */
function serverUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const ids = idsOf('postgres') ?? idsOf('nobody');
  if (!ids) throw new Error('running as root, but neither user postgres nor nobody exists in /etc/passwd');
  return ids;
}

function setprivBinary(): string {
  const sp = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p));
  if (!sp) throw new Error('util-linux setpriv not found: needed to run PostgreSQL as an unprivileged user');
  return sp;
}

/** [command, args] running `cmd args` as the server user (and dying with us when `pdeath`). */
function asServerUser(
  user: { uid: number; gid: number } | undefined,
  cmd: string,
  args: string[],
  pdeath: boolean,
): [string, string[]] {
  if (!user) return [cmd, args];
  return [
    setprivBinary(),
    [
      `--reuid=${user.uid}`,
      `--regid=${user.gid}`,
      '--clear-groups',
      ...(pdeath ? ['--pdeathsig', 'KILL'] : []),
      '--',
      cmd,
      ...args,
    ],
  ];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function tail(file: string, chars = 3000): string {
  try {
    const text = readFileSync(file, 'utf8');
    return text.length > chars ? `…${text.slice(-chars)}` : text;
  } catch {
    return '(no log)';
  }
}

async function psql(port: number, user: string, password: string, sql: string): Promise<string[]> {
  const { stdout } = await run(
    'psql',
    [
      '-X',
      '-v',
      'ON_ERROR_STOP=1',
      '-h',
      '127.0.0.1',
      '-p',
      String(port),
      '-U',
      user,
      '-d',
      'postgres',
      '-tAc',
      sql,
    ],
    {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', PGPASSWORD: password, PGCONNECT_TIMEOUT: '5' },
      timeout: 15_000,
    },
  );
  return stdout.split('\n').filter((l) => l !== '');
}

export async function startPostgres(): Promise<Postgres> {
  const bin = postgresBin();
  const user = serverUser();
  const dir = mkdtempSync(join(tmpdir(), 'vaultrun-postgres-'));
  dirs.add(dir);
  const data = join(dir, 'data');
  const logFile = join(dir, 'server.log');
  const pwFile = join(dir, 'pw');
  const password = `pg-${randomBytes(12).toString('hex')}`;
  writeFileSync(pwFile, `${password}\n`, { mode: 0o600 });
  writeFileSync(logFile, '');
  if (user) for (const p of [dir, pwFile, logFile]) chownSync(p, user.uid, user.gid);

  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C.UTF-8', LC_ALL: 'C.UTF-8', HOME: dir };
  const [initCmd, initArgs] = asServerUser(
    user,
    join(bin, 'initdb'),
    [
      '-D',
      data,
      '-U',
      'postgres',
      `--pwfile=${pwFile}`,
      '--auth-host=scram-sha-256',
      '--auth-local=scram-sha-256',
      '-E',
      'UTF8',
      '--locale=C.UTF-8',
      '--no-sync',
    ],
    false,
  );
  try {
    await run(initCmd, initArgs, { env, cwd: dir, timeout: 120_000 });
  } catch (error) {
    const e = error as { stderr?: string; stdout?: string; message: string };
    throw new Error(`initdb failed: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`);
  }

  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const [cmd, args] = asServerUser(
      user,
      join(bin, 'postgres'),
      [
        '-D',
        data,
        '-p',
        String(port),
        '-c',
        'listen_addresses=127.0.0.1',
        '-c',
        `unix_socket_directories=${dir}`,
        '-c',
        'fsync=off',
        '-c',
        'log_connections=on',
      ],
      true,
    );
    const { child, exited } = servers.start(cmd, args, { cwd: dir, env, logFile });
    let gone = false;
    void exited.then(() => {
      gone = true;
    });
    const deadline = Date.now() + 30_000;
    let ready = false;
    while (!gone && Date.now() < deadline) {
      try {
        await psql(port, 'postgres', password, 'select 1');
        ready = true;
        break;
      } catch (error) {
        lastError = error;
        await sleep(100);
      }
    }
    if (!ready) {
      child.kill('SIGKILL');
      await exited;
      lastError = new Error(`PostgreSQL did not start on port ${port}. Log:\n${tail(logFile)}`);
      continue;
    }
    return {
      port,
      user: 'postgres',
      password,
      dir,
      logFile,
      query: (sql) => psql(port, 'postgres', password, sql),
      queryAs: (u, pw, sql) => psql(port, u, pw, sql),
      async stop() {
        if (child.exitCode !== null || child.signalCode !== null) return;
        child.kill('SIGINT'); // fast shutdown
        const timedOut = await Promise.race([exited.then(() => false), sleep(15_000).then(() => true)]);
        if (timedOut) {
          child.kill('SIGKILL');
          await exited;
        }
      },
    };
  }
  throw lastError;
}
