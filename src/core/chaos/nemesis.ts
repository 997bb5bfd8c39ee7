/**
 * The nemesis: runs a scenario's fault schedule against real processes and records each fault's
 * window and whether it was really observed (a SIGKILL whose exit was seen, a cut that destroyed
 * connections...). Every fault is healed before its occurrence ends, also when the run is aborted.
 */
import type { NatsServer } from "../fleet/nats-server.js";
import type { PostgresServer } from "../fleet/postgres-server.js";
import { seededRng, type Rng } from "../base/random.js";
import { errorMessage } from "../base/errors.js";
import type { ProxiedPath } from "./proxy.js";
import type { FaultKind, FaultSpec } from "./scenario.js";
import type { WorkerPool } from "./worker-pool.js";
import type { GatewayPool } from "./gateway-pool.js";

export interface FaultWindow {
  kind: FaultKind;
  target: string;
  /** From the start of the run. */
  startMs: number;
  endMs: number;
  observed: boolean;
  detail: string;
}

export interface NemesisTargets {
  workers: WorkerPool;
  /** Servers this run started (none with --server: server faults are then refused up front). */
  servers: NatsServer[];
  /** Name of the ORDERS stream's leader in a cluster. */
  leader(): Promise<string | undefined>;
  paths: { workers: ProxiedPath; producers: ProxiedPath };
  /** The inbox's PostgreSQL, in an inbox scenario (db-restart needs it). */
  database?: Pick<PostgresServer, "kill" | "restart" | "running" | "port">;
  /** The intake gateways, in an intake scenario (kill-gateway needs them). */
  gateways?: Pick<GatewayPool, "ids" | "kill" | "restart">;
}

export interface NemesisEvents {
  onFault?(window: FaultWindow): void;
}

/** Resolves after `ms`, or at once when any signal aborts. */
function sleep(ms: number, ...signals: AbortSignal[]): Promise<void> {
  return new Promise((resolve) => {
    const signal = AbortSignal.any(signals);
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, Math.max(0, ms));
    signal.addEventListener("abort", done, { once: true });
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
  });
}

function pick<T>(items: T[], rng: Rng): T | undefined {
  return items.length ? items[Math.floor(rng() * items.length)] : undefined;
}

export class Nemesis {
  readonly windows: FaultWindow[] = [];
  private readonly aborted = new AbortController();
  /** Open-ended schedules (`every` without `count`) end when production does. */
  private readonly productionOver = new AbortController();
  private t0 = 0;
  private running?: Promise<void>;
  private failure?: unknown;
  /** A server kill in progress, from the kill until its restart has returned. */
  private serverFault = false;
  /** The same for the inbox's database. */
  private dbFault = false;
  /** The same for an intake gateway. */
  private gatewayFault = false;

  constructor(
    private readonly specs: FaultSpec[],
    private readonly targets: NemesisTargets,
    private readonly seed: number,
    private readonly events: NemesisEvents = {},
  ) {}

  start(t0: number): void {
    this.t0 = t0;
    this.running = Promise.all(this.specs.map((spec, i) => this.runSchedule(spec, seededRng(this.seed + 7919 * (i + 1))))).then(() => undefined);
  }

  endProduction(): void {
    this.productionOver.abort();
  }

  /** Stops scheduling; faults in progress are healed before wait() resolves. */
  abort(): void {
    this.aborted.abort();
  }

  /** Resolves when every scheduled fault has run and been healed; rethrows a fault that could not be healed. */
  async wait(): Promise<void> {
    await this.running;
    if (this.failure) throw this.failure instanceof Error ? this.failure : new Error(errorMessage(this.failure));
  }

  private async runSchedule(spec: FaultSpec, rng: Rng): Promise<void> {
    const openEnded = spec.count === undefined && spec.everyMs !== undefined;
    const first = spec.atMs ?? spec.everyMs ?? 0;
    const occurrences = spec.everyMs === undefined ? 1 : (spec.count ?? Number.POSITIVE_INFINITY);
    for (let n = 0; n < occurrences; n++) {
      const due = this.t0 + first + n * (spec.everyMs ?? 0) + rng() * spec.jitterMs;
      const signals = openEnded ? [this.aborted.signal, this.productionOver.signal] : [this.aborted.signal];
      await sleep(due - Date.now(), ...signals);
      if (signals.some((s) => s.aborted)) return;
      const kind = spec.kind === "any" ? (pick(spec.of, rng) as FaultKind) : spec.kind;
      try {
        const window = await this.inject(kind, spec, rng, signals);
        this.windows.push(window);
        this.events.onFault?.(window);
      } catch (err) {
        this.failure ??= err;
        this.aborted.abort();
        return;
      }
    }
  }

  private now(): number {
    return Date.now() - this.t0;
  }

