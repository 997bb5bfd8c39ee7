/**
 * The chaos run's intake gateways: `orderq intake` children, each on a port of its own that it keeps
 * across restarts (the producers know the gateways by URL). What the nemesis needs: SIGKILL with the
 * exit observed, and a restart on the same port that returns once the gateway is ready again.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { killOnExit } from "../fleet/exit-kill.js";
import { freePort } from "../fleet/nats-server.js";
import { EnvironmentError } from "../base/errors.js";

export interface GatewayPoolOptions {
  /** Entry point of the CLI (bin/run.js). */
  script: string;
  /** The arguments of `orderq intake` after the command name, except --port, --host and --gateway-id. */
  args: string[];
  /** Extra environment (credentials of a server the user gave). */
  env?: NodeJS.ProcessEnv;
  /** Each gateway's stdout and stderr are appended to this file (chaos evidence). */
  logFile: (gatewayId: string) => string;
}

export interface GatewayCounters {
  started: number;
  /** SIGKILLs the nemesis sent whose exit was seen. */
  killed: number;
  restarts: number;
}

interface Slot {
  id: string;
  port: number;
  child?: ChildProcess;
  exited: Promise<void>;
}

const READY_MS = 20_000;
const EXIT_WAIT_MS = 5_000;

export class GatewayPool {
  readonly counters: GatewayCounters = { started: 0, killed: 0, restarts: 0 };
  private readonly slots: Slot[] = [];

  private constructor(private readonly options: GatewayPoolOptions) {}

  /**
   * Starts `count` gateways (g1, g2, ...) on free loopback ports; resolves once each answers GET /readyz.
   * Throws EnvironmentError (the others stopped) when one exits or is not ready within 20 s.
   */
  static async start(count: number, options: GatewayPoolOptions): Promise<GatewayPool> {
    const pool = new GatewayPool(options);
    for (let i = 1; i <= count; i++) pool.slots.push({ id: `g${i}`, port: await freePort(), exited: Promise.resolve() });
    const started = await Promise.allSettled(pool.slots.map((slot) => pool.spawn(slot)));
    const failed = started.find((r) => r.status === "rejected");
    if (failed) {
      await pool.stop(0); // the ones that did start: the caller gets no pool to stop
      throw failed.reason;
    }
    return pool;
  }

  /** The gateways' base URLs, in id order; the same for the whole run. */
  get urls(): string[] {
    return this.slots.map((s) => `http://127.0.0.1:${s.port}`);
  }

  /** Ids of the gateways with a live process. */
  ids(): string[] {
    return this.slots.filter((s) => s.child).map((s) => s.id);
  }

  /** SIGKILL; resolves true once the exit is seen. The gateway stays down until restart(). */
  async kill(id: string): Promise<boolean> {
    const slot = this.slots.find((s) => s.id === id);
    const child = slot?.child;
    if (!slot || !child) return false;
    if (!child.kill("SIGKILL")) return false;
    const seen = await Promise.race([slot.exited.then(() => true), sleep(EXIT_WAIT_MS, false)]);
    if (seen) this.counters.killed++;
    return seen;
  }

  /** Starts gateway `id` again on its port; resolves once it is ready. Throws when it does not become ready. */
  async restart(id: string): Promise<void> {
    const slot = this.slots.find((s) => s.id === id);
    if (!slot || slot.child) return;
    this.counters.restarts++;
    await this.spawn(slot);
  }

  /** SIGTERM (a gateway answers what it holds and exits), SIGKILL after `graceMs`. */
  async stop(graceMs: number): Promise<void> {
    await Promise.all(
      this.slots.map(async (slot) => {
        const child = slot.child;
        if (!child) return;
        child.kill("SIGTERM");
        const exited = await Promise.race([slot.exited.then(() => true), sleep(graceMs, false)]);
        if (!exited) child.kill("SIGKILL");
        await slot.exited;
      }),
    );
  }

  private async spawn(slot: Slot): Promise<void> {
    const o = this.options;
    const log = openSync(o.logFile(slot.id), "a");
    const args = ["intake", ...o.args, "--host", "127.0.0.1", "--port", String(slot.port), "--gateway-id", slot.id];
    const child = spawn(process.execPath, [o.script, ...args], { env: { ...process.env, ...o.env }, stdio: ["ignore", log, log] });
    closeSync(log); // the child has its own copy
    killOnExit(child);
    this.counters.started++;
    slot.child = child;
    let gone = false;
    slot.exited = new Promise((resolve) =>
      child.once("exit", () => {
        gone = true;
        if (slot.child === child) slot.child = undefined;
        resolve();
      }),
    );
    const deadline = Date.now() + READY_MS;
    while (Date.now() < deadline && !gone) {
      const ready = await fetch(`http://127.0.0.1:${slot.port}/readyz`, { signal: AbortSignal.timeout(1000) })
        .then((res) => res.ok)
        .catch(() => false);
      if (ready) return;
      await sleep(100);
    }
    child.kill("SIGKILL");
    throw new EnvironmentError(
      `intake gateway ${slot.id} (port ${slot.port}) ${gone ? "exited" : "was not ready"} within ${READY_MS / 1000} s: see ${o.logFile(slot.id)}`,
    );
  }
}
