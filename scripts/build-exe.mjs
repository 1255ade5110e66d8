// Builds dist/vaultrun, a Node.js single executable application (SEA), from dist/vaultrun.cjs.
//
//   node scripts/build-exe.mjs [--input dist/vaultrun.cjs] [--output dist/vaultrun] [--keep-temp] [--no-snapshot]
//                              [--keep-symbols]
//
// Only the Node.js binary pinned in node_modules (the `node` devDependency) is used; nothing is
// downloaded. Steps:
//   1. copy the pinned binary and `strip` the copy (binutils). This must happen BEFORE the SEA blob
//      is injected: strip moves the injected `.note.node.sea` section out of its segment ("allocated
//      section not in segment") and the stripped executable segfaults at start. Stripping the
//      base removes ~33 MB of symbols and debug info (149.7 MB -> 116.4 MB for Node 26.10.0).
//   2. run the pinned (unstripped) binary with `--build-sea <config>`, whose `executable` field
//      names the stripped copy as the base binary to inject into (without the field
//      --build-sea injects into the binary that runs it). The running binary and the base binary
//      must be the same Node version, since the blob and its V8 code cache are version-specific;
//      here they are the same file, one of them stripped.
//   3. check the result (ELF, SEA fuse flipped), move it to the output path.
//
// SEA config choices:
//   - execArgvExtension "none": the executable ignores NODE_OPTIONS (with the default "env", a
//     NODE_OPTIONS=--require=... in the container environment would run code before vaultrun and
//     see the secrets). Node options in argv were never parsed by a SEA: `vaultrun --inspect x`
//     gives process.argv [exe, exe, '--inspect', 'x']. NODE_OPTIONS stays in process.env, so
//     it still reaches the command vaultrun runs.
//   - no execArgv, so process.execArgv is []. (`--disable-sigusr1` was considered and rejected: it
//     blocks SIGUSR1 so it cannot be forwarded to the child. vaultrun should instead install a
//     process.on('SIGUSR1') listener early, which also stops SIGUSR1 from opening the inspector.)
//   - disableExperimentalSEAWarning, useSnapshot: the bundle is evaluated at build time and V8's heap is
//     stored in the executable, so a start deserialises it instead of compiling and running ~17k lines
//     (src/main.ts registers the start function with v8.startupSnapshot). Measured with callgrind, a start
//     with one reference: 283 M instructions with useCodeCache, 254 M with useSnapshot (docs/performance.md).
//     The snapshot cannot hold node:http, node:tls or node:sea state: those are loaded when used.
//   - the snapshot's main is not the bundle itself but a few lines (seaMain below) that compile the bundle with
//     V8's lazy compilation turned off and run it: every function of the bundle then has its bytecode in the
//     snapshot, and a start compiles none (it compiled about 100, those of the Vault client and of the start
//     itself, which cannot run at build time). Only the bundle: Node's own modules stay lazily compiled (a
//     whole build with --no-lazy grew the snapshot by 8 MiB and started slower). docs/performance.md.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  copyFileSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';

class BuildError extends Error {}

function fail(message) {
  throw new BuildError(message);
}

// The environment for the tools we run: no NODE_OPTIONS, so nothing from the caller's
// environment (e.g. --require hooks, --inspect) leaks into --build-sea.
function cleanEnv() {
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  return env;
}

