import { execFileSync, spawn } from 'node:child_process';
import { closeSync, openSync, writeSync } from 'node:fs';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  applyFileEnv,
  type FileEnvOptions,
  type FileEnvSource,
  inScope,
  MAX_FILE_ENV_BYTES,
  planFileEnv,
  readFileEnvSource,
} from '../../src/env/file-env.js';
import { MAX_ENV_FILE_BYTES, readEnvFile } from '../../src/env/sources.js';
import { isOwnSetting } from '../../src/settings.js';
import { rejected, thrown } from '../support/errors.js';

const DEFAULT_DIRS = ['/run/secrets', '/var/run/secrets', '/vault/secrets'];
const options = (over: Partial<FileEnvOptions> = {}): FileEnvOptions => ({
  dirs: DEFAULT_DIRS,
  exclude: new Set(['AWS_WEB_IDENTITY_TOKEN_FILE']),
  passthrough: new Set(),
  isOwnSetting,
  ...over,
});
const converted = (env: Record<string, string>, over: Partial<FileEnvOptions> = {}) =>
  planFileEnv(env, options(over)).map((s) => s.fileVar);

describe('inScope', () => {
  it.each<[string, readonly string[], boolean]>([
    ['/run/secrets/db', DEFAULT_DIRS, true],
    ['/var/run/secrets/kubernetes.io/serviceaccount/token', DEFAULT_DIRS, true],
    ['/vault/secrets/db.txt', DEFAULT_DIRS, true],
    ['/run//secrets/db', DEFAULT_DIRS, true],
    ['/run/secrets/./db', DEFAULT_DIRS, true],
    ['/run/secrets', DEFAULT_DIRS, false],
    ['/run/secretsX/db', DEFAULT_DIRS, false],
    ['/run/secrets/../../etc/passwd', DEFAULT_DIRS, false],
    ['/run/secrets/../shadow', DEFAULT_DIRS, false],
    ['/etc/app.conf', DEFAULT_DIRS, false],
    ['/var/log/app.log', DEFAULT_DIRS, false],
    ['run/secrets/db', DEFAULT_DIRS, false],
    ['./run/secrets/db', DEFAULT_DIRS, false],
    ['secrets/db', DEFAULT_DIRS, false],
    ['', DEFAULT_DIRS, false],
    ['/run/secrets/db', ['/run/secrets/'], true],
    ['/run/secrets/db', ['/run/secrets//'], true],
    ['/run/secrets/db', [], false],
    ['/etc/app.conf', ['/'], true],
    ['/x', ['/'], true],
    ['relative/x', ['/'], false],
    ['x', ['/'], false],
    // A relative directory matches nothing: paths must be absolute anyway.
    ['/run/secrets/db', ['run/secrets'], false],
    ['/opt/app/secrets/x', ['/opt/app/../app/secrets'], true],
  ])('%j in %j → %s', (path, dirs, expected) => {
    expect(inScope(path, dirs)).toBe(expected);
  });
});

