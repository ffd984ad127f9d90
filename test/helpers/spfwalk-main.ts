// `frontline spfwalk` as a process of its own, for tests, until main.ts
// registers the command: node --import tsx test/helpers/spfwalk-main.ts spfwalk …

import { Command } from 'commander';
import { registerSpfwalkCommand } from '../../src/cli/spfwalk.js';

const program = new Command('frontline');
registerSpfwalkCommand(program);
await program.parseAsync(process.argv);
