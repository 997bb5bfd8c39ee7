/**
 * Local PostgreSQL servers for tests and chaos runs of the inbox mode: a cluster of its own (made by
 * `initdb`) in a temp dir, on a free loopback port, its socket in that dir. Never the machine's shared
 * server. When orderq runs as root, PostgreSQL runs as the `postgres` OS user (it refuses root).
 */
import { execFile, execFileSync, spawn, type ChildProcess } from "node:child_process";
import { accessSync, chownSync, closeSync, constants, existsSync, mkdtempSync, openSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import pg from "pg";
import { EnvironmentError } from "../base/errors.js";
import { removeOnExit } from "./exit-kill.js";
import { childPids } from "./procfs.js";
import { waitUntilReady, watchExit } from "./server-process.js";
import { freePort } from "./nats-server.js";

const DEBIAN_ROOT = "/usr/lib/postgresql";
const READY_TIMEOUT_MS = 30_000;
const STOP_GRACE_MS = 10_000;
/** The superuser initdb creates and the database the URL names; trust auth, so no password. */
const USER = "postgres";
const DATABASE = "postgres";

/**
 * The directory holding `initdb` and `postgres`: `$ORDERQ_PG_BIN`, else the newest
 * `/usr/lib/postgresql/<version>/bin` (Debian's layout; the binaries are not on PATH there).
 * @throws EnvironmentError (exit 3) naming what to install or set.
 */
export function findPostgresBinDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.ORDERQ_PG_BIN) return checkBinDir(env.ORDERQ_PG_BIN, `ORDERQ_PG_BIN=${env.ORDERQ_PG_BIN}`);
  const found = debianBinDirs().find(hasBinaries);
  if (found) return found;
  throw notFound(`no ${DEBIAN_ROOT}/<version>/bin/initdb`);
}

/** `dir` when it holds executable `initdb` and `postgres`; @throws EnvironmentError naming `label`. */
function checkBinDir(dir: string, label: string): string {
  if (hasBinaries(dir)) return dir;
  throw notFound(`${label} holds no executable initdb and postgres`);
}

function notFound(why: string): EnvironmentError {
  return new EnvironmentError(
    `PostgreSQL not found (${why}): install it (apt-get install postgresql) or set ORDERQ_PG_BIN to the directory holding initdb and postgres`,
  );
}

function hasBinaries(dir: string): boolean {
  return executable(join(dir, "initdb")) && executable(join(dir, "postgres"));
}

