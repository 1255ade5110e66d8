import { createHash } from 'node:crypto';
import type { Config } from './config.js';
import { applyFileEnv, planFileEnv, readFileEnvSource } from './env/file-env.js';
import { withNames } from './env/names.js';
import type { ReadAs } from './env/read-limited.js';
import { scrubEnvironment } from './env/scrub.js';
import {
  prepareRuntimeDir,
  removeSecretFiles,
  runtimeDirCandidates,
  secretFileName,
  writeSecretFile,
} from './env/secret-files.js';
import { mergeEnv, readEnvFile } from './env/sources.js';
import { VaultrunError } from './errors.js';
import type { Logger } from './log.js';
import { loginVariables } from './refs/login.js';
import { lookalikeProblem } from './refs/lookalike.js';
import { readId, refsOf } from './refs/parse.js';
import {
  isFileVariable,
  type Plan,
  planReferences,
  type ReadRequest,
  type ReadResult,
  renderPlan,
  secretToString,
} from './refs/plan.js';
import { isOwnSetting } from './settings.js';
import { login } from './vault/auth.js';
import type { Session } from './vault/auth-types.js';
import { type ChildToken, createChildToken } from './vault/child-token.js';
import { VaultClient } from './vault/client.js';
import { Deadline, monotonicMs } from './vault/deadline.js';
import { checkWritable, issueSecret } from './vault/issue.js';
import { MountResolver, readSecret, type SecretRead } from './vault/kv.js';
import { revokeLease, revokeSelf } from './vault/lease.js';
import { loadTls } from './vault/tls.js';
import { decryptAll, type TransitSettings } from './vault/transit.js';

/**
 * The library API. One resolution is three stages, each usable on its own (the supervisor re-runs them when a
 * secret changes, re-reading only what changed):
 *   prepare      sources (process env, env files, NAME_FILE paths) → plan (pure)       [files]
 *   fetchReads   login once, then one read per unique (path, version), in parallel       [Vault]
 *   materialize  render (pure) → secret files → scrub → the command's environment        [files]
 * No references → no Vault contact at all.
 */
export interface Prepared {
  env: Record<string, string>;
  plan: Plan;
  /** Local files the environment came from (env files, NAME_FILE sources): what a watcher watches. */
  sourceFiles: string[];
  /**
   * The SHA-256 of each source file's text exactly as it was read here: what the watcher compares with, so
   * that a change made after this read — even before the watch is installed — is seen.
   */
  sourceHashes: Record<string, string>;
  /** NAME=vault:login: the variables that get the command's token (refs/login.ts), sorted. */
  loginVars: string[];
}

/**
 * `readAs` (--user): env files and NAME_FILE sources are read as the command's user, so that the command never
 * gets a content it could not read itself (a source it swapped for a symlink to a root-only file is exit 74).
 */
export async function prepare(
  config: Config,
  processEnv: Readonly<Record<string, string | undefined>>,
  log: Logger,
  readAs?: ReadAs,
): Promise<Prepared> {
  const sourceHashes: Record<string, string> = {};
  const envFiles = await Promise.all(
    config.envFiles.map((path) =>
      readEnvFile(
        path,
        (text) => {
          sourceHashes[path] = sha256(text);
        },
        readAs,
      ),
    ),
  );
  let env = mergeEnv(processEnv, envFiles, config.envFileOverride);
  const sourceFiles = [...config.envFiles];
  // NAME_FILE=/path → NAME. File contents are taken literally: never parsed as references.
  const taken = new Set<string>(); // NAME_FILE sources and vault:login variables: never references
  const literal = withNames(config.passthrough, taken);
  if (config.fileEnv) {
    const sources = planFileEnv(env, {
      dirs: config.fileEnvDirs,
      exclude: config.fileEnvExclude,
      passthrough: config.passthrough,
      isOwnSetting,
    });
    const contents = await Promise.all(
      sources.map(async (source) => ({
        source,
        value: await readFileEnvSource(
          source,
          (text) => {
            sourceHashes[source.path] = sha256(text);
          },
          readAs,
        ),
      })),
    );
    env = applyFileEnv(env, contents);
    for (const { source } of contents) {
      taken.add(source.name);
      sourceFiles.push(source.path);
      log.debug('read variable from file', { variable: source.name, from: source.fileVar });
    }
  }
  const loginVars = loginVariables(env, literal, isOwnSetting);
  for (const name of loginVars) taken.add(name);
  const plan = planReferences(env, {
    passthrough: literal,
    fileEnv: config.fileEnv,
    isOwnSetting,
    imports: config.fromPaths,
  });
  const planned = new Set(plan.vars.map((v) => v.name));
  for (const [name, value] of Object.entries(env).sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (value === undefined || planned.has(name) || literal.has(name) || isOwnSetting(name)) continue;
    const problem = lookalikeProblem(value);
    if (problem) {
      log.warn(`${name} looks like a Vault reference but is not one: ${problem}; it is passed on unchanged`, {
        hint: 'write vault:PATH#KEY or ${vault:PATH#KEY}, or list the variable in VAULTRUN_PASSTHROUGH',
      });
    }
  }
  return { env, plan, sourceFiles, sourceHashes, loginVars };
}

