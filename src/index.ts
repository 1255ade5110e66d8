/** Library API: the CLI is a thin layer over these. */
export { type Config, type FlagValues, loadConfig } from './config.js';
export { type ErrorCode, EXIT_CODES, VaultrunError } from './errors.js';
export { createLogger, type Logger, Masker } from './log.js';
export { parseValue, type Ref } from './refs/parse.js';
export { type Plan, planReferences, renderPlan } from './refs/plan.js';
export { type Resolution, resolveEnvironment } from './resolve.js';
