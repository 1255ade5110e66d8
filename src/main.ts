import { runMain } from './cli.js';

void runMain(process.argv.slice(2));