/** SHA-256 of a text, hex (what the watcher compares: never the content itself). */
export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** A logged-in connection to Vault: the client, the session and the mount cache. */
export interface VaultContext {
  client: VaultClient;
  session: Session;
  mounts: MountResolver;
  /** The token we created was revoked already (nothing needed it any more). */
  tokenRevoked?: boolean;
  /** What decrypts transit ciphertexts (--transit-key, --transit-mount). */
  transit?: TransitSettings;
  /** `check`: write references are checked (path, mount) but not written. */
  noWrites?: boolean;
  /** NAME=vault:login: the command's token (a child of ours), once created. */
  childToken?: ChildToken;
}

/** Whether a prepared environment needs Vault at all: references, or NAME=vault:login. */
export function needsVault(prepared: Prepared): boolean {
  return prepared.plan.reads.length > 0 || prepared.loginVars.length > 0;
}

/** NAME=vault:login: creates the command's token unless it has one (under the current session). */
export async function ensureChildToken(
  vault: VaultContext,
  prepared: Prepared,
  config: Config,
  log: Logger,
): Promise<ChildToken | undefined> {
  if (prepared.loginVars.length === 0) return undefined;
  vault.childToken ??= await createChildToken(vault.client, vault.session.token, config.childToken, log);
  return vault.childToken;
}

/**
 * Creates the client and logs in. `deadline`: the start's --wait deadline, which then bounds every request
 * (login, mount lookups, reads) until the caller clears `client.deadline`. `prefetch`: a path the start will
 * read; with a token given (the token method), its mount look-up is sent alongside the token check instead of
 * after it — the same requests, one round trip less. Not with `--consistency leader` (both would ask
 * sys/leader first). When the token turns out invalid, that look-up was one request more (refused like the
 * check).
 */
export async function openVault(
  config: Config,
  log: Logger,
  deadline?: Deadline,
  prefetch?: string,
): Promise<VaultContext> {
  const client = await VaultClient.create(
    {
      addr: config.addr,
      ...(config.namespace ? { namespace: config.namespace } : {}),
      tls: await loadTls(config),
      timeoutMs: config.clientTimeoutMs,
      waitMs: config.waitMs,
      concurrency: config.concurrency,
      consistency: config.consistency,
      clusterAddrs: config.clusterAddrs,
      ...(config.addrIsDefault ? { addrIsDefault: true } : {}),
    },
    log,
  );
  if (config.addrIsDefault) {
    log.warn(`VAULT_ADDR is not set: using the default ${config.addr}`, {
      hint: "set VAULT_ADDR (or --addr) to your Vault's address",
    });
  }
  client.deadline = deadline;
  try {
    let early: MountResolver | undefined;
    const session = await login(client, config.auth, log, {
      tokenKnown: (token) => {
        if (prefetch === undefined || config.consistency === 'leader') return;
        early = new MountResolver(client, token, log);
        early.prefetch(prefetch);
      },
    });
    return {
      client,
      session,
      mounts: early ?? new MountResolver(client, session.token, log),
      transit: { mount: config.transitMount, key: config.transitKey },
    };
  } catch (error) {
    client.close();
    throw error;
  }
}

