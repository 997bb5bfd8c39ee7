/**
 * natscli's contexts: named connection settings in `<XDG_CONFIG_HOME or ~/.config>/nats/context/<name>.json`,
 * the selected one named in `…/nats/context.txt` (the layout of nats-io/jsm.go's natscontext package,
 * which natscli uses). orderq reads them so an operator's existing NATS set-up works as it is.
 */
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { InputError, errorMessage } from "../base/errors.js";
import type { NatsOptions } from "./connection.js";

/** The fields of a context file that orderq uses (paths are used as written, like natscli does). */
interface ContextFile {
  url?: string;
  user?: string;
  password?: string;
  token?: string;
  creds?: string;
  /** Path of an nkey seed file. */
  nkey?: string;
  cert?: string;
  key?: string;
  ca?: string;
  nsc?: string;
  jetstream_domain?: string;
  jetstream_api_prefix?: string;
}

/** Settings orderq cannot honour: a context that needs them is refused rather than half-used. */
const UNSUPPORTED: Array<keyof ContextFile> = ["nsc", "jetstream_domain", "jetstream_api_prefix"];

function natsConfigDir(env: NodeJS.ProcessEnv): string {
  return join(env.XDG_CONFIG_HOME || join(homedir(), ".config"), "nats");
}

/** The context selected with `nats context select` (context.txt), or undefined when none is. */
export function selectedContext(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const file = join(natsConfigDir(env), "context.txt");
  if (!existsSync(file)) return undefined;
  return readFileSync(file, "utf8").trim() || undefined;
}

/**
 * The connection settings of context `name`, as NatsOptions fields (empty strings left out).
 * Throws InputError (exit 2) naming the file when the context does not exist, is not JSON, or needs
 * a setting orderq does not support.
 */
export function loadContext(name: string, env: NodeJS.ProcessEnv = process.env): Partial<NatsOptions> {
  if (!name || name.includes("..") || name.includes("/")) throw new InputError(`--context: "${name}" is not a context name`);
  const file = join(natsConfigDir(env), "context", `${name}.json`);
  let ctx: ContextFile;
  try {
    ctx = JSON.parse(readFileSync(file, "utf8")) as ContextFile;
  } catch (err) {
    const missing = (err as NodeJS.ErrnoException).code === "ENOENT";
    throw new InputError(`--context: ${missing ? `no context "${name}" (${file} does not exist)` : `cannot read ${file}: ${errorMessage(err)}`}`);
  }
  const unsupported = UNSUPPORTED.filter((k) => ctx[k]);
  if (unsupported.length)
    throw new InputError(`--context ${name}: ${unsupported.join(", ")} ${unsupported.length > 1 ? "are" : "is"} not supported by orderq (${file})`);
  const pick = (v: string | undefined) => (v ? v : undefined);
  const out: Partial<NatsOptions> = {
    server: pick(ctx.url),
    user: pick(ctx.user),
    password: pick(ctx.password),
    token: pick(ctx.token),
    creds: pick(ctx.creds),
    nkey: pick(ctx.nkey),
    tlsCert: pick(ctx.cert),
    tlsKey: pick(ctx.key),
    tlsCa: pick(ctx.ca),
  };
  return Object.fromEntries(Object.entries(out).filter(([, v]) => v !== undefined));
}
