/**
 * Reads scenario files. Every problem is one InputError line: `<file>:<line>: <field>: <what is wrong>`,
 * with the line found from the YAML node the failing field came from.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { basename, dirname, extname, join, relative, resolve } from "node:path";
import { isMap, isPair, isScalar, LineCounter, parseDocument, visit, type Document, type Node } from "yaml";
import type { z } from "zod";
import { oneLine } from "../pipeline/dlq-entry.js";
import { InputError, errorMessage } from "../base/errors.js";
import { scenarioSchema, toScenario, type Scenario } from "./scenario.js";

type PathKey = string | number;

/** The node at `path`, or the nearest ancestor that exists; for an unknown key, the key itself. */
function locate(doc: Document, path: PathKey[], unknownKey?: string): Node | undefined {
  for (let depth = path.length; depth >= 0; depth--) {
    const node = depth === 0 ? doc.contents : doc.getIn(path.slice(0, depth), true);
    if (!node || typeof node !== "object" || !("range" in node)) continue;
    if (unknownKey !== undefined && depth === path.length && isMap(node)) {
      const pair = node.items.find((item) => isPair(item) && isScalar(item.key) && item.key.value === unknownKey);
      if (pair && isScalar(pair.key)) return pair.key;
    }
    return node as Node;
  }
  return undefined;
}

function fieldName(path: PathKey[]): string {
  return path.reduce<string>((out, key) => (typeof key === "number" ? `${out}[${key}]` : out ? `${out}.${key}` : key), "");
}

/** The value at `path` in the parsed document; undefined when absent. */
function valueAt(json: unknown, path: PathKey[]): unknown {
  return path.reduce<unknown>(
    (value, key) => (value !== null && typeof value === "object" ? (value as Record<PathKey, unknown>)[key] : undefined),
    json,
  );
}

/** How a YAML value reads in a message: its kind, and a scalar's text. */
function describeValue(value: unknown): string {
  if (value === null) return "null (an empty value)";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a mapping";
  return `${typeof value} ${JSON.stringify(value).slice(0, 40)}`;
}

/**
 * One line per schema issue: "required" only for a field that is absent; a field of the wrong type
 * names the type expected and the value found (zod 4's issues do not carry the input by default).
 */
function describeIssue(issue: z.core.$ZodIssue, json: unknown): { path: PathKey[]; field: string; message: string; unknownKey?: string } {
  const path = issue.path.filter((k): k is PathKey => typeof k !== "symbol");
  if (issue.code === "unrecognized_keys") {
    const key = issue.keys[0];
    return { path, unknownKey: key, field: fieldName([...path, key]), message: "unknown field" };
  }
  if (issue.code === "invalid_type") {
    const value = valueAt(json, path);
    if (value === undefined) return { path, field: fieldName(path), message: "required" };
    return { path, field: fieldName(path), message: `expected ${issue.expected}, got ${describeValue(value)}` };
  }
  return { path, field: fieldName(path), message: issue.message };
}

/** The key on `line` or on the closest line above it: the field a YAML syntax error is in. */
function nearestKey(lines: string[], line: number): string | undefined {
  for (let i = Math.min(line, lines.length) - 1; i >= 0; i--) {
    const key = /^\s*-?\s*([\w-]+)\s*:/.exec(lines[i])?.[1];
    if (key) return key;
  }
  return undefined;
}

/** The first alias whose anchor is not defined before it: yaml reports it only when converting to JS. */
function unresolvedAlias(doc: Document): Node | undefined {
  let found: Node | undefined;
  visit(doc, {
    Alias(_, alias) {
      if (alias.resolve(doc) !== undefined) return undefined;
      found = alias;
      return visit.BREAK;
    },
  });
  return found;
}

/** Parses and validates one scenario's text; `file` is used in messages and for the default name. */
export function parseScenario(text: string, file: string): Scenario {
  const lineCounter = new LineCounter();
  // logLevel "error": yaml would print warnings (a collection used as a key) with process.emitWarning.
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, logLevel: "error" });
  const lineOf = (offset: number) => lineCounter.linePos(offset).line;
  // Field names and values are quoted from the file, so they may hold line breaks: keep one line.
  const refuse = (line: number, what: string) => new InputError(`${file}:${line}: ${oneLine(what)}`);
  const yamlError = doc.errors[0];
  if (yamlError) {
    const line = lineOf(yamlError.pos[0]);
    const near = nearestKey(text.split("\n"), line);
    const what = yamlError.message.split("\n")[0];
    throw refuse(line, `${near ? `${near}: ` : ""}invalid YAML: ${what}`);
  }
  if (!isMap(doc.contents)) {
    const line = doc.contents?.range ? lineOf(doc.contents.range[0]) : 1;
    throw refuse(line, "(root): a scenario is a mapping of fields (orders, rate, workers, faults, ...)");
  }
  let json: unknown;
  try {
    json = doc.toJS();
  } catch (err) {
    // An alias to a missing anchor (or an alias bomb) is not among doc.errors: toJS throws a plain Error.
    const alias = unresolvedAlias(doc);
    throw refuse(alias?.range ? lineOf(alias.range[0]) : 1, `invalid YAML: ${errorMessage(err)}`);
  }
  const result = scenarioSchema.safeParse(json);
  if (!result.success) {
    const issue = describeIssue(result.error.issues[0], json);
    const node = locate(doc, issue.path, issue.unknownKey);
    const line = node?.range ? lineOf(node.range[0]) : 1;
    throw refuse(line, `${issue.field || "(root)"}: ${issue.message}`);
  }
  const scenario = toScenario(result.data, file, basename(file, extname(file)));
  // Paths in a scenario are relative to its file, wherever orderq is run from.
  const dir = dirname(resolve(file));
  const existing = (path: PathKey[], value: string, what: string): string => {
    const absolute = resolve(dir, value);
    if (existsSync(absolute)) return absolute;
    const node = locate(doc, path);
    throw refuse(
      node?.range ? lineOf(node.range[0]) : 1,
      `${fieldName(path)}: no ${what} at ${value} (${absolute}; paths are relative to the scenario file)`,
    );
  };
  if (scenario.handler.module !== undefined) scenario.handler.module = existing(["handler", "module"], scenario.handler.module, "handler module");
  if (scenario.inbox?.schema !== undefined) scenario.inbox.schema = existing(["inbox", "schema"], scenario.inbox.schema, "SQL file");
  return scenario;
}

export function loadScenarioFile(path: string): Scenario {
  const shown = relative(process.cwd(), path) || path;
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new InputError(`${shown}: cannot read the scenario: ${errorMessage(err)}`);
  }
  return parseScenario(text, shown.startsWith("..") ? path : shown);
}

export function scenarioFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => /\.ya?ml$/.test(f))
    .sort()
    .map((f) => join(dir, f));
}

/** A path to a YAML file, or the name of a scenario in `dir`. */
export function resolveScenario(nameOrPath: string, dir: string): Scenario {
  if (/\.ya?ml$/.test(nameOrPath) || nameOrPath.includes("/")) return loadScenarioFile(nameOrPath);
  const file = scenarioFiles(dir).find((f) => basename(f, extname(f)) === nameOrPath);
  if (!file) {
    const known = scenarioFiles(dir).map((f) => basename(f, extname(f)));
    throw new InputError(`unknown scenario "${nameOrPath}" (known: ${known.join(", ") || "none"}; or give a path to a .yaml file)`);
  }
  return loadScenarioFile(file);
}