export interface Lease {
  leaseId: string;
  /** The read (path#version) it came from. */
  readId: string;
  path: string;
  durationS: number;
  renewable: boolean;
}

/**
 * Reads each unique (path, version) of the plan once, in parallel (the client bounds concurrency). Reads whose
 * id is in `cache` (and not in `refresh`) are reused. Per-read failures become error results, so a message can
 * name every variable; unreachable Vault and refused logins fail the whole fetch, once every read has ended
 * (so that `reads`, when given, holds every secret obtained — and its lease — even then).
 */
export async function fetchReads(
  vault: VaultContext,
  plan: Plan,
  cache: ReadonlyMap<string, SecretRead> = new Map(),
  refresh: ReadonlySet<string> = new Set(),
  reads: Map<string, SecretRead> = new Map(),
): Promise<{ results: Map<string, ReadResult>; reads: Map<string, SecretRead> }> {
  const results = new Map<string, ReadResult>();
  const ciphertexts = plan.reads.filter((r) => r.ciphertext !== undefined);
  const settled = await Promise.allSettled([
    fetchCiphertexts(vault, ciphertexts, cache, refresh, reads, results),
    ...plan.reads
      .filter((r) => r.ciphertext === undefined)
      .map(async (read) => {
        const cached = refresh.has(read.id) ? undefined : cache.get(read.id);
        try {
          if (read.write && vault.noWrites) {
            await checkWritable(vault.mounts, read);
            results.set(read.id, { data: {} });
            return;
          }
          const secret =
            cached ??
            (read.write
              ? await issueSecret(vault.client, vault.mounts, vault.session.token, read)
              : await readSecret(vault.client, vault.mounts, vault.session.token, read));
          reads.set(read.id, secret);
          results.set(read.id, { data: secret.data });
        } catch (error) {
          if (!(error instanceof VaultrunError)) throw error;
          if (error.code === 'UNREACHABLE' || error.code === 'LOGIN_FAILED') throw error;
          results.set(read.id, { error });
        }
      }),
  ]);
  for (const outcome of settled) if (outcome.status === 'rejected') throw outcome.reason;
  return { results, reads };
}

/** The transit ciphertexts of a plan not in `cache` (or to refresh): decrypted in one batch request. */
async function fetchCiphertexts(
  vault: VaultContext,
  ciphertexts: readonly ReadRequest[],
  cache: ReadonlyMap<string, SecretRead>,
  refresh: ReadonlySet<string>,
  reads: Map<string, SecretRead>,
  results: Map<string, ReadResult>,
): Promise<void> {
  const todo: ReadRequest[] = [];
  for (const read of ciphertexts) {
    const cached = refresh.has(read.id) ? undefined : cache.get(read.id);
    if (!cached) {
      todo.push(read);
      continue;
    }
    reads.set(read.id, cached);
    results.set(read.id, { data: cached.data });
  }
  if (todo.length === 0) return;
  let decrypted: Map<string, SecretRead | VaultrunError>;
  try {
    decrypted = await decryptAll(
      vault.client,
      vault.session.token,
      vault.transit ?? { mount: 'transit' },
      todo,
    );
  } catch (error) {
    if (!(error instanceof VaultrunError)) throw error;
    if (error.code === 'UNREACHABLE' || error.code === 'LOGIN_FAILED') throw error;
    for (const read of todo) results.set(read.id, { error });
    return;
  }
  for (const [id, outcome] of decrypted) {
    if (outcome instanceof VaultrunError) {
      results.set(id, { error: outcome });
    } else {
      reads.set(id, outcome);
      results.set(id, { data: outcome.data });
    }
  }
}

