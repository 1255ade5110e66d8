import { runMain } from './cli.js';

// Node opens an inspector on SIGUSR1 (even in the single executable): a listener turns that off at once.
// In exec mode the listener is reset by execve; in supervise mode SIGUSR1 is forwarded to the command.
process.on('SIGUSR1', () => {});

void runMain(process.argv.slice(2));
