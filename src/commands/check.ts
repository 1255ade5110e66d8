import { Command } from 'commander';
import type { Config } from '../config.js';
import { mergeEnv, readEnvFile } from '../env/sources.js';
import { EXIT_CODES, VaultrunError } from '../errors.js';
import { filterText } from '../refs/filters.js';
import { type ImportSpec, importVariables } from '../refs/imports.js';
import { isLoginReference, LOGIN_REFERENCE } from '../refs/login.js';
import { parseValue, type Ref, readId, refsOf } from '../refs/parse.js';
import { evaluateRef, type Plan, type ReadResult, variableText } from '../refs/plan.js';
import { shortCiphertext } from '../refs/transit.js';
import { canonicalJson } from '../refs/write.js';
import { abandonStart, fetchReads, leasesOf, needsVault, openVault, prepare } from '../resolve.js';
import { isOwnSetting } from '../settings.js';
import { missingKeyHint } from '../suggest.js';
import { Deadline } from '../vault/deadline.js';
import type { SecretRead } from '../vault/kv.js';
import { revokeLease, revokeSelf } from '../vault/lease.js';
import type { CliIo } from './io.js';
import { addSettingOptions, envOnlyHelp } from './options.js';

/**
 * `vaultrun check`: every reference is resolved as a start would resolve it — same settings, one read per
 * unique path, same login — but no value is printed or written anywhere. The result is a table on stdout,
 * variable → reference → status, and the exit status says whether a start would succeed. Unlike a start it
 * does not stop at the first failure: every variable gets its own status.
 */
export type CheckStatus =
  | 'ok'
  | 'missing path'
  | 'missing key'
  | 'denied'
  | 'invalid'
  | 'error'
  | 'not written'
  | 'skipped';

export interface CheckRow {
  variable: string;
  /** PATH#KEY or PATH#KEY#VERSION; "-" for a value that is not a valid reference. */
  reference: string;
  status: CheckStatus;
  /** Exit status this row stands for (0 for ok). */
  exit: number;
  /** --ignore-missing: a missing path or key would leave the variable unset, so it does not fail the check. */
  ignored?: boolean;
  /** What went wrong (never a value). */
  message?: string;
  /** A `?` / `?=` reference: missing leaves the variable unset / uses the default, so it does not fail. */
  fallback?: 'unset' | 'default';
}

/** The reference as written, normalized; a default's text is not shown (`?=…`). */
export function referenceText(ref: Ref): string {
  if (ref.ciphertext !== undefined) return `${shortCiphertext(ref.ciphertext)} (transit)`;
  if (ref.write !== undefined) return `>>${ref.path}#${ref.key}#${canonicalJson(ref.write.body)}`;
  const filters = (ref.filters ?? []).map((f) => `|${filterText(f)}`).join('');
  const fallback = ref.default !== undefined ? '?=…' : ref.optional ? '?' : '';
  return `${ref.path}#${ref.key}${ref.version === undefined ? '' : `#${ref.version}`}${filters}${fallback}`;
}

const STATUS_OF_CODE: Partial<Record<VaultrunError['code'], CheckStatus>> = {
  NOT_FOUND: 'missing path',
  PERMISSION_DENIED: 'denied',
  USAGE: 'invalid',
};

