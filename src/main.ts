import type * as V8 from 'node:v8';
import { prebuildProgram, runMain } from './cli.js';
import { neutraliseNodeVariables } from './run/node-env.js';

/** `sea`: true when started from the single executable's start-up snapshot; undefined: find out. */
function start(sea?: boolean): void {
  // First of all: Node's own switches (NODE_DEBUG, NODE_OPTIONS, …) are for the command, not for vaultrun.
  neutraliseNodeVariables(sea);

  // Node opens an inspector on SIGUSR1 (even in the single executable): a listener turns that off at once.
  // In exec mode the listener is reset by execve; in supervise mode SIGUSR1 is forwarded to the command.
  process.on('SIGUSR1', () => {});

  void runMain(process.argv.slice(2));
}

// The single executable is built with a V8 startup snapshot (scripts/build-exe.mjs): the bundle is evaluated
// once, at build time, and each start deserialises that state and runs start() only.
// node:v8 is loaded only then (about 3 ms): a snapshot is only ever built by node --build-sea or
// --build-snapshot.
const building = process.execArgv.some((a) => a === '--build-sea' || a === '--build-snapshot');
const snapshot = building ? (process.getBuiltinModule('node:v8') as typeof V8).startupSnapshot : undefined;
if (snapshot?.isBuildingSnapshot()) {
  // Every start with a Vault address loads node:net: loaded here, it is in the snapshot, not loaded at each start.
  process.getBuiltinModule('node:net');
  prebuildProgram();
  // Built by `node --build-sea` (scripts/build-exe.mjs): what deserialises this snapshot is the single
  // executable. (A snapshot from --build-snapshot runs under plain node: start() finds out.)
  const sea = process.execArgv.includes('--build-sea') ? true : undefined;
  snapshot.setDeserializeMainFunction(() => start(sea));
} else {
  start();
}
