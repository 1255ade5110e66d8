import type { Logger } from '../log.js';

/** What a subcommand (and the main form) needs from the CLI: the environment, stdout and the logger on stderr. */
export interface CliIo {
  env: Readonly<Record<string, string | undefined>>;
  stdout: (text: string) => void;
  log: Logger;
}
