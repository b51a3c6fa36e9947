#!/usr/bin/env node
/**
 * The `weft` bin (package.json "bin"): `npx weft config put --etcd http://127.0.0.1:2379 catalog catalog.yaml`.
 * Everything is in `main.ts`; this file hands it the process's arguments and streams, and sets
 * the exit code (not `process.exit()`, so stdout is flushed when it is a pipe).
 */
import { main } from "./main.js";

process.exitCode = await main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr });
