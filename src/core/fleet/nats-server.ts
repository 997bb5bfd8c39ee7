/**
 * Local nats-server processes for tests, chaos runs and `orderq server start`: JetStream on, a store
 * directory of their own, a loopback port. Never a server that happens to be running.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { accessSync, closeSync, constants, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { connect } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { EnvironmentError } from "../base/errors.js";
import { keepDir, removeOnExit } from "./exit-kill.js";
import { waitUntilReady, watchExit } from "./server-process.js";
import { threadStates } from "./procfs.js";

const READY_TIMEOUT_MS = 30_000;
const STOP_GRACE_MS = 5_000;

/** `$NATS_SERVER_BIN`, then `PATH`, then Debian's `/usr/sbin/nats-server`. */
export function findNatsServerBinary(env: NodeJS.ProcessEnv = process.env): string {
  const candidates = [
    env.NATS_SERVER_BIN,
    ...(env.PATH ?? "")
      .split(delimiter)
      .filter(Boolean)
      .map((dir) => join(dir, "nats-server")),
    "/usr/sbin/nats-server",
  ].filter((p): p is string => Boolean(p));
  for (const candidate of candidates) {
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // try the next one
    }
  }
  throw new EnvironmentError("nats-server not found: install it (apt-get install nats-server) or set NATS_SERVER_BIN to its path");
}

/**
 * Throws EnvironmentError (exit 3) when `port` cannot be bound on loopback: another server holds it.
 * Checked before launching, because the readiness probe alone would be answered by that server.
 */
export function assertPortFree(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once("error", (err: NodeJS.ErrnoException) =>
      reject(
        err.code === "EADDRINUSE"
          ? new EnvironmentError(
              `port ${port} is already in use (another server? \`orderq server stop --port ${port}\` stops one that orderq started)`,
            )
          : new EnvironmentError(`cannot listen on port ${port}: ${err.message}`),
      ),
    );
    srv.listen(port, "127.0.0.1", () => srv.close(() => resolve()));
  });
}

/** Asks the OS for a free loopback port. Another process may take it before we do; start() retries. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const address = srv.address();
      const port = typeof address === "object" && address ? address.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export interface ServerOptions {
  /** Client port; a free one when absent. */
  port?: number;
  /** JetStream store; a temp dir (removed by dispose()) when absent. */
  storeDir?: string;
  /** server_name, needed in a cluster. */
  name?: string;
  cluster?: { name: string; port: number; routes: number[] };
  binary?: string;
  /** Clients must log in with this user and password (tests of the credential flags). */
  auth?: { user: string; password: string };
  /**
   * The server outlives this process (`orderq server start --detach`): its own process group, not
   * killed when orderq exits, and its store kept (stopDetached removes a temp one).
   */
  detached?: boolean;
  /** Disable JetStream (tests of the "no JetStream" environment error). */
  noJetStream?: boolean;
}

export class NatsServer {
  readonly port: number;
  readonly storeDir: string;
  readonly name: string;
  private child?: ChildProcess;
  private exited?: Promise<void>;
  private readonly configFile: string;

  private constructor(
    private readonly options: ServerOptions & { port: number; storeDir: string; binary: string },
    /** Set when this object made the store: removes it (at dispose, or when this process exits). */
    private readonly removeStore: (() => void) | undefined,
  ) {
    this.port = options.port;
    this.storeDir = options.storeDir;
    this.name = options.name ?? `orderq-${options.port}`;
    this.configFile = join(this.storeDir, "nats-server.conf");
  }

  static async start(options: ServerOptions = {}): Promise<NatsServer> {
    const binary = options.binary ?? findNatsServerBinary();
    const storeDir = options.storeDir ?? mkdtempSync(join(tmpdir(), "orderq-nats-"));
    const removeStore = options.storeDir ? undefined : removeOnExit(storeDir);
    mkdirSync(storeDir, { recursive: true });
    for (let attempt = 1; ; attempt++) {
      const port = options.port ?? (await freePort());
      if (options.port !== undefined) {
        try {
          await assertPortFree(port);
        } catch (err) {
          removeStore?.();
          throw err;
        }
      }
      const server = new NatsServer({ ...options, port, storeDir, binary }, removeStore);
      try {
        await server.launch();
        return server;
      } catch (err) {
        // A free port can be taken between freePort() and the bind: pick another one.
        if (options.port !== undefined || attempt >= 3) {
          removeStore?.();
          throw err;
        }
      }
    }
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== undefined;
  }

