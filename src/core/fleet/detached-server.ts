/**
 * A nats-server started by hand that outlives the command that started it (`orderq server start
 * --detach`) and is stopped later by port or pid file (`orderq server stop`). Each detached server
 * leaves a state file, `<tmpdir>/orderq-server-<port>.json`, naming its pid and store, so a stop by
 * port needs nothing else, and a temp store orderq made is removed with the server.
 *
 * The temp dir is shared by every user of the machine, so a state file is trusted only when it is the
 * caller's own, and a store is removed only when the process just stopped was running from it: a
 * planted file must not turn `server stop` into a recursive delete of some other directory.
 */
import { existsSync, lstatSync, readdirSync, readFileSync, rmSync, writeFileSync, type Stats } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { EnvironmentError, InputError, errorMessage } from "../base/errors.js";
import { NatsServer } from "./nats-server.js";
import { commandArgs, processState } from "./procfs.js";

const STOP_GRACE_MS = 5_000;

/** What `server start --detach` reports and `server stop` reads back. */
export interface DetachedServer {
  pid: number;
  port: number;
  url: string;
  /** The JetStream store directory. */
  store: string;
  /** True when orderq made `store` (a temp dir): `server stop` removes it. */
  madeStore: boolean;
  /** The conventional pid file (the pid alone), when one was asked for. */
  pidFile?: string;
}

/** `<tmpdir>/orderq-server-<port>.json`: where a detached server on `port` is recorded. */
export function stateFile(port: number, dir = tmpdir()): string {
  return join(dir, `orderq-server-${port}.json`);
}

/**
 * Starts a nats-server that keeps running after this process exits; resolves once it answers
 * JetStream requests. Throws EnvironmentError (exit 3) when the port is taken or the server does not
 * start.
 */
export async function startDetached(options: { port?: number; store?: string; pidFile?: string; stateDir?: string }): Promise<DetachedServer> {
  const server = await NatsServer.start({ port: options.port, storeDir: options.store, detached: true });
  const pid = server.pid;
  if (pid === undefined) throw new EnvironmentError(`nats-server on port ${server.port} exited right after starting`);
  server.release();
  const info: DetachedServer = { pid, port: server.port, url: server.url, store: server.storeDir, madeStore: options.store === undefined };
  if (options.pidFile !== undefined) {
    info.pidFile = options.pidFile;
    writeOrStop(options.pidFile, `${pid}\n`, pid);
  }
  writeOrStop(stateFile(server.port, options.stateDir), JSON.stringify(info, null, 2) + "\n", pid, { fresh: true });
  return info;
}

/**
 * Writes `file`; on failure the server just started is stopped (nobody could stop it) and the error
 * says why. `fresh`: unlink what is there and create the file anew — in the shared temp dir a name
 * may have been planted (a symlink to some other file), which must not be written through.
 */
function writeOrStop(file: string, text: string, pid: number, o: { fresh?: boolean } = {}): void {
  try {
    if (o.fresh) rmSync(file, { force: true });
    writeFileSync(file, text, { flag: o.fresh ? "wx" : "w" });
  } catch (err) {
    process.kill(pid, "SIGTERM");
    throw new EnvironmentError(`cannot write ${file}: ${errorMessage(err)} (the server was stopped)`);
  }
}

/** What a stop did. */
export interface StopResult {
  pid: number;
  /** SIGTERM sufficed (false: it had to be killed). */
  graceful: boolean;
  /** The temp store orderq removed with it, if any. */
  removedStore?: string;
}

/**
 * Stops a detached nats-server by `port` (its state file) or by `pidFile`. Refuses (InputError, exit
 * 2) when neither names a running nats-server: a stale pid may belong to another process by now.
 */
export async function stopDetached(target: { port?: number; pidFile?: string; stateDir?: string }): Promise<StopResult> {
  let state: DetachedServer | undefined;
  let pid: number;
  if (target.pidFile !== undefined) {
    pid = readPid(target.pidFile);
    state = recordedByPid(pid, target.stateDir);
  } else if (target.port !== undefined) {
    const file = stateFile(target.port, target.stateDir);
    state = readState(file);
    if (!state)
      throw new InputError(`no server started with \`orderq server start --detach\` is recorded on port ${target.port} (${file} is missing)`);
    pid = state.pid;
  } else {
    throw new InputError("server stop: give --port or --pid-file");
  }
  if (!alive(pid)) {
    // Killed or crashed: nothing is left to stop, but its record and the temp store orderq made are.
    let removed = "";
    if (state) {
      forget(state, target.stateDir);
      if (state.madeStore && isTempStore(state.store)) {
        rmSync(state.store, { recursive: true, force: true });
        removed = `; removed its store ${state.store}`;
      }
    }
    throw new InputError(`no server is running with pid ${pid} (it has stopped already${removed})`);
  }
  // Read before the signal: once the process is gone its command line is too.
  const args = commandArgs(pid);
  if (!(args?.join(" ") ?? "nats-server").includes("nats-server")) {
    throw new InputError(`pid ${pid} is not a nats-server (${args?.join(" ")}): not stopping it`);
  }
  const graceful = await signalAndWait(pid);
  const result: StopResult = { pid, graceful };
  if (state && state.pid === pid) {
    if (state.madeStore && ranFrom(args, state.store)) {
      rmSync(state.store, { recursive: true, force: true });
      result.removedStore = state.store;
    }
    forget(state, target.stateDir);
  }
  return result;
}

