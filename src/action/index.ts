import { runActionMain } from './main.js';

// The GitHub Action's entry point: action.yml runs action/index.cjs, this file bundled.
void runActionMain();