  private writeConfig(): void {
    const lines = [`server_name: "${this.name}"`, `listen: "127.0.0.1:${this.port}"`];
    if (!this.options.noJetStream) lines.push(`jetstream { store_dir: "${join(this.storeDir, "js")}" }`);
    const auth = this.options.auth;
    if (auth) lines.push(`authorization { user: ${JSON.stringify(auth.user)}, password: ${JSON.stringify(auth.password)} }`);
    const cluster = this.options.cluster;
    if (cluster) {
      const routes = cluster.routes.map((p) => `"nats-route://127.0.0.1:${p}"`).join(", ");
      // no_advertise: clients keep to the URLs they were given (chaos proxies), never learn others.
      lines.push(`cluster { name: "${cluster.name}", listen: "127.0.0.1:${cluster.port}", routes: [${routes}], no_advertise: true }`);
    }
    writeFileSync(this.configFile, lines.join("\n") + "\n");
  }

  private async launch(): Promise<void> {
    this.writeConfig();
    const logFile = join(this.storeDir, "nats-server.log");
    // A panic goes to stderr, not to the log: keep it, so "exited at start" can say why.
    const stderrFile = join(this.storeDir, "nats-server.stderr");
    const stderr = openSync(stderrFile, "a");
    const detached = this.options.detached === true;
    const child = spawn(this.options.binary, ["-c", this.configFile, "-l", logFile], {
      stdio: ["ignore", "ignore", stderr],
      detached,
    });
    closeSync(stderr);
    this.child = child;
    this.exited = watchExit(
      child,
      () => {
        if (this.child === child) this.child = undefined;
      },
      { killOnExit: !detached },
    );
    await waitUntilReady(child, this.exited, {
      what: `nats-server on port ${this.port}`,
      probe: () => this.probeJetStream(),
      timeoutMs: READY_TIMEOUT_MS,
      everyMs: 100,
      exitDetail: () => this.logTail(stderrFile) || this.logTail(logFile),
      kill: () => this.kill(),
    });
  }

  /**
   * Ready means JetStream answers, not just that the port is open (a cluster needs a meta leader),
   * and that the answer comes from this server: another one on the port would answer too.
   */
  private async probeJetStream(): Promise<void> {
    const nc = await connect({
      servers: this.url,
      timeout: 1000,
      reconnect: false,
      user: this.options.auth?.user,
      pass: this.options.auth?.password,
    });
    try {
      const answered = nc.info?.server_name;
      if (answered !== this.name) throw new EnvironmentError(`port ${this.port} is answered by another server (${answered ?? "unnamed"})`);
      if (this.options.noJetStream) return;
      const jsm = await jetstreamManager(nc, { timeout: 1000 });
      await jsm.getAccountInfo();
    } finally {
      await nc.close();
    }
  }

  private logTail(file: string): string {
    if (!existsSync(file)) return "";
    const lines = readFileSync(file, "utf8").trim().split("\n").filter(Boolean);
    return lines.slice(-3).join(" | ");
  }

  /** Graceful stop (SIGTERM), SIGKILL if it does not exit in time. */
  async stop(): Promise<void> {
    await this.signalAndWait("SIGTERM", STOP_GRACE_MS);
  }

  /** kill -9: the store stays as the crash left it. */
  async kill(): Promise<void> {
    await this.signalAndWait("SIGKILL", STOP_GRACE_MS);
  }

  /**
   * Starts again on the same port and store. A node that dies while recovering from a kill -9 (seen
   * with nats-server 2.9.10 in a cluster) is given two more tries, as a supervisor would.
   */
  async restart(): Promise<void> {
    if (this.child) throw new Error(`nats-server ${this.name} is still running`);
    for (let attempt = 1; ; attempt++) {
      try {
        await this.launch();
        return;
      } catch (err) {
        if (attempt >= 3) throw err;
        await sleep(500);
      }
    }
  }