export function leasesOf(plan: Plan, reads: ReadonlyMap<string, SecretRead>): Lease[] {
  return plan.reads.flatMap((r) => {
    const s = reads.get(r.id);
    return s?.leaseId
      ? [
          {
            leaseId: s.leaseId,
            readId: r.id,
            path: r.path,
            durationS: s.leaseDuration,
            renewable: s.renewable,
          },
        ]
      : [];
  });
}

/** The rendered values before any file is written: what the supervisor compares to decide "changed?". */
export interface Rendered {
  /** The command's environment, secret-file variables still unset (see `fileValues`). */
  env: Record<string, string>;
  /** Secret-file variable → content (bytes when a filter decoded binary content). */
  fileValues: Record<string, string | Uint8Array>;
  /** Variables defined by bulk imports (--from-path). */
  imported?: string[];
}

/**
 * Pure except for the masker: render, apply --ignore-missing, scrub; then NAME=vault:login variables get
 * `commandToken` (after the scrub, which removes VAULT_TOKEN as our credential; NAME_FILE: a secret file).
 */
export function renderEnvironment(
  config: Config,
  prepared: Prepared,
  results: ReadonlyMap<string, ReadResult>,
  log: Logger,
  commandToken?: string,
): Rendered {
  const { plan } = prepared;
  // Every value used is masked in logs from here on.
  for (const ref of plan.vars.flatMap((v) => refsOf(v.parsed))) {
    const result = results.get(readId(ref));
    if (result && 'data' in result && Object.hasOwn(result.data, ref.key)) {
      log.masker.add(secretToString(result.data[ref.key]));
    }
  }
  const rendered = renderPlan(plan, results, { ignoreMissing: config.ignoreMissing, isOwnSetting });
  // What filters made of them too (a base64-decoded secret is as secret as its encoding).
  for (const text of rendered.secrets) log.masker.add(text);
  const env = { ...prepared.env };
  for (const { name, reason, optional } of rendered.skipped) {
    if (optional)
      log.info('variable left unset (optional reference, missing in Vault)', { variable: name, reason });
    else log.warn('variable left unset (--ignore-missing)', { variable: name, reason });
    delete env[name];
  }
  for (const { key, from, reason } of rendered.importSkipped) {
    if (reason === 'explicit') {
      log.debug('an explicit variable wins over an imported one', {
        variable: `${from.prefix}${key}`,
        path: from.path,
      });
    } else {
      log.warn(
        reason === 'invalid name'
          ? 'a key of an imported secret is not a valid variable name: skipped'
          : 'a key of an imported secret is a vaultrun setting: skipped',
        { key, path: from.path },
      );
    }
  }
  if (rendered.imported.length > 0) {
    log.debug('imported variables', { variables: rendered.imported.join(',') });
  }
  Object.assign(env, rendered.env);
  for (const name of Object.keys(rendered.files)) delete env[name];
  const scrubbed = scrubEnvironment(env, config.passthrough);
  for (const name of scrubbed.refusedPassthrough) {
    log.warn('credential listed in VAULTRUN_PASSTHROUGH is never passed to the command', { variable: name });
  }
  if (scrubbed.removed.length) {
    log.debug('removed from the command environment', { variables: scrubbed.removed.join(',') });
  }
  // Last guard, whatever the value's source (a reference, an import, an env file): an environment cannot hold
  // NUL, and execve would refuse the whole environment as if the command were not executable.
  for (const [name, value] of Object.entries(scrubbed.env)) {
    if (value.includes('\0')) {
      throw new VaultrunError(
        'USAGE',
        `${name}: the value holds a NUL byte, which an environment variable cannot hold`,
        {
          hint: `give it to the command as a file instead (${name}_FILE=…: a secret file holds any bytes)`,
        },
      );
    }
  }
  const fileValues = rendered.files;
  for (const name of prepared.loginVars) {
    if (commandToken === undefined) {
      throw new VaultrunError('INTERNAL', `${name}=vault:login: no token was created for the command`);
    }
    if (config.fileEnv && isFileVariable(name)) fileValues[name] = commandToken;
    else scrubbed.env[name] = commandToken;
  }
  return { env: scrubbed.env, fileValues, imported: rendered.imported };
}

