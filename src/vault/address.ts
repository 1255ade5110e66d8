import { MASK } from '../log.js';

/**
 * Credentials in the Vault address: `https://user:password@host:8200` (for a proxy in front of Vault) is sent as
 * a Basic Authorization header. The password — with the `user:password` pair and its base64, which is what
 * goes on the wire — is a credential like a token: never printed (addresses in messages are shown through
 * displayAddress), registered with the masker, concealed from /proc/<pid>/environ, never passed to the command
 * and never accepted as a flag (a command line is visible to every process). An address with a user name only
 * (`https://key@host`) carries that name as its credential.
 */

/** The variables that hold the Vault address. */
export const ADDRESS_VARIABLES: readonly string[] = ['VAULT_ADDR', 'BAO_ADDR'];

/**
 * Pure: the address cut around its userinfo, as the URL parser cuts it: after "scheme://", up to the last "@"
 * before the authority ends (at "/", "\", "?" or "#"). Undefined without userinfo.
 */
function splitUserinfo(addr: string): { before: string; userinfo: string; after: string } | undefined {
  const scheme = /^\s*[A-Za-z][A-Za-z0-9+.-]*:\/\//.exec(addr);
  if (!scheme) return undefined;
  const start = scheme[0].length;
  let end = addr.length;
  for (let i = start; i < addr.length; i++) {
    const c = addr[i];
    if (c === '/' || c === '\\' || c === '?' || c === '#') {
      end = i;
      break;
    }
  }
  const at = addr.lastIndexOf('@', end - 1);
  if (at < start) return undefined;
  return { before: addr.slice(0, start), userinfo: addr.slice(start, at), after: addr.slice(at + 1) };
}

/** Pure: whether an address carries userinfo (`user:password@` or `user@`). */
export function hasUserinfo(addr: string | undefined): boolean {
  return addr !== undefined && splitUserinfo(addr) !== undefined;
}

/**
 * Pure: the address as messages show it: the password replaced by `<redacted>` (`https://admin:<redacted>@host`);
 * a user name without a password is the credential itself and is replaced (`https://<redacted>@host`).
 * Anything else is shown as given.
 */
export function displayAddress(addr: string): string {
  const parts = splitUserinfo(addr);
  if (!parts) return addr;
  const colon = parts.userinfo.indexOf(':');
  const shown = colon >= 0 ? `${parts.userinfo.slice(0, colon)}:${MASK}` : MASK;
  return `${parts.before}${shown}@${parts.after}`;
}

function decode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text; // a stray "%": taken as it is written
  }
}

/** Pure: the base64 `user:password` of a Basic Authorization header for the URL's userinfo, if it has one. */
export function basicCredentials(url: URL): string | undefined {
  if (!url.username && !url.password) return undefined;
  return Buffer.from(`${decode(url.username)}:${decode(url.password)}`).toString('base64');
}

/**
 * Pure: every form in which the address's credential could show up, for the masker: the password as written,
 * percent-encoded and decoded; the `user:password` pair in those forms; the base64 of the Basic header. (A user
 * name alone instead of the password when there is none.) Empty for an address without userinfo.
 */
export function addressCredentials(addr: string): string[] {
  const parts = splitUserinfo(addr);
  if (!parts) return [];
  const out = new Set<string>();
  const colon = parts.userinfo.indexOf(':');
  if (colon >= 0) out.add(parts.userinfo.slice(colon + 1));
  out.add(parts.userinfo);
  let url: URL | undefined;
  try {
    url = new URL(addr);
  } catch {
    url = undefined;
  }
  if (url && (url.username || url.password)) {
    const pair = `${url.username}:${url.password}`;
    if (url.password) {
      out.add(url.password);
      out.add(decode(url.password));
    } else {
      out.add(url.username);
      out.add(decode(url.username));
    }
    out.add(pair);
    out.add(`${decode(url.username)}:${decode(url.password)}`);
    out.add(basicCredentials(url) as string);
  }
  out.delete('');
  return [...out];
}