/** Debian's version directories, newest first (numerically: 9.6 < 10 < 15). */
function debianBinDirs(): string[] {
  let versions: string[];
  try {
    versions = readdirSync(DEBIAN_ROOT).filter((v) => /^\d+(\.\d+)?$/.test(v));
  } catch {
    return [];
  }
  return versions.sort((a, b) => Number(b) - Number(a)).map((v) => join(DEBIAN_ROOT, v, "bin"));
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The OS user the server runs as: ourselves, or `postgres` when we are root. */
interface RunAs {
  uid: number;
  gid: number;
}

function runAs(): RunAs | undefined {
  if (process.getuid?.() !== 0) return undefined;
  try {
    const id = (flag: string) => Number(execFileSync("id", [flag, USER], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim());
    return { uid: id("-u"), gid: id("-g") };
  } catch {
    throw new EnvironmentError(
      `running as root and there is no "${USER}" OS user to run PostgreSQL as (it refuses to run as root): install Debian's postgresql package, which creates it`,
    );
  }
}

export interface PostgresOptions {
  /** TCP port on 127.0.0.1; a free one when absent. */
  port?: number;
  /** Directory of `initdb` and `postgres`; findPostgresBinDir() when absent. */
  binDir?: string;
  /**
   * Server settings added to orderq's defaults or replacing them (e.g. `{ synchronous_commit: "off" }`
   * for a benchmark), passed as `-c name=value` on every start.
   */
  settings?: Record<string, string>;
}

/**
 * A PostgreSQL cluster in its own temp dir (`dir`): data in `dir/data`, its Unix socket in `dir`,
 * the server's output in `dir/postgres.log`. Made by `start()`, removed by `dispose()` (or when this
 * process exits).
 */
export class PostgresServer {
  readonly port: number;
  readonly dir: string;
  readonly dataDir: string;
  readonly logFile: string;
  private child?: ChildProcess;
  private exited?: Promise<void>;

  private constructor(
    private readonly binDir: string,
    private readonly user: RunAs | undefined,
    port: number,
    dir: string,
    private readonly settings: Record<string, string>,
    private readonly removeDir: () => void,
  ) {
    this.port = port;
    this.dir = dir;
    this.dataDir = join(dir, "data");
    this.logFile = join(dir, "postgres.log");
  }

  /**
   * Makes a cluster in a new temp dir (a copy of this process's initdb template, see template()) and
   * starts the server; resolves once it accepts connections at `url`.
   * @throws EnvironmentError (exit 3): binaries or the postgres OS user missing, initdb failed, or the
   *   server exited or was not ready within 30 s (the message carries the end of its log).
   */
  static async start(options: PostgresOptions = {}): Promise<PostgresServer> {
    const binDir = options.binDir ? checkBinDir(options.binDir, options.binDir) : findPostgresBinDir();
    const user = runAs();
    const dir = mkdtempSync(join(tmpdir(), "orderq-pg-"));
    const removeDir = removeOnExit(dir);
    try {
      if (user) chownSync(dir, user.uid, user.gid);
      await run("cp", ["-a", await template(binDir, user), join(dir, "data")], user, dir);
      for (let attempt = 1; ; attempt++) {
        const port = options.port ?? (await freePort());
        const server = new PostgresServer(binDir, user, port, dir, { ...defaultSettings(dir, port), ...options.settings }, removeDir);
        try {
          await server.launch();
          return server;
        } catch (err) {
          // A free port can be taken between freePort() and the bind: pick another one.
          if (options.port !== undefined || attempt >= 3) throw err;
        }
      }
    } catch (err) {
      removeDir();
      throw err;
    }
  }

  /** `postgres://postgres@127.0.0.1:<port>/postgres` (trust auth: no password). */
  get url(): string {
    return `postgres://${USER}@127.0.0.1:${this.port}/${DATABASE}`;
  }

  /** The postmaster's pid while it runs. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** The postmaster and every process it has forked now (backends, WAL writer…): whose CPU is the server's. */
  processes(): number[] {
    const pid = this.child?.pid;
    return pid === undefined ? [] : [pid, ...childPids(pid)];
  }

  get running(): boolean {
    return this.child !== undefined;
  }

  private async launch(): Promise<void> {
    const args = ["-D", this.dataDir, ...Object.entries(this.settings).flatMap(([name, value]) => ["-c", `${name}=${value}`])];
    const log = openSync(this.logFile, "a");
    // The postmaster itself is the child (no pg_ctl, no runuser in between), so kill() hits it.
    const child = spawn(join(this.binDir, "postgres"), args, { ...spawnUser(this.user, this.dir), stdio: ["ignore", log, log] });
    closeSync(log);
    this.child = child;
    this.exited = watchExit(child, () => {
      if (this.child === child) this.child = undefined;
    });
    await waitUntilReady(child, this.exited, {
      what: `postgres on port ${this.port}`,
      probe: () => this.probe(),
      timeoutMs: READY_TIMEOUT_MS,
      everyMs: 25,
      exitDetail: () => this.logTail(),
      kill: () => this.kill(),
    });
  }

  /**
   * Ready means a query through `url` answers, from this cluster: the data directory is checked, so a
   * server that already held the port (the machine's own, say) is never taken for ours.
   */
  private async probe(): Promise<void> {
    const client = new pg.Client({ connectionString: this.url, connectionTimeoutMillis: 1000 });
    // A connection refused or reset while starting emits 'error' too; connect() reports it.
    client.on("error", () => {});
    try {
      await client.connect();
      const { rows } = await client.query<{ data_directory: string }>("SHOW data_directory");
      if (rows[0]?.data_directory !== this.dataDir) throw new Error(`port ${this.port} is served by another cluster (${rows[0]?.data_directory})`);
    } finally {
      await client.end().catch(() => {});
    }
  }

  private logTail(): string {
    if (!existsSync(this.logFile)) return "";
    return readFileSync(this.logFile, "utf8").trim().split("\n").filter(Boolean).slice(-3).join(" | ");
  }

  /**
   * kill -9 of the whole server, as a crash leaves it: the postmaster and each of its children
   * (backends, checkpointer, WAL writer…). Children outliving their postmaster keep the shared
   * memory attached, and a new postmaster refuses to start until they are gone; so they are killed
   * too, and this resolves once none is left. Committed transactions survive (fsync is on).
   */
  async kill(): Promise<void> {
    const child = this.child;
    const pid = child?.pid;
    if (!child || pid === undefined) return;
    child.kill("SIGSTOP"); // a stopped postmaster forks no new child while they are listed
    const children = childPids(pid);
    child.kill("SIGKILL");
    for (const c of children) signal(c, "SIGKILL");
    await this.exited;
    const deadline = Date.now() + STOP_GRACE_MS;
    while (children.some(alive)) {
      if (Date.now() > deadline)
        throw new Error(`postgres children ${children.filter(alive).join(", ")} still alive ${STOP_GRACE_MS} ms after SIGKILL`);
      await sleep(10);
    }
  }

  /**
   * Starts again on the same data dir and port, after kill() or stop(); after a kill, PostgreSQL first
   * replays its WAL (crash recovery). Resolves when it accepts connections.
   * @throws Error when still running; EnvironmentError as start().
   */
  async restart(): Promise<void> {
    if (this.child) throw new Error(`postgres on port ${this.port} is still running`);
    await this.launch();
  }

  /** Fast shutdown (SIGINT: open sessions are rolled back and closed), SIGKILL if it takes more than 10 s. */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child) return;
    child.kill("SIGINT");
    // kill() rejects only if children outlive SIGKILL; stop() waits for the postmaster either way.
    const timer = setTimeout(() => void this.kill().catch(() => {}), STOP_GRACE_MS);
    await this.exited;
    clearTimeout(timer);
  }

  /**
   * Kills the server and removes its temp dir; safe to call twice. The data is thrown away, so a
   * graceful stop's shutdown checkpoint (a second or so of fsync here) is not waited for.
   */
  async dispose(): Promise<void> {
    await this.kill();
    this.removeDir();
  }
}

