/**
 * Writes oclif.manifest.json, the description of every command (flags, summaries, examples) that
 * oclif otherwise builds at each start by importing every command module — fastify, pg, the chaos
 * runner and the rest — even for `orderq --version`. With it, a start imports only the command it runs.
 * Run by `npm run build` after tsc, so the manifest always describes the dist/ it sits beside (what
 * `oclif manifest` does, without the oclif CLI's dependencies).
 */
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Plugin } from "@oclif/core";

const root = fileURLToPath(new URL("..", import.meta.url));
const plugin = new Plugin({ isRoot: true, respectNoCacheDefault: true, root, ignoreManifest: true });
await plugin.load();
writeFileSync(new URL("../oclif.manifest.json", import.meta.url), `${JSON.stringify(plugin.manifest, null, 2)}\n`);