  /** `until`: a fault still waiting for its turn when one of these aborts is skipped. */
  private async inject(kind: FaultKind, spec: FaultSpec, rng: Rng, until: AbortSignal[]): Promise<FaultWindow> {
    let startMs = this.now();
    const window = (target: string, observed: boolean, detail: string): FaultWindow => ({
      kind,
      target,
      startMs,
      endMs: this.now(),
      observed,
      detail,
    });
    // `any` applies each kind's default target: one target name cannot fit every kind.
    const target = spec.kind === "any" ? undefined : spec.target;
    switch (kind) {
      case "kill-worker": {
        const ids = this.pickWorkers(target, rng);
        if (ids.length === 0) return window("-", false, "no live worker");
        const exited = await Promise.all(ids.map((id) => this.targets.workers.kill(id)));
        return window(ids.join(","), exited.some(Boolean), `SIGKILL; exit seen for ${exited.filter(Boolean).length} of ${ids.length}`);
      }
      case "pause-worker": {
        const ids = this.pickWorkers(target, rng);
        const pids = ids.map((id) => this.targets.workers.pause(id)).filter((p): p is number => p !== undefined);
        await sleep(spec.durationMs, this.aborted.signal);
        for (const pid of pids) this.targets.workers.resume(pid);
        return window(ids.join(",") || "-", pids.length > 0, `SIGSTOP for ${spec.durationMs} ms, then SIGCONT`);
      }
      case "kill-server": {
        const servers = this.targets.servers;
        // One node down at a time: a second loss would take the cluster's quorum, not model a crash.
        // So a kill waits until the previous one's node is back (restarting counts as down: killing
        // a node that is starting again would race its restart).
        while (this.serverFault || servers.some((s) => !s.running)) {
          if (until.some((s) => s.aborted)) return window("-", false, "skipped: its schedule ended while a server was down");
          await sleep(100, ...until);
        }
        startMs = this.now();
        this.serverFault = true;
        try {
          const name = target === "leader" ? await this.targets.leader() : target && target !== "random" ? target : pick(servers, rng)?.name;
          const server = servers.find((s) => s.name === name);
          if (!server) return window(name ?? "-", false, "no such server");
          await server.kill();
          await sleep(spec.durationMs, this.aborted.signal);
          await server.restart();
          return window(server.name, true, `kill -9, restarted on the same store after ${spec.durationMs} ms`);
        } finally {
          this.serverFault = false;
        }
      }
      case "db-restart": {
        const db = this.targets.database;
        if (!db) return window("-", false, "no inbox database in this run");
        // One outage at a time: a kill while the previous restart is under way would race it.
        while (this.dbFault || !db.running) {
          if (until.some((s) => s.aborted)) return window("-", false, "skipped: its schedule ended while the database was down");
          await sleep(100, ...until);
        }
        startMs = this.now();
        this.dbFault = true;
        try {
          await db.kill();
          await sleep(spec.durationMs, this.aborted.signal);
          await db.restart();
          return window(
            `postgres:${db.port}`,
            true,
            `kill -9 of the postmaster and its children, restarted on the same data dir after ${spec.durationMs} ms`,
          );
        } finally {
          this.dbFault = false;
        }
      }
      case "kill-gateway": {
        const gateways = this.targets.gateways;
        if (!gateways) return window("-", false, "no intake gateways in this run");
        // One gateway down at a time: with every gateway down the clients only wait, nothing is tested.
        while (this.gatewayFault) {
          if (until.some((s) => s.aborted)) return window("-", false, "skipped: its schedule ended while a gateway was down");
          await sleep(100, ...until);
        }
        startMs = this.now();
        this.gatewayFault = true;
        try {
          const ids = gateways.ids();
          const id = target && target !== "random" ? ids.find((g) => g === target) : pick(ids, rng);
          if (!id) return window(target ?? "-", false, "no such live gateway");
          const seen = await gateways.kill(id);
          await sleep(spec.durationMs, this.aborted.signal);
          await gateways.restart(id);
          return window(id, seen, `SIGKILL (exit ${seen ? "seen" : "not seen"}), restarted on the same port after ${spec.durationMs} ms`);
        } finally {
          this.gatewayFault = false;
        }
      }
      case "cut-network":
      case "slow-network": {
        const paths = this.pickPaths(target);
        const before = paths.map((p) => p.counters());
        let destroyed = 0;
        if (kind === "cut-network") destroyed = paths.reduce((sum, p) => sum + p.cut(), 0);
        else for (const p of paths) p.slow(spec.delayMs);
        await sleep(spec.durationMs, this.aborted.signal);
        for (const p of paths) p.heal();
        const after = paths.map((p) => p.counters());
        const refused = after.reduce((sum, c, i) => sum + c.refused - before[i].refused, 0);
        const delayed = after.reduce((sum, c, i) => sum + c.delayed - before[i].delayed, 0);
        const name = target ?? "workers";
        return kind === "cut-network"
          ? window(name, destroyed + refused > 0, `${destroyed} connections cut, ${refused} refused, for ${spec.durationMs} ms`)
          : window(name, delayed > 0, `${delayed} chunks delayed by ${spec.delayMs} ms, for ${spec.durationMs} ms`);
      }
    }
  }

  private pickWorkers(target: string | undefined, rng: Rng): string[] {
    const ids = this.targets.workers.ids();
    if (target === "all") return ids;
    if (target && target !== "random") return ids.filter((id) => id === target);
    // A random fault hits a main-lane worker: the quarantine lane is idle unless there are suspects,
    // and a run whose every pause landed on it would have had faults that changed nothing.
    const one = pick(this.targets.workers.mainIds(), rng);
    return one ? [one] : [];
  }

  private pickPaths(target: string | undefined): ProxiedPath[] {
    const { workers, producers } = this.targets.paths;
    if (target === "producers") return [producers];
    if (target === "all") return [workers, producers];
    return [workers];
  }
}
