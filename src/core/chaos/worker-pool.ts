/**
 * The chaos run's worker processes: a Supervisor (which replaces any that die) plus what the nemesis
 * needs — SIGKILL with the exit observed, SIGSTOP/SIGCONT — and a count of the deaths the nemesis
 * did not cause (a worker killing itself after a commit, a crash order).
 */
import type { Supervisor, SupervisorEvents } from "../fleet/supervisor.js";
import { WorkerLanes, type WorkerLanesOptions } from "../fleet/worker-lanes.js";
import type { WorkerStats } from "../pipeline/worker.js";
import type { WorkerEvent } from "./timeline.js";

export interface PoolCounters {
  spawned: number;
  /** Replacements of workers that died (a scale-up is not one). */
  restarts: number;
  /** SIGKILLs the nemesis sent whose exit was seen. */
  killed: number;
  /** Workers that died of SIGKILL the nemesis did not send: crash-after-commit, crash orders. */
  selfCrashes: number;
  /** Other exits (an error ended the process); the supervisor replaced them too. */
  otherExits: number;
}

const EXIT_WAIT_MS = 5_000;

export class WorkerPool {
  readonly counters: PoolCounters = { spawned: 0, restarts: 0, killed: 0, selfCrashes: 0, otherExits: 0 };
  /** Every start, kill, pause, resume and exit of a worker, in order: the report's worker lanes and history.jsonl. */
  readonly events: WorkerEvent[] = [];
  /** The main lane's supervisor, public for the autoscaler, which adds and retires workers through it. */
  readonly supervisor: Supervisor;
  /** Both lanes; the quarantine lane's process is one the nemesis hits when a fault names it, or with target all. */
  private readonly lanes: WorkerLanes;
  private readonly everSpawned = new Set<string>();
  /** Pids the nemesis sent SIGKILL, until their exit is seen. */
  private readonly nemesisKills = new Set<number>();
  /** Paused pids and their worker ids. */
  private readonly paused = new Map<number, string>();
  private stopping = false;

  constructor(options: WorkerLanesOptions, onEvent?: (text: string) => void) {
    const events: SupervisorEvents = {
      onSpawn: (id) => {
        this.counters.spawned++;
        if (this.everSpawned.has(id)) this.counters.restarts++;
        this.everSpawned.add(id);
        this.record("start", id, this.process(id)?.pid);
      },
      onExit: ({ id, pid, code, signal }) => {
        if (pid === undefined) return;
        this.paused.delete(pid);
        let cause: WorkerEvent["cause"] = this.stopping ? "stopped" : undefined;
        if (this.nemesisKills.delete(pid)) {
          this.counters.killed++;
          cause = "nemesis";
        } else if (signal === "SIGKILL") {
          this.counters.selfCrashes++;
          cause = "self-crash";
          onEvent?.(`worker ${id} killed itself`);
        } else if (code !== 0) {
          this.counters.otherExits++;
          cause ??= "error";
        }
        this.record("exit", id, pid, cause ?? "stopped");
      },
    };
    this.lanes = new WorkerLanes(options, events);
    this.supervisor = this.lanes.main;
  }

  /** `processes` main-lane workers and the quarantine lane. */
  start(processes: number): void {
    this.lanes.start(processes);
  }

  /** Worker ids with a live process, the lane's included. */
  ids(): string[] {
    return this.lanes.ids();
  }

  /** The main lane's worker ids with a live process: those that hold the orders a fault should hit. */
  mainIds(): string[] {
    return this.supervisor.ids();
  }

  stats(): WorkerStats {
    return this.lanes.stats();
  }

  private record(event: WorkerEvent["event"], worker: string, pid: number | undefined, cause?: WorkerEvent["cause"]): void {
    this.events.push({ type: "worker", event, worker, ...(pid !== undefined && { pid }), time: Date.now(), ...(cause && { cause }) });
  }

  private process(id: string): ReturnType<Supervisor["process"]> {
    return this.lanes.process(id);
  }

  /** SIGKILL; resolves true once the exit is seen (the supervisor then starts a replacement). */
  async kill(id: string): Promise<boolean> {
    const worker = this.lanes.process(id);
    const pid = worker?.pid;
    if (!worker || pid === undefined) return false;
    this.nemesisKills.add(pid);
    this.record("kill", id, pid);
    if (!signal(pid, "SIGKILL")) {
      this.nemesisKills.delete(pid);
      return false;
    }
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), EXIT_WAIT_MS)));
    const seen = await Promise.race([worker.exited.then(() => true), timedOut]);
    clearTimeout(timer);
    return seen;
  }

  /** SIGSTOP; returns the pid to resume, or undefined when the worker is gone. */
  pause(id: string): number | undefined {
    const pid = this.lanes.process(id)?.pid;
    if (pid === undefined || !signal(pid, "SIGSTOP")) return undefined;
    this.paused.set(pid, id);
    this.record("pause", id, pid);
    return pid;
  }

  resume(pid: number): void {
    const id = this.paused.get(pid);
    if (!this.paused.delete(pid)) return; // it died while paused: nothing to resume
    if (signal(pid, "SIGCONT") && id !== undefined) this.record("resume", id, pid);
  }

  /** Graceful drain (SIGTERM, SIGKILL after the grace period); paused workers are resumed first. */
  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    for (const pid of [...this.paused.keys()]) this.resume(pid);
    await this.lanes.stop(graceMs);
  }
}

/** Sends a signal; false when the process is already gone. */
function signal(pid: number, sig: NodeJS.Signals): boolean {
  try {
    process.kill(pid, sig);
    return true;
  } catch {
    return false;
  }
}