/** Writes the secret files (atomically, 0400, this process's private directory); the final environment. */
export async function writeFiles(
  config: Config,
  rendered: Rendered,
  log: Logger,
  owner?: { uid: number; gid: number },
): Promise<{ env: Record<string, string>; files: Record<string, string> }> {
  const env = { ...rendered.env };
  const files: Record<string, string> = {};
  const names = Object.keys(rendered.fileValues).sort();
  if (names.length === 0) return { env, files };
  const dir = await prepareRuntimeDir(runtimeDirCandidates(config.runtimeDir, env), log, {
    ...(owner ? { owner } : {}),
    explicit: Boolean(config.runtimeDir),
  });
  for (const name of names) {
    files[name] = await writeSecretFile(
      dir,
      secretFileName(name),
      rendered.fileValues[name] ?? '',
      0o400,
      owner,
    );
    env[name] = files[name];
  }
  return { env, files };
}

export interface Resolution {
  /** The environment for the command. */
  env: Record<string, string>;
  /** Secret files written: variable → path. */
  files: Record<string, string>;
  prepared: Prepared;
  plan: Plan;
  rendered: Rendered;
  /** Leases of dynamic secrets read (KV has none). */
  leases: Lease[];
  /** What was read, by read id (for a supervisor's cache). */
  reads: Map<string, SecretRead>;
  session?: Session;
  /** Variables whose value came from Vault. */
  resolvedNames: string[];
  stats: { references: number; paths: number; requests: number; ms: number };
}

export interface ResolveContext {
  config: Config;
  env: Readonly<Record<string, string | undefined>>;
  log: Logger;
  /** Keep the Vault connection open and return it (the supervisor renews with it). */
  keepVault?: boolean;
  /** Owner of secret files (--user). */
  owner?: { uid: number; gid: number };
  /** --user: whom env files and NAME_FILE sources are read as. */
  readAs?: ReadAs;
}

/** One whole resolution: prepare → fetch → render → files. */
export async function resolveEnvironment(
  ctx: ResolveContext,
): Promise<Resolution & { vault?: VaultContext }> {
  const { config, log } = ctx;
  const started = monotonicMs();
  const prepared = await prepare(config, ctx.env, log, ctx.readAs);
  const { plan } = prepared;
  let vault: VaultContext | undefined;
  let results = new Map<string, ReadResult>();
  const reads = new Map<string, SecretRead>();
  try {
    if (needsVault(prepared)) {
      // One deadline (--wait) for everything this start asks Vault: login, mount lookups, reads.
      const first = plan.reads.find((r) => r.ciphertext === undefined);
      vault = await openVault(config, log, new Deadline(config.waitMs), first?.path);
      ({ results } = await fetchReads(vault, plan, new Map(), new Set(), reads));
      await ensureChildToken(vault, prepared, config, log);
      vault.client.deadline = undefined;
    }
    const rendered = renderEnvironment(config, prepared, results, log, vault?.childToken?.token);
    const { env, files } = await writeFiles(config, rendered, log, ctx.owner);
    const resolution: Resolution & { vault?: VaultContext } = {
      env,
      files,
      prepared,
      plan,
      rendered,
      leases: leasesOf(plan, reads),
      reads,
      resolvedNames: [
        ...plan.vars.map((v) => v.name),
        ...(rendered.imported ?? []),
        ...prepared.loginVars,
      ].filter((n) => n in env),
      stats: {
        references: plan.referenceCount + prepared.loginVars.length,
        paths: plan.reads.length,
        requests: vault?.client.requests ?? 0,
        ms: Math.round(monotonicMs() - started),
      },
      ...(vault ? { session: vault.session } : {}),
      ...(vault && ctx.keepVault ? { vault } : {}),
    };
    if (vault && !ctx.keepVault) vault.client.close();
    return resolution;
  } catch (error) {
    await abandonStart(vault, leasesOf(plan, reads), config, log);
    vault?.client.close();
    throw error;
  }
}

