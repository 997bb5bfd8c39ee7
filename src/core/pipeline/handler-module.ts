/**
 * Loading a team's handler module (`--handler ./path/to/handler.mjs`). Every problem is found here,
 * before any worker process starts, and reported as one line naming the file.
 */
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { errorMessage, InputError } from "../base/errors.js";
import type { OrderHandler } from "./handler.js";

/** `--handler` value that selects the built-in simulated handler (the default). */
export const SIMULATED_HANDLER = "simulated";

/**
 * Imports the module at `path` (relative to the working directory) and returns its default export.
 * Throws InputError (exit 2) when the file does not exist, throws while loading, has no default
 * export, or its default export is not a function.
 */
export async function loadHandlerModule(path: string): Promise<OrderHandler> {
  const file = resolve(path);
  if (!existsSync(file)) throw new InputError(`--handler ${path}: no such file`);
  let module: { default?: unknown };
  try {
    module = (await import(pathToFileURL(file).href)) as { default?: unknown };
  } catch (err) {
    // Also a package it imports that is not installed where the module is (ERR_MODULE_NOT_FOUND).
    throw new InputError(`--handler ${path}: the module failed to load: ${errorMessage(err).split("\n")[0]}`);
  }
  if (module.default === undefined) {
    throw new InputError(`--handler ${path}: no default export (write \`export default async (order, ctx) => { … }\`)`);
  }
  if (typeof module.default !== "function") {
    throw new InputError(`--handler ${path}: the default export is a ${typeof module.default}, not a function (order, ctx) => Promise<void>`);
  }
  const handler = module.default as (...args: unknown[]) => unknown;
  // A synchronous handler is allowed too: its return value is awaited either way.
  return async (order, ctx) => {
    await handler(order, ctx);
  };
}
