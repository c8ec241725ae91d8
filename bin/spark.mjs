#!/usr/bin/env node
// The `spark` command (package.json `bin`). Installed from the npm package it runs the compiled CLI
// (dist/cli/spark.js, plain node). In a checkout of the repository, where the sources are, it runs
// src/cli/spark.ts under tsx (a dev dependency), so it never runs a stale build.
import { existsSync } from 'node:fs';

const source = new URL('../src/cli/spark.ts', import.meta.url);
if (existsSync(source)) {
  const { register } = await import('tsx/esm/api');
  register();
  await import(source.href);
} else {
  await import('../dist/cli/spark.js');
}