describe('planFileEnv', () => {
  it('leaves NAME_FILE=vault:login to the token hand-over (not a path), and still refuses NAME set too', () => {
    expect(converted({ APP_TOKEN_FILE: 'vault:login' })).toEqual([]);
    expect(() => converted({ APP_TOKEN_FILE: 'vault:login', APP_TOKEN: 'x' })).toThrow(
      /both APP_TOKEN and APP_TOKEN_FILE are set/,
    );
  });

  it('converts NAME_FILE paths under the secret directories, sorted, with NAME and the path', () => {
    expect(
      planFileEnv(
        {
          REDIS_PASSWORD_FILE: '/vault/secrets/redis',
          DB_PASSWORD_FILE: '/run/secrets/db_password',
          SA_TOKEN_FILE: '/var/run/secrets/kubernetes.io/serviceaccount/token',
          LOG_FILE: '/var/log/app.log',
          SSL_CERT_FILE: '/etc/ssl/certs/ca.pem',
          TF_CLI_CONFIG_FILE: 'terraformrc',
          PLAIN: '/run/secrets/plain',
        },
        options(),
      ),
    ).toEqual([
      { fileVar: 'DB_PASSWORD_FILE', name: 'DB_PASSWORD', path: '/run/secrets/db_password' },
      { fileVar: 'REDIS_PASSWORD_FILE', name: 'REDIS_PASSWORD', path: '/vault/secrets/redis' },
      {
        fileVar: 'SA_TOKEN_FILE',
        name: 'SA_TOKEN',
        path: '/var/run/secrets/kubernetes.io/serviceaccount/token',
      },
    ]);
  });

  it('converts every absolute path with dirs ["/"], never a relative one', () => {
    expect(
      converted(
        { A_FILE: '/etc/a', B_FILE: 'b.txt', C_FILE: './c', D_FILE: '../d', E_FILE: '/run/secrets/e' },
        { dirs: ['/'] },
      ),
    ).toEqual(['A_FILE', 'E_FILE']);
  });

  it('converts nothing with no directories', () => {
    expect(converted({ A_FILE: '/run/secrets/a' }, { dirs: [] })).toEqual([]);
  });

  it('leaves excluded, passthrough and own-setting variables alone', () => {
    expect(
      converted(
        {
          AWS_WEB_IDENTITY_TOKEN_FILE: '/var/run/secrets/eks.amazonaws.com/serviceaccount/token',
          KEEP_FILE: '/run/secrets/keep',
          VAULT_TOKEN_FILE: '/run/secrets/token',
          VAULT_SECRET_ID_FILE: '/run/secrets/sid',
          VAULTRUN_SOMETHING_FILE: '/run/secrets/x',
          BAO_TOKEN_FILE: '/run/secrets/bao',
          DB_FILE: '/run/secrets/db',
        },
        { passthrough: new Set(['KEEP_FILE']) },
      ),
    ).toEqual(['DB_FILE']);
  });

  it('uses the exclude list it is given', () => {
    expect(
      converted({ A_FILE: '/run/secrets/a', B_FILE: '/run/secrets/b' }, { exclude: new Set(['A_FILE']) }),
    ).toEqual(['B_FILE']);
  });

  it('ignores names that are not NAME_FILE and empty values', () => {
    expect(
      converted({
        _FILE: '/run/secrets/x',
        FILE: '/run/secrets/y',
        EMPTY_FILE: '',
        x_file: '/run/secrets/z',
      }),
    ).toEqual([]);
  });

  it('fails when NAME and NAME_FILE are both set, naming both', () => {
    const error = thrown(() =>
      planFileEnv({ DB_PASSWORD: 'literal', DB_PASSWORD_FILE: '/run/secrets/db' }, options()),
    );
    expect(error.code).toBe('USAGE');
    expect(error.message).toBe('both DB_PASSWORD and DB_PASSWORD_FILE are set');
    expect(error.message).not.toContain('literal');
    expect(error.hint).toContain('VAULTRUN_FILE_ENV_EXCLUDE');
  });

  it('also fails when NAME_FILE is a reference and NAME is set', () => {
    const error = thrown(() =>
      planFileEnv({ DB_PASSWORD: 'x', DB_PASSWORD_FILE: 'vault:secret/db#password' }, options()),
    );
    expect(error.code).toBe('USAGE');
    expect(error.message).toContain('DB_PASSWORD_FILE');
  });

  it('does not fail when NAME is empty, or when NAME_FILE is out of scope, excluded or passed through', () => {
    expect(converted({ DB: '', DB_FILE: '/run/secrets/db' })).toEqual(['DB_FILE']);
    expect(converted({ LOG: 'x', LOG_FILE: '/var/log/app.log' })).toEqual([]);
    expect(converted({ A: 'x', A_FILE: '/run/secrets/a' }, { exclude: new Set(['A_FILE']) })).toEqual([]);
    expect(converted({ A: 'x', A_FILE: '/run/secrets/a' }, { passthrough: new Set(['A_FILE']) })).toEqual([]);
  });

  it('skips references, which are resolved and written to a secret file elsewhere', () => {
    expect(
      converted(
        {
          A_FILE: 'vault:secret/a#k',
          B_FILE: '/run/secrets/${vault:secret/b#name}',
          C_FILE: '/run/secrets/c',
        },
        { dirs: ['/'] },
      ),
    ).toEqual(['C_FILE']);
  });

  it('reports invalid reference syntax in a NAME_FILE variable', () => {
    const error = thrown(() => planFileEnv({ A_FILE: 'vault:broken' }, options()));
    expect(error.code).toBe('USAGE');
    expect(error.message).toMatch(/^A_FILE: /);
  });
});