/** Pure: the row for one reference of one variable, from what its read produced. */
export function checkRow(
  variable: string,
  ref: Ref,
  result: ReadResult | undefined,
  ignoreMissing: boolean,
  /** The variable is a secret file of this one reference (NAME_FILE=vault:…): any bytes fit. */
  asFile = false,
): CheckRow {
  const reference = referenceText(ref);
  let row: CheckRow;
  if (result === undefined) {
    row = { variable, reference, status: 'error', exit: EXIT_CODES.INTERNAL, message: 'no read was made' };
  } else if ('error' in result) {
    const status = STATUS_OF_CODE[result.error.code] ?? 'error';
    row = { variable, reference, status, exit: result.error.exitCode, message: result.error.message };
  } else if (ref.write !== undefined) {
    // `check` never writes: the path and its mount were checked; what a start would write is said.
    return {
      variable,
      reference,
      status: 'not written',
      exit: 0,
      message: `a start would POST ${canonicalJson(ref.write.body)} to ${ref.path} and take "${ref.key}" of the answer`,
    };
  } else if (!Object.hasOwn(result.data, ref.key)) {
    const keys = Object.keys(result.data).sort();
    row = {
      variable,
      reference,
      status: 'missing key',
      exit: EXIT_CODES.NOT_FOUND,
      message: `key "${ref.key}" not found at ${ref.path}; ${missingKeyHint(ref.key, keys)}`,
    };
  } else {
    // The filters run on the value here too (nothing of it is shown): a value they do not fit is a failure.
    try {
      const piece = evaluateRef(ref, variable, new Map([[readId(ref), result]]));
      if (!asFile) variableText(piece, variable, ref);
    } catch (error) {
      if (!(error instanceof VaultrunError)) throw error;
      return { variable, reference, status: 'invalid', exit: error.exitCode, message: error.message };
    }
    return { variable, reference, status: 'ok', exit: 0 };
  }
  if (row.exit === EXIT_CODES.NOT_FOUND && (ref.optional || ref.default !== undefined)) {
    row.ignored = true;
    row.fallback = ref.default !== undefined ? 'default' : 'unset';
  } else if (ignoreMissing && row.exit === EXIT_CODES.NOT_FOUND) row.ignored = true;
  return row;
}

/** Pure: the row of NAME=vault:login, from the capabilities of vaultrun's token on auth/token/create. */
export function loginRow(variable: string, capabilities: readonly unknown[]): CheckRow {
  if (capabilities.includes('update') || capabilities.includes('root')) {
    return { variable, reference: LOGIN_REFERENCE, status: 'ok', exit: 0 };
  }
  return {
    variable,
    reference: LOGIN_REFERENCE,
    status: 'denied',
    exit: EXIT_CODES.PERMISSION_DENIED,
    message: `${variable}=vault:login: vaultrun's token may not create a token for the command: its policies need path "auth/token/create" { capabilities = ["update"] }`,
  };
}

/** Pure: one row per reference (a variable with two inline references has two), in plan order. */
export function checkRows(
  plan: Plan,
  results: ReadonlyMap<string, ReadResult>,
  ignoreMissing: boolean,
): CheckRow[] {
  return plan.vars.flatMap((v) =>
    refsOf(v.parsed).map((ref) =>
      checkRow(
        v.name,
        ref,
        results.get(readId(ref)),
        ignoreMissing,
        v.target === 'file' && v.parsed.kind === 'whole',
      ),
    ),
  );
}

const SKIP_REASON = {
  'invalid name': 'not a valid variable name',
  'own setting': 'a vaultrun setting',
  explicit: 'set explicitly (wins over the import)',
} as const;

/**
 * Pure: the rows of the bulk imports: one per name an import would define (`ok`) or leaves out (`skipped`,
 * which does not fail), one `PREFIX*` row for an import whose read failed or that has no key; a name two
 * imports define is `invalid`. Values never appear.
 */
