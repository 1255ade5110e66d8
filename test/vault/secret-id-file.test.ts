// The secret_id file under --delete-secret-id-file, with real files: a symlink, a second hard link or a FIFO is
// refused before any login (exit 74, the link's target untouched); the file read is the file deleted, and a name
// that no longer refers to it is left alone with a warning.
import { execFileSync } from 'node:child_process';
import {
  existsSync,
  linkSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLogger, type Logger } from '../../src/log.js';
import { openSecretIdFile } from '../../src/vault/secret-id-file.js';
import { rejected } from '../support/errors.js';

const SECRET = 'secret-id-3f9a1c7e-0000-4b2d-9e6f-5a8b7c6d5e4f';

describe('openSecretIdFile', () => {
  let dir: string;
  let lines: string[];
  let log: Logger;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'vaultrun-secret-id-'));
    lines = [];
    log = createLogger({ level: 'debug', write: (line) => lines.push(line) });
  });

  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('reads the file (trimmed); remove() deletes it and only it', async () => {
    const file = join(dir, 'secret_id');
    writeFileSync(file, `${SECRET}\n`);
    writeFileSync(join(dir, 'role_id'), 'role');
    const held = await openSecretIdFile(file);
    expect(held.value).toBe(SECRET);
    expect(existsSync(file)).toBe(true);
    await held.remove(log);
    expect(existsSync(file)).toBe(false);
    expect(existsSync(join(dir, 'role_id'))).toBe(true);
    expect(lines.join('')).toMatch(/deleted the secret_id file after logging in with it/);
  });

  it('close() without remove() (a failed login) leaves the file for the next start', async () => {
    const file = join(dir, 'secret_id');
    writeFileSync(file, SECRET);
    const held = await openSecretIdFile(file);
    await held.close();
    expect(readFileSync(file, 'utf8')).toBe(SECRET);
  });

  it('a symlink is refused (74) naming VAULT_SECRET_ID_FILE; the link and its target stay', async () => {
    const target = join(dir, 'real-secret-id');
    writeFileSync(target, SECRET);
    const link = join(dir, 'secret_id');
    symlinkSync(target, link);
    const error = await rejected(openSecretIdFile(link));
    expect(error.code).toBe('IO');
    expect(error.exitCode).toBe(74);
    expect(error.message).toBe(
      `VAULT_SECRET_ID_FILE ${link} is a symbolic link: --delete-secret-id-file would delete only the link and ` +
        'leave the file it points to, with a usable secret_id',
    );
    expect(error.hint).toMatch(/point VAULT_SECRET_ID_FILE at the file itself/);
    expect(readFileSync(target, 'utf8')).toBe(SECRET);
    expect(readFileSync(link, 'utf8')).toBe(SECRET);
  });

  it('a dangling symlink is refused the same way', async () => {
    const link = join(dir, 'secret_id');
    symlinkSync(join(dir, 'nowhere'), link);
    const error = await rejected(openSecretIdFile(link));
    expect(error.message).toMatch(/is a symbolic link/);
  });

  it('a symlinked directory on the way is followed: only the file itself must not be a link', async () => {
    const real = join(dir, 'real');
    execFileSync('mkdir', [real]);
    writeFileSync(join(real, 'secret_id'), SECRET);
    symlinkSync(real, join(dir, 'via'));
    const held = await openSecretIdFile(join(dir, 'via', 'secret_id'));
    expect(held.value).toBe(SECRET);
    await held.remove(log);
    expect(existsSync(join(real, 'secret_id'))).toBe(false);
  });

  it('a file with a second hard link is refused (deleting one name would leave the other)', async () => {
    const file = join(dir, 'secret_id');
    writeFileSync(file, SECRET);
    linkSync(file, join(dir, 'copy'));
    const error = await rejected(openSecretIdFile(file));
    expect(error.code).toBe('IO');
    expect(error.message).toMatch(/has 2 names \(hard links\)/);
    expect(readFileSync(file, 'utf8')).toBe(SECRET);
  });

  it('a FIFO is refused at once (no writer needed: it never hangs the start)', async () => {
    const fifo = join(dir, 'secret_id');
    execFileSync('mkfifo', [fifo]);
    const error = await rejected(openSecretIdFile(fifo));
    expect(error.code).toBe('IO');
    expect(error.message).toMatch(/is not a regular file/);
  });

  it('a missing file is 74 with its errno; an empty one is 67', async () => {
    const missing = await rejected(openSecretIdFile(join(dir, 'none')));
    expect(missing.code).toBe('IO');
    expect(missing.message).toMatch(/cannot read VAULT_SECRET_ID_FILE file .*none: ENOENT/);
    writeFileSync(join(dir, 'empty'), '\n');
    const empty = await rejected(openSecretIdFile(join(dir, 'empty')));
    expect(empty.code).toBe('LOGIN_FAILED');
  });

  it('replaced after the read: the new file is not deleted, with a warning', async () => {
    const file = join(dir, 'secret_id');
    writeFileSync(file, SECRET);
    const held = await openSecretIdFile(file);
    renameSync(file, join(dir, 'moved'));
    writeFileSync(file, 'someone-elses-file');
    await held.remove(log);
    expect(readFileSync(file, 'utf8')).toBe('someone-elses-file');
    expect(readFileSync(join(dir, 'moved'), 'utf8')).toBe(SECRET);
    expect(lines.join('')).toMatch(
      /did not delete the secret_id file: its name no longer refers to the file/,
    );
  });

  it('replaced by a symlink to it after the read: the link is not deleted, with a warning', async () => {
    const file = join(dir, 'secret_id');
    writeFileSync(file, SECRET);
    const held = await openSecretIdFile(file);
    renameSync(file, join(dir, 'moved'));
    symlinkSync(join(dir, 'moved'), file);
    await held.remove(log);
    expect(readFileSync(file, 'utf8')).toBe(SECRET);
    expect(lines.join('')).toMatch(/did not delete the secret_id file/);
  });

  it('removed by someone else after the read: a warning, nothing else', async () => {
    const file = join(dir, 'secret_id');
    writeFileSync(file, SECRET);
    const held = await openSecretIdFile(file);
    rmSync(file);
    await held.remove(log);
    expect(lines.join('')).toMatch(/could not delete the secret_id file: it is no longer there.*ENOENT/);
  });

  it('its directory renamed and replaced after the read: the file read is deleted, not the new one', async () => {
    const sub = join(dir, 'creds');
    execFileSync('mkdir', [sub]);
    const file = join(sub, 'secret_id');
    writeFileSync(file, SECRET);
    const held = await openSecretIdFile(file);
    renameSync(sub, join(dir, 'creds-old'));
    execFileSync('mkdir', [sub]);
    writeFileSync(file, 'someone-elses-file');
    await held.remove(log);
    expect(existsSync(join(dir, 'creds-old', 'secret_id'))).toBe(false);
    expect(readFileSync(file, 'utf8')).toBe('someone-elses-file');
  });

  it('never logs the secret_id', async () => {
    const file = join(dir, 'secret_id');
    writeFileSync(file, SECRET);
    const held = await openSecretIdFile(file);
    await held.remove(log);
    expect(lines.join('')).not.toContain(SECRET);
  });
});
