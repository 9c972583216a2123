// The nightshift command: runs one command line (see program.ts) and exits with its code.
import { main } from './program.ts';

const code = await main(process.argv.slice(2));
// Let stdout drain, then exit even if a library left a handle open.
process.stdout.write('', () => process.exit(code));