/**
 * orderq's server settings: loopback TCP only, the socket in our dir (never /var/run/postgresql),
 * fsync on because the chaos runs test durability across kill -9, little memory (several servers
 * and a benchmark share a small machine).
 */
function defaultSettings(dir: string, port: number): Record<string, string> {
  return {
    port: String(port),
    listen_addresses: "127.0.0.1",
    unix_socket_directories: dir,
    fsync: "on",
    synchronous_commit: "on",
    shared_buffers: "32MB",
    max_connections: "100",
  };
}

const execFileAsync = promisify(execFile);

/** Runs a command as `user`; @throws its error, whose message ends with the command's stderr. */
async function run(command: string, args: string[], user: RunAs | undefined, cwd: string): Promise<void> {
  try {
    await execFileAsync(command, args, { ...spawnUser(user, cwd), encoding: "utf8" });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    const detail = (e.stderr ?? "").trim().split("\n").filter(Boolean).slice(-2).join(" | ") || e.message;
    throw new EnvironmentError(`${command} in ${cwd} failed: ${detail}`);
  }
}

/** initdb's output per bin dir, made once per process: copying it (~0.2 s) is far cheaper than initdb (1.4 s of CPU). */
const templates = new Map<string, Promise<string>>();

/** The data dir of a fresh cluster to copy; removed when this process exits. */
function template(binDir: string, user: RunAs | undefined): Promise<string> {
  let made = templates.get(binDir);
  if (!made) {
    made = initdb(binDir, user);
    templates.set(binDir, made);
    made.catch(() => templates.delete(binDir)); // the next start() tries again
  }
  return made;
}

async function initdb(binDir: string, user: RunAs | undefined): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), "orderq-pg-template-"));
  removeOnExit(dir);
  if (user) chownSync(dir, user.uid, user.gid);
  const dataDir = join(dir, "data");
  const args = [
    "-D",
    dataDir,
    "-U",
    USER,
    "--auth=trust", // pg_hba.conf: the local socket and 127.0.0.1/::1 only, and we listen on nothing else
    "-E",
    "UTF8",
    "--locale=C",
    // initdb's own fsync of the fresh cluster: a throwaway cluster needs none, and it costs seconds.
    // The server runs with fsync on.
    "--no-sync",
  ];
  await run(join(binDir, "initdb"), args, user, dir);
  return dataDir;
}

/**
 * Options to run a command as `user` (when root starts a server) in `dir`. The environment is not
 * ours: orderq's may hold NATS credentials, and a server running as another user can read its own.
 */
function spawnUser(user: RunAs | undefined, dir: string): { uid?: number; gid?: number; cwd: string; env: NodeJS.ProcessEnv } {
  const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", LC_ALL: "C", HOME: dir };
  return user ? { uid: user.uid, gid: user.gid, cwd: dir, env: { ...env, USER, LOGNAME: USER } } : { cwd: dir, env };
}

/** Fields of /proc/<pid>/stat from the state (field 3) on; the command name may hold spaces. */
function statOf(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  } catch {
    return undefined;
  }
}

/** Running, or at least not yet a zombie (a zombie holds no shared memory). */
function alive(pid: number): boolean {
  const state = statOf(pid)?.[0];
  return state !== undefined && state !== "Z" && state !== "X";
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}