export function importRows(
  plan: Plan,
  results: ReadonlyMap<string, ReadResult>,
  ignoreMissing: boolean,
  ownSetting: (name: string) => boolean = isOwnSetting,
): CheckRow[] {
  if (plan.imports.length === 0) return [];
  const outcome = importVariables(plan.imports, results, plan.explicit, ownSetting);
  const rows: CheckRow[] = [];
  const reference = (spec: ImportSpec, key?: string) =>
    `${spec.path}${key === undefined ? '' : `#${key}`}${spec.version === undefined ? '' : `#${spec.version}`} (import)`;
  for (const spec of plan.imports) {
    const failed = outcome.failed.find((f) => f.from === spec);
    if (failed) {
      const status = STATUS_OF_CODE[failed.error.code] ?? 'error';
      const row: CheckRow = {
        variable: `${spec.prefix}*`,
        reference: reference(spec),
        status,
        exit: failed.error.exitCode,
        message: `--from-path ${spec.path}: ${failed.error.message}`,
      };
      if (ignoreMissing && row.exit === EXIT_CODES.NOT_FOUND) row.ignored = true;
      rows.push(row);
      continue;
    }
    const vars = outcome.vars.filter((v) => v.from === spec);
    const skipped = outcome.skipped.filter((v) => v.from === spec);
    for (const v of vars)
      rows.push({ variable: v.name, reference: reference(spec, v.key), status: 'ok', exit: 0 });
    for (const v of skipped) {
      rows.push({
        variable: v.name,
        reference: reference(spec, v.key),
        status: 'skipped',
        exit: 0,
        message: `key "${v.key}" of ${spec.path} is not imported: ${SKIP_REASON[v.reason]}`,
      });
    }
    if (vars.length + skipped.length === 0) {
      rows.push({ variable: `${spec.prefix}*`, reference: reference(spec), status: 'ok', exit: 0 });
    }
  }
  for (const conflict of outcome.conflicts) {
    rows.push({
      variable: conflict.message.slice(0, conflict.message.indexOf(':')),
      reference: '-',
      status: 'invalid',
      exit: conflict.exitCode,
      message: conflict.message,
    });
  }
  return rows;
}

/** Pure: 0 if every row is ok (or ignored), else the highest exit status among the failures. */
export function checkExitStatus(rows: readonly CheckRow[]): number {
  return rows.reduce((worst, row) => (row.ignored ? worst : Math.max(worst, row.exit)), 0);
}