function run(cmd, args, what) {
  const r = spawnSync(cmd, args, { env: cleanEnv(), encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.error) {
    if (r.error.code === 'ENOENT')
      fail(`${what}: '${cmd}' not found${cmd === 'strip' ? ' (apt-get install binutils)' : ''}`);
    fail(`${what}: ${r.error.message}`);
  }
  if (r.status !== 0) {
    const out = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim();
    fail(`${what} failed (${r.signal ?? `exit ${r.status}`})${out ? `:\n${out}` : ''}`);
  }
  return r.stdout;
}

// The pinned Node binary: node_modules/.bin/node links to the `node` package's binary.
function pinnedNode() {
  const link = join(root, 'node_modules', '.bin', 'node');
  let bin;
  try {
    bin = realpathSync(link);
  } catch {
    fail(`pinned Node binary not found at ${relative(process.cwd(), link)} (run npm ci)`);
  }
  let want;
  try {
    want = JSON.parse(readFileSync(join(root, 'node_modules', 'node', 'package.json'), 'utf8')).version;
  } catch {
    fail('node_modules/node/package.json not readable (run npm ci)');
  }
  const got = run(bin, ['--version'], 'pinned node --version').trim();
  if (got !== `v${want}`) fail(`pinned Node binary ${bin} is ${got}, expected v${want}`);
  const help = run(bin, ['--help'], 'pinned node --help');
  if (!help.includes('--build-sea')) fail(`pinned Node binary ${bin} (${got}) has no --build-sea`);
  return bin;
}

function checkExecutable(file) {
  const buf = readFileSync(file);
  if (buf.readUInt32BE(0) !== 0x7f454c46) fail(`${file} is not an ELF executable`);
  if (!buf.includes(`${SEA_FUSE}:1`)) fail(`${file} has no SEA blob (fuse not flipped)`);
}

/**
 * The snapshot's main script: reads the bundle (at build time: the executable does not keep this file's path),
 * compiles it as Node's CommonJS loader would, with --no-lazy for that one compilation, and runs it. It keeps
 * no reference to the text: the compiled function's script is the one copy in the snapshot.
 */
function seaMain(bundle) {
  const file = JSON.stringify(bundle);
  return `'use strict';
(() => {
  const v8 = process.getBuiltinModule('node:v8');
  const { compileFunction } = process.getBuiltinModule('node:vm');
  // The first line is the bundle's #! line, which is only allowed at the start of a script: a comment instead.
  const text = process.getBuiltinModule('node:fs').readFileSync(${file}, 'utf8').replace(/^#!/, '//');
  let run;
  v8.setFlagsFromString('--no-lazy');
  try {
    run = compileFunction(text, ['exports', 'require', 'module', '__filename', '__dirname'], { filename: ${file} });
  } finally {
    v8.setFlagsFromString('--lazy');
  }
  const module = { exports: {} };
  run.call(module.exports, module.exports, require, module, ${file}, ${JSON.stringify(dirname(bundle))});
})();
`;
}

function mib(bytes) {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

function main() {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        input: { type: 'string', default: join(root, 'dist', 'vaultrun.cjs') },
        output: { type: 'string', default: join(root, 'dist', 'vaultrun') },
        'keep-temp': { type: 'boolean', default: false },
        // For measurements (docs/performance.md): the code-cache build instead of the start-up snapshot.
        'no-snapshot': { type: 'boolean', default: false },
        // For profiling (callgrind, perf): Node's symbols kept, so that instructions are named.
        'keep-symbols': { type: 'boolean', default: false },
      },
      strict: true,
    }));
  } catch (e) {
    fail(
      `${e.message}\nusage: node scripts/build-exe.mjs [--input FILE.cjs] [--output FILE] [--keep-temp] [--no-snapshot] [--keep-symbols]`,
    );
  }
  const input = resolve(values.input);
  const output = resolve(values.output);
  try {
    if (!statSync(input).isFile()) fail(`input ${input} is not a file`);
  } catch (e) {
    if (e instanceof BuildError) throw e;
    fail(`input ${input} not found (run npm run build first)`);
  }

  const node = pinnedNode();
  const work = mkdtempSync(join(tmpdir(), 'vaultrun-sea-'));
  try {
    const base = join(work, 'node-stripped');
    copyFileSync(node, base);
    chmodSync(base, 0o755);
    if (!values['keep-symbols']) run('strip', ['--strip-all', base], 'strip');

    // Written next to the output, then renamed: a failed build never leaves a half-written file.
    const tmpOut = `${output}.tmp-${process.pid}`;
    const config = join(work, 'sea-config.json');
    // With useSnapshot the blob holds V8's heap, not the bundle's text: an asset with the bundle's SHA-256
    // says which bundle it was built from (test/support/exe.ts checks it).
    const digest = join(work, 'bundle.sha256');
    const main = join(work, 'sea-main.cjs');
    writeFileSync(main, seaMain(input));
    writeFileSync(
      digest,
      `vaultrun.cjs sha256 ${createHash('sha256').update(readFileSync(input)).digest('hex')}`,
    );
    writeFileSync(
      config,
      `${JSON.stringify(
        {
          main: values['no-snapshot'] ? input : main,
          mainFormat: 'commonjs',
          executable: base,
          output: tmpOut,
          disableExperimentalSEAWarning: true,
          useSnapshot: !values['no-snapshot'],
          useCodeCache: values['no-snapshot'],
          assets: { 'vaultrun.cjs.sha256': digest },
          execArgvExtension: 'none',
        },
        null,
        2,
      )}\n`,
    );
    try {
      run(node, ['--build-sea', config], 'node --build-sea');
      checkExecutable(tmpOut);
      chmodSync(tmpOut, 0o755);
      renameSync(tmpOut, output);
    } finally {
      rmSync(tmpOut, { force: true });
    }
  } finally {
    if (values['keep-temp']) process.stderr.write(`build-exe: kept ${work}\n`);
    else rmSync(work, { recursive: true, force: true });
  }
  const shown = output.startsWith(`${process.cwd()}/`) ? relative(process.cwd(), output) : output;
  process.stderr.write(`build-exe: ${shown} (${mib(statSync(output).size)})\n`);
}

try {
  main();
} catch (e) {
  process.stderr.write(`build-exe: error: ${e instanceof BuildError ? e.message : (e?.stack ?? e)}\n`);
  process.exitCode = 1;
}
