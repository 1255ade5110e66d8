import { buildProgram } from './cli.js';
import { parseArgv, settingFlagValues } from './commands/options.js';
import { loadConfig } from './config.js';
import { createLogger } from './log.js';
import { readId, refsOf } from './refs/parse.js';
import type { ReadResult } from './refs/plan.js';
import { needsVault, prepare, renderEnvironment } from './resolve.js';
import { entriesToBlank, environBounds } from './run/conceal.js';
import { neutralisedIn } from './run/node-env.js';
import { requestUrl } from './vault/client.js';
import { parseResponseHead, requestHead, requestHeaders } from './vault/transport.js';

/**
 * Run once, while the single executable's start-up snapshot is made (src/main.ts), never in a start: the pure
 * steps of a start on made-up input, so that the functions they run are compiled then and V8 keeps their
 * bytecode in the snapshot — a start then does not parse and compile them again (docs/performance.md has what
 * it saves). And node:net, which every start with a Vault address loads, is loaded into the snapshot.
 *
 * Nothing here touches the process or keeps anything: no environment, no file, no socket, no module state — a
 * throwaway program, logger and configuration, all dropped when it returns. The values are made up.
 */
export function warmUp(): void {
  process.getBuiltinModule('node:net');
  const env: Record<string, string> = {
    VAULT_ADDR: 'http://127.0.0.1:8200',
    A: 'vault:secret/warm/a#k',
    B: 'x-${vault:kv/warm/b#k#2}-y',
    C: 'plain',
  };
  const program = buildProgram();
  parseArgv(program, ['--log-level', 'debug', '--', 'true'], () => {});
  const config = loadConfig(settingFlagValues(program), env);
  const log = createLogger({ level: 'debug', write: () => {} });
  // prepare() is asynchronous (it reads env files; there are none here): it finishes in the microtasks run
  // before the snapshot is taken. A failure fails the build.
  void prepare(config, env, log).then((prepared) => {
    needsVault(prepared);
    const results = new Map<string, ReadResult>();
    for (const ref of prepared.plan.vars.flatMap((v) => refsOf(v.parsed))) {
      results.set(readId(ref), { data: { k: 'v' } });
    }
    renderEnvironment(config, prepared, results, log);
  });
  neutralisedIn(env, true);
  const block = Buffer.from('A=1\0VAULT_TOKEN=x\0');
  entriesToBlank(block, (name) => name === 'VAULT_TOKEN');
  environBounds('1 (vaultrun) S 0');
  log.info('warm', { a: 'b', n: 1 });
  log.debug('warm', { path: 'secret/warm/a' });
  const url = requestUrl(config.addr, 'secret/data/warm');
  requestHead('GET', url, requestHeaders('GET', url, { 'X-Vault-Request': 'true' }, undefined));
  parseResponseHead(
    Buffer.from('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}'),
    'GET',
  );
}
