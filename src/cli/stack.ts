/** `tsx src/cli/stack.ts up|down`: start or stop the local stack (data stays in .data/). */
import { stackDown, stackUp } from './local-stack.js';

const command = process.argv[2];
if (command === 'up') {
  stackUp()
    .then((s) => console.log(JSON.stringify(s, null, 2)))
    .catch((err: unknown) => {
      console.error(err);
      process.exit(1);
    });
} else if (command === 'down') {
  stackDown();
} else {
  console.error('usage: tsx src/cli/stack.ts up|down');
  process.exit(2);
}
