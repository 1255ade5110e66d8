/**
 * Transit ciphertexts in the environment (compatible with bank-vaults vault-env): a value `vault:v1:BASE64`
 * (or `${vault:v1:BASE64}` inside a value) is decrypted with the configured transit key, so encrypted values can
 * be committed to git or a compose file.
 *
 * Told apart from a reference by its shape alone: `vault:v` + key version + `:` + standard base64, and no `#`.
 * A reference always has `#KEY`, and base64 never contains `#`; so
 *   vault:v1:AbC=          ciphertext (key version 1)
 *   vault:v1#password      reference: path `v1`, key `password`
 *   vault:v1/app#password  reference: path `v1/app`
 *   vault:v1:AbC=#k        reference (it has a '#'): path `v1:AbC=` ('#' after a ciphertext makes it a reference)
 *   vault:v1:              neither: an invalid reference (no #KEY)
 * A ciphertext is a Ref with `ciphertext` set: it is planned, shared and rendered like a read, its "secret"
 * being `{ plaintext }`; the requests differ (src/vault/transit.ts: one batch per start).
 */
const CIPHERTEXT = /^vault:v[1-9][0-9]{0,9}:[A-Za-z0-9+/]+={0,2}$/;

/** Pure: whether a whole value (or the inside of `${…}`, with `vault:`) is a transit ciphertext. */
export function isCiphertext(text: string): boolean {
  return CIPHERTEXT.test(text);
}

/** The key a ciphertext's decrypted "secret" holds its plaintext under. */
export const PLAINTEXT_KEY = 'plaintext';

/** Pure: the reference standing for a ciphertext. Its path is a label for messages, never read. */
export function ciphertextRef(ciphertext: string): { path: string; key: string; ciphertext: string } {
  return { path: `transit ciphertext ${shortCiphertext(ciphertext)}`, key: PLAINTEXT_KEY, ciphertext };
}

/** Pure: a ciphertext shortened for messages and the check table (not secret, but long). */
export function shortCiphertext(ciphertext: string): string {
  return ciphertext.length > 20 ? `${ciphertext.slice(0, 17)}…` : ciphertext;
}
