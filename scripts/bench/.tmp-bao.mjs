import { writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { startOpenBao } from '../../test/support/openbao.ts';
const bao = await startOpenBao();
await bao.kvPut('bench/one', { ONE_0: 'one-value' });
const env1 = [`VAULT_ADDR=${bao.addr}`, `VAULT_TOKEN=${bao.rootToken}`, 'ONE_0=vault:secret/bench/one#ONE_0'];
const env200 = [`VAULT_ADDR=${bao.addr}`, `VAULT_TOKEN=${bao.rootToken}`];
for (let p = 0; p < 100; p++) {
  const path = `bench/p${String(p).padStart(3, '0')}`;
  const data = {};
  for (let k = 0; k < 2; k++) { const n = `S${String(p).padStart(3, '0')}_${k}`; data[n] = randomBytes(12).toString('hex'); env200.push(`${n}=vault:secret/${path}#${n}`); }
  await bao.kvPut(path, data);
}
writeFileSync('/tmp/env1', env1.join('\n') + '\n');
writeFileSync('/tmp/env200', env200.join('\n') + '\n');
writeFileSync('/tmp/bao-audit', bao.auditFile);
console.log('ready', bao.addr);
process.on('SIGTERM', async () => { await bao.stop(); process.exit(0); });
setInterval(() => {}, 1 << 30);
