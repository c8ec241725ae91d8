/** Writes docs/schemas/<workflow>.input.json for people writing inputs for `temporal workflow start --input-file`. */
import { writeFileSync } from 'node:fs';
import { inputJsonSchema, workflowInputSchemas } from '../src/workflows/inputs.js';

for (const name of Object.keys(workflowInputSchemas) as (keyof typeof workflowInputSchemas)[]) {
  const file = new URL(`../docs/schemas/${name}.input.json`, import.meta.url);
  writeFileSync(file, `${JSON.stringify(inputJsonSchema(name), null, 2)}\n`);
  console.log(`wrote ${file.pathname}`);
}