/** Pure: the table, columns padded; `(ignored)` after a status that --ignore-missing tolerates. */
export function formatCheckTable(rows: readonly CheckRow[]): string {
  const header = ['VARIABLE', 'REFERENCE', 'STATUS'] as const;
  const mark = (r: CheckRow) =>
    r.fallback === 'default'
      ? ' (default used)'
      : r.fallback === 'unset'
        ? ' (optional: unset)'
        : ' (ignored)';
  const cells = rows.map((r) => [r.variable, r.reference, r.ignored ? `${r.status}${mark(r)}` : r.status]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => (c[i] ?? '').length)));
  const line = (c: readonly string[]) =>
    c
      .map((text, i) => (i === c.length - 1 ? text : text.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return `${[line(header), ...cells.map(line)].join('\n')}\n`;
}

export function buildCheckProgram(): Command {
  const program = new Command('vaultrun check')
    .usage('[options]')
    .description(
      'Check every reference in the environment (and --env-file files) against Vault without printing any\n' +
        'value: a table of variable, reference and status (ok, missing path, missing key, denied, invalid,\n' +
        'error) on stdout; the exit status is 0 if a start would succeed, else the highest failing status.',
    )
    .helpOption('-h, --help', 'show this help')
    .showHelpAfterError(false);
  addSettingOptions(program);
  program.addHelpText('after', ['', 'Credentials, environment only:', ...envOnlyHelp()].join('\n'));
  return program;
}

export async function runCheck(config: Config, io: CliIo): Promise<number> {
  const { log } = io;
  // Invalid references get a row each instead of stopping everything: find them in the merged environment
  // first (what prepare() would parse), and leave them out of the plan.
  const envFiles = await Promise.all(config.envFiles.map((path) => readEnvFile(path)));
  const merged = mergeEnv(io.env, envFiles, config.envFileOverride);
  const invalid: CheckRow[] = [];
  for (const name of Object.keys(merged).sort()) {
    if (config.passthrough.has(name) || isOwnSetting(name) || isLoginReference(merged[name])) continue;
    try {
      parseValue(name, merged[name] ?? '');
    } catch (error) {
      if (!(error instanceof VaultrunError)) throw error;
      invalid.push({
        variable: name,
        reference: '-',
        status: 'invalid',
        exit: error.exitCode,
        message: error.message,
      });
      delete merged[name];
    }
  }
  const prepared = await prepare({ ...config, envFiles: [] }, merged, log);
  const { plan } = prepared;
  let rows: CheckRow[] = [];
  if (needsVault(prepared)) {
    // One deadline (--wait) for the login and every read, as for a start.
    const vault = await openVault(config, log, new Deadline(config.waitMs));
    vault.noWrites = true;
    const reads = new Map<string, SecretRead>();
    try {
      let results: Map<string, ReadResult>;
      try {
        ({ results } = await fetchReads(vault, plan, new Map(), new Set(), reads));
        vault.client.deadline = undefined;
      } catch (error) {
        // Vault went away or refused us half-way: nothing of this check stays valid.
        await abandonStart(vault, leasesOf(plan, reads), config, log);
        throw error;
      }
      rows = [
        ...checkRows(plan, results, config.ignoreMissing),
        ...importRows(plan, results, config.ignoreMissing),
      ];
      if (prepared.loginVars.length > 0) {
        // NAME=vault:login: the check creates no token; it asks whether vaultrun's token may create one.
        const path = 'auth/token/create';
        const caps = await vault.client.request<Record<string, unknown>>('POST', 'sys/capabilities-self', {
          token: vault.session.token,
          body: { paths: [path] },
          what: `checking the capabilities of vaultrun's token on ${path}`,
        });
        const list = Array.isArray(caps?.[path]) ? (caps[path] as unknown[]) : [];
        rows.push(...prepared.loginVars.map((name) => loginRow(name, list)));
      }
      // A check leaves nothing behind: the dynamic secrets it had issued, and the token it logged in with.
      const leases = leasesOf(plan, reads);
      if (!config.revoke) {
        if (leases.length > 0)
          log.warn('--no-revoke: the dynamic secrets the check read stay valid', { leases: leases.length });
      } else if (vault.session.created) {
        await revokeSelf(vault.client, vault.session.token, 2_000).catch(() => {
          log.warn('could not revoke the token the check logged in with; it expires with its TTL');
        });
      } else {
        for (const lease of leases) {
          await revokeLease(vault.client, vault.session.token, lease.leaseId, lease.path, 2_000).catch(() => {
            log.warn('could not revoke a dynamic secret the check read; it expires with its lease', {
              path: lease.path,
            });
          });
        }
      }
    } finally {
      vault.client.close();
    }
  }
  rows = [...rows, ...invalid].sort((a, b) =>
    a.variable < b.variable ? -1 : a.variable > b.variable ? 1 : 0,
  );
  if (rows.length === 0) {
    log.info('no references in the environment: nothing to check');
    return 0;
  }
  io.stdout(formatCheckTable(rows));
  for (const row of rows) {
    if (row.status === 'not written' && row.message) {
      log.info(row.message, { variable: row.variable });
      continue;
    }
    if (row.status === 'ok' || !row.message) continue;
    if (row.status === 'skipped') {
      (row.message.endsWith(SKIP_REASON.explicit) ? log.info : log.warn)(row.message, {
        variable: row.variable,
      });
      continue;
    }
    (row.ignored ? log.warn : log.error)(row.message, { variable: row.variable, status: row.status });
  }
  const failed = rows.filter((r) => r.exit !== 0 && !r.ignored).length;
  const status = checkExitStatus(rows);
  const summary = `checked ${rows.length} reference${rows.length === 1 ? '' : 's'}: ${rows.length - failed} ok or ignored, ${failed} failed`;
  if (failed > 0) log.error(summary, { exit: status });
  else log.info(summary);
  return status;
}