  /**
   * Stops the process (SIGSTOP) and resolves once every thread of it has stopped: kill() returns
   * before the stop takes effect, and a server thread that was running could still answer a request
   * sent just after it (seen once in six runs of a test).
   */
  async pause(): Promise<void> {
    const pid = this.child?.pid;
    if (pid === undefined) return;
    this.child?.kill("SIGSTOP");
    const deadline = Date.now() + 2_000;
    // Every thread stopped, or /proc cannot tell (not Linux, process gone).
    const stopped = () => threadStates(pid)?.every((state) => state === "T" || state === "t") ?? true;
    while (!stopped()) {
      if (Date.now() > deadline) throw new Error(`nats-server ${pid} did not stop within 2 s of SIGSTOP`);
      await sleep(1);
    }
  }

  resume(): void {
    this.child?.kill("SIGCONT");
  }

  /**
   * Lets this process exit while the server runs on (`detached` servers only): the caller stops it
   * later with stopDetached. The temp store, if this object made it, is kept for that stop.
   */
  release(): void {
    this.child?.unref();
    this.child?.removeAllListeners();
    this.child = undefined;
    keepDir(this.storeDir);
  }

  /** Stops the process and removes the store if this object created it. */
  async dispose(): Promise<void> {
    await this.stop();
    this.removeStore?.();
  }

  private async signalAndWait(signal: NodeJS.Signals, graceMs: number): Promise<void> {
    const child = this.child;
    if (!child) return;
    child.kill("SIGCONT"); // a paused server cannot act on SIGTERM
    child.kill(signal);
    const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}

/** A JetStream cluster on loopback: each node has its own store and client port. */
export class NatsCluster {
  private constructor(
    readonly servers: NatsServer[],
    /** Set when this object made the base directory (see NatsServer's removeStore). */
    private readonly removeDir?: () => void,
  ) {}

  static async start(size = 3, options: { baseDir?: string; binary?: string } = {}): Promise<NatsCluster> {
    const baseDir = options.baseDir ?? mkdtempSync(join(tmpdir(), "orderq-cluster-"));
    const removeDir = options.baseDir ? undefined : removeOnExit(baseDir);
    for (let attempt = 1; ; attempt++) {
      const clientPorts: number[] = [];
      const routePorts: number[] = [];
      for (let i = 0; i < size; i++) {
        clientPorts.push(await freePort());
        routePorts.push(await freePort());
      }
      // Nodes cannot become ready one by one (JetStream needs a quorum), so launch them together.
      const started = await Promise.allSettled(
        clientPorts.map((port, i) =>
          NatsServer.start({
            port,
            name: `n${i + 1}`,
            storeDir: join(baseDir, `n${i + 1}`),
            binary: options.binary,
            cluster: { name: "orderq", port: routePorts[i], routes: routePorts.filter((_, j) => j !== i) },
          }),
        ),
      );
      const servers = started.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
      if (servers.length === size) return new NatsCluster(servers, removeDir);
      // A free port can be taken before its node binds it (another test's server, on a busy machine):
      // stop the nodes that did start and try again on other ports, on fresh stores.
      await Promise.all(servers.map((s) => s.stop()));
      for (let i = 0; i < size; i++) rmSync(join(baseDir, `n${i + 1}`), { recursive: true, force: true });
      if (attempt >= 3) {
        removeDir?.();
        throw (started.find((r) => r.status === "rejected") as PromiseRejectedResult).reason;
      }
    }
  }

  /** Every node's URL, so a client fails over when one node dies. */
  get url(): string {
    return this.servers.map((s) => s.url).join(",");
  }

  byName(name: string): NatsServer | undefined {
    return this.servers.find((s) => s.name === name);
  }

  async dispose(): Promise<void> {
    await Promise.all(this.servers.map((s) => s.stop()));
    this.removeDir?.();
  }
}
