import { VaultrunError } from '../errors.js';
import { pathProblem } from './path.js';

/**
 * Issue-on-start (write) references, compatible with bank-vaults vault-env's `>>vault:` form:
 *
 *   >>vault:PATH#KEY                  POST PATH with an empty body, take the field KEY of the answer
 *   >>vault:PATH#KEY#{JSON object}    POST PATH with that JSON body (the JSON may contain '#')
 *
 * Whole values only. The case they exist for is PKI: `>>vault:pki/issue/web#certificate#{"common_name":"api.internal"}`
 * — certificate, private_key and ca_chain of ONE issuance: every variable naming the same PATH and the same body
 * (compared as canonical JSON, key order ignored) shares one request. A write may only go to `issue/ROLE` of a
 * PKI mount (checked against the mount Vault reports, src/vault/issue.ts); the path follows the same grammar as
 * a read (path.ts: never sys/, auth/, identity/).
 */
export const WRITE_PREFIX = '>>vault:';

const GRAMMAR = 'expected >>vault:PATH#KEY or >>vault:PATH#KEY#{"field":"value",…}';

function invalid(variable: string, problem: string): VaultrunError {
  return new VaultrunError('USAGE', `${variable}: invalid write reference: ${problem}`, {
    hint: `${GRAMMAR}; list the variable in VAULTRUN_PASSTHROUGH to pass it through untouched`,
  });
}

/** Pure: JSON with object keys sorted, so that two spellings of one body are one request. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

export interface WriteRef {
  path: string;
  key: string;
  write: { body: Record<string, unknown> };
}

/** Pure: parses a whole value starting with `>>vault:` (a Ref of parse.ts, with `write`). */
export function parseWriteRef(variable: string, value: string): WriteRef {
  const rest = value.slice(WRITE_PREFIX.length);
  const first = rest.indexOf('#');
  if (first < 0) throw invalid(variable, 'missing #KEY after the path');
  const path = rest.slice(0, first).replace(/^\/+/, '').replace(/\/+$/, '');
  const afterPath = rest.slice(first + 1);
  const second = afterPath.indexOf('#');
  const key = second < 0 ? afterPath : afterPath.slice(0, second);
  const bodyText = second < 0 ? '{}' : afterPath.slice(second + 1);
  if (path === '') throw invalid(variable, 'empty path');
  const problem = pathProblem(path);
  if (problem) throw invalid(variable, problem);
  if (!/^(?:[^/]+\/)+issue\/[^/]+$/.test(path)) {
    throw invalid(variable, 'a write may only go to MOUNT/issue/ROLE (a PKI role)');
  }
  if (key === '') throw invalid(variable, 'empty key');
  let body: unknown;
  try {
    body = JSON.parse(bodyText);
  } catch {
    throw invalid(variable, 'the body after the second # is not valid JSON');
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw invalid(variable, 'the body must be a JSON object');
  }
  return { path, key, write: { body: body as Record<string, unknown> } };
}

/** The identity of one write: path and canonical body (no path starts with '#'). */
export function writeId(ref: { path: string; write?: { body: Record<string, unknown> } }): string {
  return `#write#${ref.path}#${canonicalJson(ref.write?.body ?? {})}`;
}
