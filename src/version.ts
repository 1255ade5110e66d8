declare const __VAULTRUN_VERSION__: string | undefined;
declare const __VAULTRUN_COMMIT__: string | undefined;

/** Filled in by the bundler (scripts/build.mjs); "dev" when running from source. */
export const VERSION = typeof __VAULTRUN_VERSION__ === 'string' ? __VAULTRUN_VERSION__ : 'dev';
export const COMMIT = typeof __VAULTRUN_COMMIT__ === 'string' ? __VAULTRUN_COMMIT__ : 'unknown';

export function versionLine(): string {
  const sea =
    (process.getBuiltinModule('node:sea') as { isSea?: () => boolean } | undefined)?.isSea?.() ?? false;
  return `vaultrun ${VERSION} (node ${process.version}, commit ${COMMIT}${sea ? ', single executable' : ''})`;
}