describe('applyFileEnv', () => {
  it('sets NAME from the content, removes NAME_FILE, keeps everything else, mutates nothing', () => {
    const env = Object.freeze({
      DB_PASSWORD_FILE: '/run/secrets/db',
      API_KEY_FILE: '/run/secrets/api',
      OTHER_FILE: '/etc/other',
      HOME: '/root',
    });
    const out = applyFileEnv(env, [
      { source: { fileVar: 'DB_PASSWORD_FILE', name: 'DB_PASSWORD', path: '/run/secrets/db' }, value: 'pw' },
      { source: { fileVar: 'API_KEY_FILE', name: 'API_KEY', path: '/run/secrets/api' }, value: '' },
    ]);
    expect(out).toEqual({ DB_PASSWORD: 'pw', API_KEY: '', OTHER_FILE: '/etc/other', HOME: '/root' });
    expect(env).toHaveProperty('DB_PASSWORD_FILE');
  });

  it('returns an equal copy when there is nothing to apply', () => {
    const env = { A: '1' };
    const out = applyFileEnv(env, []);
    expect(out).toEqual(env);
    expect(out).not.toBe(env);
  });
});

describe('readFileEnvSource', () => {
  let dir: string;
  const source = (name: string): FileEnvSource => ({
    fileVar: 'DB_PASSWORD_FILE',
    name: 'DB_PASSWORD',
    path: join(dir, name),
  });
  const write = async (name: string, content: string | Buffer) => {
    await writeFile(join(dir, name), content);
    return source(name);
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vaultrun-file-env-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it.each<[string, string, string]>([
    ['no newline', 's3cret', 's3cret'],
    ['one newline', 's3cret\n', 's3cret'],
    ['only one of two newlines', 's3cret\n\n', 's3cret\n'],
    ['CRLF', 's3cret\r\n', 's3cret'],
    ['only one CRLF', 's3cret\r\n\r\n', 's3cret\r\n'],
    ['a lone CR', 's3cret\r', 's3cret\r'],
    ['inner newlines', 'line1\nline2\n', 'line1\nline2'],
    ['spaces', '  padded  \n', '  padded  '],
    ['an empty file', '', ''],
    ['a lone newline', '\n', ''],
    ['UTF-8', 'pässwörd✓\n', 'pässwörd✓'],
  ])('%s', async (label, content, expected) => {
    const name = `case-${label.replace(/\W+/g, '-')}`;
    expect(await readFileEnvSource(await write(name, content))).toBe(expected);
  });

  it(`reads a file of exactly ${MAX_FILE_ENV_BYTES} bytes`, async () => {
    const content = 'x'.repeat(MAX_FILE_ENV_BYTES);
    expect(await readFileEnvSource(await write('max', content))).toBe(content);
  });

  it('refuses a file larger than the limit', async () => {
    const error = await rejected(readFileEnvSource(await write('big', 'x'.repeat(MAX_FILE_ENV_BYTES + 1))));
    expect(error.code).toBe('IO');
    expect(error.message).toBe(
      `DB_PASSWORD_FILE: ${join(dir, 'big')} is larger than ${MAX_FILE_ENV_BYTES} bytes`,
    );
    expect(error.hint).toContain('VAULTRUN_FILE_ENV_EXCLUDE');
  });

  it('refuses a directory', async () => {
    await mkdir(join(dir, 'a-dir'));
    const error = await rejected(readFileEnvSource(source('a-dir')));
    expect(error.code).toBe('IO');
    expect(error.message).toBe(`DB_PASSWORD_FILE: ${join(dir, 'a-dir')} is not a regular file (a directory)`);
  });

  it('fails on a missing file, naming the variable, the path and the reason', async () => {
    const error = await rejected(readFileEnvSource(source('missing')));
    expect(error.code).toBe('IO');
    expect(error.message).toBe(`DB_PASSWORD_FILE: cannot read ${join(dir, 'missing')}: ENOENT`);
    expect(error.hint).toContain('DB_PASSWORD_FILE');
  });

  it('never puts the content into an error', async () => {
    const error = await rejected(
      readFileEnvSource(await write('big-secret', `TOPSECRET${'y'.repeat(MAX_FILE_ENV_BYTES)}`)),
    );
    expect(`${error.message} ${error.hint}`).not.toContain('TOPSECRET');
  });
});

/**
 * Sources that are not small regular files: a clear error naming the variable and the path, at once. Each test
 * has a short timeout: a FIFO without a writer used to block open() for ever.
 */
describe('readFileEnvSource / readEnvFile: what is not a small regular file', () => {
  let dir: string;
  let server: Server;
  const FAST = 5_000;
  const source = (path: string): FileEnvSource => ({
    fileVar: 'DB_PASSWORD_FILE',
    name: 'DB_PASSWORD',
    path,
  });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vaultrun-file-kinds-'));
    execFileSync('mkfifo', [join(dir, 'fifo')]);
    await mkdir(join(dir, 'a-dir'));
    server = createServer();
    await new Promise<void>((resolve) => server.listen(join(dir, 'socket'), resolve));
    await writeFile(join(dir, 'real'), 's3cret\n');
    // Kubernetes secret volumes: NAME → ..data/NAME, ..data → ..2024_01_01…
    await mkdir(join(dir, '..2024_01_01'));
    await writeFile(join(dir, '..2024_01_01', 'password'), 'k8s-secret\n');
    await symlink('..2024_01_01', join(dir, '..data'));
    await symlink('..data/password', join(dir, 'password'));
    await symlink(join(dir, 'fifo'), join(dir, 'link-to-fifo'));
    await symlink('/dev/zero', join(dir, 'link-to-zero'));
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
    await rm(dir, { recursive: true, force: true });
  });

  it.each<[string, () => string, string]>([
    ['a FIFO without a writer', () => join(dir, 'fifo'), 'a FIFO (named pipe)'],
    ['a symlink to a FIFO', () => join(dir, 'link-to-fifo'), 'a FIFO (named pipe)'],
    ['/dev/zero (endless)', () => '/dev/zero', 'a character device'],
    ['/dev/urandom (endless)', () => '/dev/urandom', 'a character device'],
    ['a symlink to /dev/zero', () => join(dir, 'link-to-zero'), 'a character device'],
    ['/dev/null', () => '/dev/null', 'a character device'],
    ['a socket', () => join(dir, 'socket'), 'a socket'],
    ['a directory', () => join(dir, 'a-dir'), 'a directory'],
  ])(
    'NAME_FILE → %s: exit 74 naming the variable and the path',
    async (_, path, kind) => {
      const error = await rejected(readFileEnvSource(source(path())));
      expect(error.code).toBe('IO');
      expect(error.exitCode).toBe(74);
      expect(error.message).toBe(`DB_PASSWORD_FILE: ${path()} is not a regular file (${kind})`);
      expect(error.hint).toContain('DB_PASSWORD_FILE');
    },
    FAST,
  );

  it(
    'NAME_FILE → a FIFO with a writer that never stops: refused before anything is read',
    async () => {
      const fifo = join(dir, 'fifo');
      const writer = openSync(fifo, 'r+'); // a reader and a writer on Linux: never blocks
      try {
        writeSync(writer, 'x'.repeat(4096));
        const error = await rejected(readFileEnvSource(source(fifo)));
        expect(error.message).toBe(`DB_PASSWORD_FILE: ${fifo} is not a regular file (a FIFO (named pipe))`);
      } finally {
        closeSync(writer);
      }
    },
    FAST,
  );

  it('NAME_FILE → a symlink chain to a regular file (Kubernetes ..data) is followed', async () => {
    expect(await readFileEnvSource(source(join(dir, 'password')))).toBe('k8s-secret');
    expect(await readFileEnvSource(source(join(dir, 'real')))).toBe('s3cret');
  });

  it.each<[string, () => string, string]>([
    ['/dev/zero (endless)', () => '/dev/zero', 'a character device'],
    ['a socket', () => join(dir, 'socket'), 'a socket'],
    ['a directory', () => join(dir, 'a-dir'), 'a directory'],
  ])(
    'env file → %s: exit 74 naming the file',
    async (_, path, kind) => {
      const error = await rejected(readEnvFile(path()));
      expect(error.code).toBe('IO');
      expect(error.message).toBe(`env file ${path()} is not a regular file (${kind})`);
      expect(error.hint).toContain('--env-file');
    },
    FAST,
  );

  it(`env file larger than ${MAX_ENV_FILE_BYTES} bytes: exit 74`, async () => {
    const big = join(dir, 'big.env');
    await writeFile(big, `A=${'x'.repeat(MAX_ENV_FILE_BYTES)}\n`);
    const error = await rejected(readEnvFile(big));
    expect(error.message).toBe(`env file ${big} is larger than ${MAX_ENV_FILE_BYTES} bytes`);
  });

  it(
    'env file → a pipe is read to its end (--env-file <(cmd) keeps working)',
    async () => {
      const fifo = join(dir, 'fifo');
      // A writer process: its open() waits for our reader, then it writes and exits (end of file).
      const writer = spawn('sh', ['-c', 'printf \'A=1\\nB="two words"\\n\' > "$0"', fifo], {
        stdio: 'ignore',
      });
      const exited = new Promise((resolve) => writer.on('exit', resolve));
      expect((await readEnvFile(fifo)).vars).toEqual({ A: '1', B: 'two words' });
      expect(await exited).toBe(0);
    },
    FAST,
  );
});
