/**
 * The architecture, checked from the imports: src/core is a stack of rooms and a room imports only
 * from its own level or below; no import cycles; no CLI libraries in core. Reads every import under
 * src/ (static, type-only, re-exports and dynamic import()), so a new file cannot slip past it.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const SRC = fileURLToPath(new URL("../../src/", import.meta.url));

/** Rooms, lowest first (README "Layout"); a room may import its own level and the levels below. */
const LEVELS: [room: string, level: number][] = [
  ["core/base", 1],
  ["core/nats", 2],
  // The pipeline defines the ledger-of-record interfaces (OutcomeStore, TransactionalCommit); the
  // PostgreSQL inbox implements them, so it sits above, and the worker process wires it in.
  ["core/pipeline", 3],
  ["core/inbox", 4],
  ["core/fleet", 5],
  ["core/ops", 6],
  ["core/chaos", 7],
  ["core/bench", 7],
  ["core/intake", 7],
  ["cli", 8],
  ["commands", 9],
  // The package's entry point for handler modules (`import { NonRetryableError } from "orderq"`).
  ["index.ts", 10],
];
/** Packages that belong to the CLI's surface, never to core. */
const CLI_ONLY = [/^@oclif\//, /^chalk$/, /^cli-table3$/, /^cli-progress$/];

function walk(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path, out);
    else if (path.endsWith(".ts")) out.push(path);
  }
  return out;
}

/** Every module specifier in a source file, comments left out. */
export function specifiers(source: string): string[] {
  const code = source.replace(/\/\*[\s\S]*?\*\//g, "").replace(/(^|[^:"'`])\/\/.*$/gm, "$1");
  const found: string[] = [];
  const patterns = [
    /\b(?:import|export)\s[^"'`;]*?\sfrom\s*["']([^"']+)["']/g,
    /\bimport\s*["']([^"']+)["']/g,
    /\bimport\s*\(\s*["']([^"']+)["']\s*\)/g,
  ];
  for (const pattern of patterns) for (const m of code.matchAll(pattern)) found.push(m[1]);
  return found;
}

function roomOf(file: string): { room: string; level: number } | undefined {
  const rel = relative(SRC, file);
  const hit = LEVELS.find(([room]) => rel === room || rel.startsWith(`${room}/`));
  return hit && { room: hit[0], level: hit[1] };
}

const files = walk(SRC);
const graph = new Map<string, { local: string[]; packages: string[] }>();
for (const file of files) {
  const local: string[] = [];
  const packages: string[] = [];
  for (const spec of specifiers(readFileSync(file, "utf8"))) {
    if (spec.startsWith(".")) local.push(resolve(dirname(file), spec.replace(/\.js$/, ".ts")));
    else packages.push(spec);
  }
  graph.set(file, { local, packages });
}
const rel = (file: string) => relative(SRC, file);

describe("rooms (the import graph of src/)", () => {
  it("reads the imports it checks", () => {
    assert.ok(files.length > 50, `only ${files.length} files under ${SRC}`);
    assert.deepEqual(
      specifiers('import type { A } from "./a.js";\nexport { b } from "../b.js";\nconst c = await import("./c.js"); // import("./not.js")'),
      ["./a.js", "../b.js", "./c.js"],
    );
  });

  it("every file of src/core, src/cli and src/commands is in a room, and every import resolves", () => {
    const outside = files.filter((f) => !roomOf(f)).map(rel);
    assert.deepEqual(outside, [], "files outside any room");
    const unresolved = [...graph].flatMap(([file, { local }]) => local.filter((t) => !graph.has(t)).map((t) => `${rel(file)} → ${rel(t)}`));
    assert.deepEqual(unresolved, []);
  });

  it("no room imports a room above it", () => {
    const upward: string[] = [];
    for (const [file, { local }] of graph) {
      const from = roomOf(file)!;
      for (const target of local) {
        const to = roomOf(target);
        if (to && to.level > from.level) upward.push(`${rel(file)} (${from.room}) → ${rel(target)} (${to.room})`);
      }
    }
    assert.deepEqual(upward, []);
  });

  it("has no import cycle", () => {
    const cycles: string[] = [];
    const state = new Map<string, "open" | "done">();
    const stack: string[] = [];
    const visit = (file: string) => {
      state.set(file, "open");
      stack.push(file);
      for (const next of graph.get(file)?.local ?? []) {
        if (state.get(next) === "open") cycles.push([...stack.slice(stack.indexOf(next)), next].map(rel).join(" → "));
        else if (!state.has(next)) visit(next);
      }
      stack.pop();
      state.set(file, "done");
    };
    for (const file of graph.keys()) if (!state.has(file)) visit(file);
    assert.deepEqual(cycles, []);
  });

  it("core imports neither oclif nor the terminal renderers", () => {
    const bad = [...graph]
      .filter(([file]) => rel(file).startsWith("core/"))
      .flatMap(([file, { packages }]) => packages.filter((p) => CLI_ONLY.some((re) => re.test(p))).map((p) => `${rel(file)} → ${p}`));
    assert.deepEqual(bad, []);
  });

  it("only src/core/nats reaches into the NATS client's internals", () => {
    const bad = [...graph]
      .filter(([file]) => !rel(file).startsWith("core/nats/"))
      .flatMap(([file, { packages }]) => packages.filter((p) => /^@nats-io\/[^/]+\/internal$/.test(p)).map((p) => `${rel(file)} → ${p}`));
    assert.deepEqual(bad, []);
  });
});