function forget(state: DetachedServer, stateDir?: string): void {
  rmSync(stateFile(state.port, stateDir), { force: true });
  if (state.pidFile) rmSync(state.pidFile, { force: true });
}

/**
 * The state file of a detached server with this pid, if the caller recorded one. Other users' files
 * (and anything but a regular file) are passed over: they are no record of the caller's server.
 */
function recordedByPid(pid: number, stateDir = tmpdir()): DetachedServer | undefined {
  for (const name of readdirSync(stateDir)) {
    if (!/^orderq-server-\d+\.json$/.test(name)) continue;
    const file = join(stateDir, name);
    if (untrusted(file)) continue;
    const state = parseState(file);
    if (state.pid === pid) return state;
  }
  return undefined;
}

function readPid(file: string): number {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new InputError(`--pid-file: cannot read ${file}: ${errorMessage(err)}`);
  }
  const pid = Number(text.trim());
  if (!Number.isInteger(pid) || pid <= 0) throw new InputError(`--pid-file: ${file} does not hold a pid ("${text.trim().slice(0, 40)}")`);
  return pid;
}

/**
 * The state file's record, or undefined when there is none. Throws EnvironmentError (exit 3) when it
 * cannot be read, or is not the caller's own regular file: in the shared temp dir, that may be a plant.
 */
function readState(file: string): DetachedServer | undefined {
  if (!existsSync(file)) return undefined;
  const why = untrusted(file);
  if (why) throw new EnvironmentError(`${file} ${why}: not trusting it (ask its owner to remove it if it is stale)`);
  return parseState(file);
}

/** A trusted state file's record. Throws EnvironmentError (exit 3) when it cannot be read or parsed. */
function parseState(file: string): DetachedServer {
  try {
    return JSON.parse(readFileSync(file, "utf8")) as DetachedServer;
  } catch (err) {
    throw new EnvironmentError(`cannot read ${file}: ${errorMessage(err)}`);
  }
}

/**
 * Why `file` is no record of the caller's (undefined when it is one): another user's file, or not a
 * regular file — a symlink would pass the owner check on the file it points to. lstat, not stat.
 */
function untrusted(file: string): string | undefined {
  let stat: Stats;
  try {
    stat = lstatSync(file);
  } catch (err) {
    return `cannot be examined (${errorMessage(err)})`;
  }
  if (!stat.isFile()) return "is not a regular file";
  const me = process.getuid?.();
  if (me !== undefined && stat.uid !== me) return `belongs to uid ${stat.uid}, not to this user (uid ${me})`;
  return undefined;
}

/**
 * Whether `store` is a temp store as NatsServer makes one (`<tmpdir>/orderq-nats-XXXXXX`): the only
 * kind removed for a server that is gone, whose command line can no longer say where it ran from.
 */
function isTempStore(store: string): boolean {
  return dirname(store) === tmpdir() && basename(store).startsWith("orderq-nats-");
}

/**
 * Whether the nats-server started with `args` ran from `store`: a server orderq starts reads the
 * config it wrote into its store (`-c <store>/nats-server.conf`, see nats-server.ts).
 */
function ranFrom(args: string[] | undefined, store: string): boolean {
  return args?.includes(join(store, "nats-server.conf")) ?? false;
}

/** Running and not a zombie (a detached server's zombie waits for whichever process adopted it). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  return processState(pid) !== "Z";
}

/** SIGTERM, then SIGKILL after the grace period; resolves once the process is gone. True when SIGTERM sufficed. */
async function signalAndWait(pid: number): Promise<boolean> {
  process.kill(pid, "SIGTERM");
  const deadline = Date.now() + STOP_GRACE_MS;
  while (alive(pid)) {
    if (Date.now() > deadline) {
      process.kill(pid, "SIGKILL");
      while (alive(pid)) await sleep(20);
      return false;
    }
    await sleep(20);
  }
  return true;
}
