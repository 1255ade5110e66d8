// The sample Dify secrets of examples/dify/secrets.json (KV v2 path → keys), with fresh random values, and
// writing them to a Vault/OpenBao server. Used by `npm run demo` (scripts/demo.mjs) and by the test that checks
// every reference in the examples resolves (test/integration/examples.test.ts), so both see the same secrets.
// Plain TypeScript that Node runs directly (type stripping): no imports but node: modules.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';

/** KV v2 path as written in references (e.g. `secret/dify/db`) → key → value. */
export type SampleSecrets = Record<string, Record<string, string>>;

/** What writes a KV v2 secret: test/support/openbao.ts's OpenBao has it. */
export interface KvWriter {
  kvPut(path: string, data: Record<string, unknown>, mount?: string): Promise<void>;
}

const LAYOUT = new URL('../examples/dify/secrets.json', import.meta.url);

/** examples/dify/secrets.json without its comment: path → keys. */
export function sampleLayout(): Record<string, string[]> {
  const json = JSON.parse(readFileSync(LAYOUT, 'utf8')) as Record<string, unknown>;
  return Object.fromEntries(
    Object.entries(json)
      .filter(([path]) => !path.startsWith('$'))
      .map(([path, keys]) => [path, keys as string[]]),
  );
}

/** Random values (24 URL-safe characters) for every key; `username` is `dify`. */
export function makeSampleSecrets(layout: Record<string, string[]> = sampleLayout()): SampleSecrets {
  return Object.fromEntries(
    Object.entries(layout).map(([path, keys]) => [
      path,
      Object.fromEntries(
        keys.map((k) => [k, k === 'username' ? 'dify' : randomBytes(18).toString('base64url')]),
      ),
    ]),
  );
}

/** Writes each secret at its path: the first path segment is the KV v2 mount (`secret`). */
export async function writeSampleSecrets(bao: KvWriter, secrets: SampleSecrets): Promise<void> {
  for (const [path, data] of Object.entries(secrets)) {
    const slash = path.indexOf('/');
    await bao.kvPut(path.slice(slash + 1), data, path.slice(0, slash));
  }
}
