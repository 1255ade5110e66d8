import type { Config } from './config.js';
import { applyFileEnv, type FileEnvSource, planFileEnv, readFileEnvSource } from './env/file-env.js';
import { scrubEnvironment } from './env/scrub.js';
import {
  prepareRuntimeDir,
  runtimeDirCandidates,
  secretFileName,
  writeSecretFile,
} from './env/secret-files.js';
import { mergeEnv, readEnvFile } from './env/sources.js';
import { VaultrunError } from './errors.js';
import type { Logger } from './log.js';
import { readId, refsOf } from './refs/parse.js';
import { type Plan, planReferences, type ReadResult, renderPlan, secretToString } from './refs/plan.js';
import { isOwnSetting } from './settings.js';
import { login, type Session } from './vault/auth.js';
import { VaultClient } from './vault/client.js';
import { MountResolver, readSecret, type SecretRead } from './vault/kv.js';
import { loadTls } from './vault/tls.js';

/**
 * The library API: one resolution, from an environment to the child's environment and secret files.
 *   sources (process env, env files, *_FILE paths) → plan (pure) → login + one read per unique path
 *   (parallel, bounded) → render (pure) → secret files → scrub.
 * No references → no Vault contact at all.
 */
export interface Lease {
  leaseId: string;
  path: string;
  durationS: number;
  renewable: boolean;
}

export interface Resolution {
  /** The environment for the command. */
  env: Record<string, string>;
  /** Secret files written: variable → path. */
  files: Record<string, string>;
  plan: Plan;
  /** Leases of dynamic secrets read (KV has none). */
  leases: Lease[];
  session?: Session;
  /** Variables whose value came from Vault (for `resolve` output and for masking). */
  resolvedNames: string[];
  stats: { references: number; paths: number; requests: number; ms: number };
}

export interface ResolveContext {
  config: Config;
  env: Readonly<Record<string, string | undefined>>;
  log: Logger;
  /** Keep the Vault client open (the supervisor renews with it); default: closed at the end. */
  keepClient?: boolean;
}

export async function resolveEnvironment(
  ctx: ResolveContext,
): Promise<Resolution & { client?: VaultClient }> {
  const { config, log } = ctx;
  const started = performance.now();

  // 1. Sources.
  const envFiles = await Promise.all(config.envFiles.map(readEnvFile));
  let env = mergeEnv(ctx.env, envFiles, config.envFileOverride);

  // 2. NAME_FILE=/path → NAME (file contents are taken literally: never parsed as references).
  const literal = new Set(config.passthrough);
  if (config.fileEnv) {
    const sources: FileEnvSource[] = planFileEnv(env, {
      dirs: config.fileEnvDirs,
      exclude: config.fileEnvExclude,
      passthrough: config.passthrough,
      isOwnSetting,
    });
    const contents = await Promise.all(
      sources.map(async (source) => ({ source, value: await readFileEnvSource(source) })),
    );
    env = applyFileEnv(env, contents);
    for (const { source } of contents) {
      literal.add(source.name);
      log.debug('read variable from file', { variable: source.name, from: source.fileVar });
    }
  }

  // 3. The plan.
  const plan = planReferences(env, { passthrough: literal, fileEnv: config.fileEnv, isOwnSetting });
  const files: Record<string, string> = {};
  const leases: Lease[] = [];
  let session: Session | undefined;
  let client: VaultClient | undefined;

  if (plan.vars.length > 0) {
    // 4. Fetch: login, then each unique (path, version) exactly once, in parallel (bounded by the client).
    client = new VaultClient(
      {
        addr: config.addr,
        ...(config.namespace ? { namespace: config.namespace } : {}),
        tls: await loadTls(config),
        timeoutMs: config.clientTimeoutMs,
        waitMs: config.waitMs,
        concurrency: config.concurrency,
      },
      log,
    );
    try {
      session = await login(client, config.auth, log);
      const mounts = new MountResolver(client, session.token, log);
      const token = session.token;
      const results = new Map<string, ReadResult>();
      await Promise.all(
        plan.reads.map(async (read) => {
          try {
            const secret: SecretRead = await readSecret(client as VaultClient, mounts, token, read);
            if (secret.leaseId) {
              leases.push({
                leaseId: secret.leaseId,
                path: read.path,
                durationS: secret.leaseDuration,
                renewable: secret.renewable,
              });
            }
            results.set(read.id, { data: secret.data });
          } catch (error) {
            if (!(error instanceof VaultrunError)) throw error;
            // Unreachable / login failures are not per-variable: stop at once.
            if (error.code === 'UNREACHABLE' || error.code === 'LOGIN_FAILED') throw error;
            results.set(read.id, { error });
          }
        }),
      );

      // 5. Render (pure), then write secret files. Every value used is masked in logs from here on.
      for (const ref of plan.vars.flatMap((v) => refsOf(v.parsed))) {
        const result = results.get(readId(ref));
        if (result && 'data' in result && Object.hasOwn(result.data, ref.key)) {
          log.masker.add(secretToString(result.data[ref.key]));
        }
      }
      const rendered = renderPlan(plan, results, { ignoreMissing: config.ignoreMissing });
      for (const { name, reason } of rendered.skipped) {
        log.warn('variable left unset (--ignore-missing)', { variable: name, reason });
        delete env[name];
      }
      Object.assign(env, rendered.env);
      const fileVars = Object.keys(rendered.files);
      if (fileVars.length > 0) {
        const dir = await prepareRuntimeDir(runtimeDirCandidates(config.runtimeDir, env), log);
        for (const name of fileVars) {
          files[name] = await writeSecretFile(dir, secretFileName(name), rendered.files[name] ?? '');
          env[name] = files[name];
        }
      }
    } catch (error) {
      client.close();
      throw error;
    }
    if (!ctx.keepClient) client.close();
  }

  // 6. Scrub our own settings and credentials.
  const scrubbed = scrubEnvironment(env, config.passthrough);
  for (const name of scrubbed.refusedPassthrough) {
    log.warn('credential listed in VAULTRUN_PASSTHROUGH is never passed to the command', { variable: name });
  }
  if (scrubbed.removed.length)
    log.debug('removed from the command environment', { variables: scrubbed.removed.join(',') });

  const resolution: Resolution & { client?: VaultClient } = {
    env: scrubbed.env,
    files,
    plan,
    leases,
    resolvedNames: plan.vars.map((v) => v.name).filter((n) => n in scrubbed.env),
    stats: {
      references: plan.referenceCount,
      paths: plan.reads.length,
      requests: client?.requests ?? 0,
      ms: Math.round(performance.now() - started),
    },
    ...(session ? { session } : {}),
    ...(client && ctx.keepClient ? { client } : {}),
  };
  return resolution;
}