/** The one summary line of a start: "resolved 12 references from 5 paths in 84 ms via approle". */
export function summaryLine(resolution: Pick<Resolution, 'stats' | 'session'>): string {
  const { references, paths, ms } = resolution.stats;
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
  return `resolved ${plural(references, 'reference')} from ${plural(paths, 'path')} in ${ms} ms via ${resolution.session?.method ?? 'none'}`;
}

/**
 * A token vaultrun logged in for and that nothing will use any more (no lease depends on it): revoked rather
 * than left valid until its TTL. Best effort (2 s): the values are already out.
 */
export async function revokeUnusedLogin(
  vault: VaultContext | undefined,
  config: Config,
  log: Logger,
): Promise<void> {
  if (!vault?.session.created || !config.revoke) return;
  if (vault.childToken) {
    // The command's token is a child of ours: revoking ours would revoke it.
    log.debug("keeping vaultrun's token: the command's token (NAME=vault:login) is its child");
    return;
  }
  await revokeSelf(vault.client, vault.session.token, 2_000).then(
    () => {
      vault.tokenRevoked = true;
    },
    () => {
      log.debug('could not revoke the login token');
    },
  );
}

/** How long revoking what a failed start obtained may take, at most. */
export const ABANDON_MS = 2_000;

/**
 * A start that failed after logging in (a missing key, a denied read, a command that cannot run, a secret file
 * that cannot be written, …) leaves nothing behind that a crash loop would pile up: the leases it obtained and
 * the token it created by logging in are revoked — a token it was given (VAULT_TOKEN, a token file) never —,
 * and the secret files it wrote are removed with their per-process directory (removeSecretFiles: only this
 * process's own, also those written before a write failed half-way). Best effort, within ABANDON_MS: what a Vault that went away could
 * not revoke stays valid until its TTL. --no-revoke keeps them, as on any exit.
 */
export async function abandonStart(
  vault: VaultContext | undefined,
  leases: readonly Lease[],
  config: Config,
  log: Logger,
): Promise<void> {
  const ownToken = Boolean(vault?.session.created && !vault.tokenRevoked);
  const child = vault?.childToken;
  if (vault && !config.revoke) {
    if (ownToken || leases.length > 0 || child) {
      log.warn('--no-revoke: the token and the leases of this failed start stay valid until they expire', {
        leases: leases.length,
      });
    }
  } else if (vault && (ownToken || leases.length > 0 || child)) {
    const { client, session } = vault;
    client.deadline = new Deadline(ABANDON_MS);
    const codeOf = (error: unknown) => (error instanceof VaultrunError ? error.code : 'error');
    if (child) {
      // Revoked by itself (revoke-self, with its own token): also when our token is one we were given.
      await revokeSelf(client, child.token).then(
        () => {
          vault.childToken = undefined;
          log.debug("revoked the command's token of the failed start");
        },
        (error: unknown) =>
          log.warn("could not revoke the command's token of the failed start: it expires with its TTL", {
            code: codeOf(error),
          }),
      );
    }
    // Revoked one by one first (at once, where the policy allows it); revoking our token revokes them too.
    await Promise.all(
      leases.map((lease) =>
        revokeLease(client, session.token, lease.leaseId, lease.path).then(
          () => log.debug('revoked a lease of the failed start', { path: lease.path }),
          (error: unknown) => {
            const code = codeOf(error);
            if (ownToken && code === 'PERMISSION_DENIED') return; // revoked with the token below
            log.warn(
              'could not revoke a dynamic secret read by the failed start: it expires with its lease',
              {
                path: lease.path,
                code,
              },
            );
          },
        ),
      ),
    );
    if (ownToken) {
      await revokeSelf(client, session.token).then(
        () => {
          vault.tokenRevoked = true;
          log.debug('revoked the token of the failed start');
        },
        (error: unknown) =>
          log.warn('could not revoke the token of the failed start: it expires with its TTL', {
            code: codeOf(error),
          }),
      );
    }
    client.deadline = undefined;
  }
  await removeSecretFiles();
}
