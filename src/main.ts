import { startupSnapshot } from 'node:v8';
import { prebuildProgram, runMain } from './cli.js';
import { neutraliseNodeVariables } from './run/node-env.js';

function start(): void {
  // First of all: Node's own switches (NODE_DEBUG, NODE_OPTIONS, …) are for the command, not for vaultrun.
  neutraliseNodeVariables();

  // Node opens an inspector on SIGUSR1 (even in the single executable): a listener turns that off at once.
  // In exec mode the listener is reset by execve; in supervise mode SIGUSR1 is forwarded to the command.
  process.on('SIGUSR1', () => {});

  void runMain(process.argv.slice(2));
}

// The single executable is built with a V8 startup snapshot (scripts/build-exe.mjs): the bundle is evaluated
// once, at build time, and each start deserialises that state and runs start() only.
if (startupSnapshot.isBuildingSnapshot()) {
  prebuildProgram();
  startupSnapshot.setDeserializeMainFunction(start);
} else {
  start();
}
