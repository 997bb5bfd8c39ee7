/**
 * The chaos run's worker processes: a Supervisor (which replaces any that die) plus what the nemesis
 * needs — SIGKILL with the exit observed, SIGSTOP/SIGCONT — and a count of the deaths the nemesis
 * did not cause (a worker killing itself after a commit, a crash order).
 */
import { Supervisor, type SupervisorEvents, type SupervisorOptions } from "../fleet/supervisor.js";
import { sumStats } from "../fleet/worker-process.js";
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

/** Id of the quarantine lane's process (a worker the nemesis hits when a fault names it, or with target all). */
export const LANE_ID = "q1";

export class WorkerPool {
  readonly counters: PoolCounters = { spawned: 0, restarts: 0, killed: 0, selfCrashes: 0, otherExits: 0 };
  /** Every start, kill, pause, resume and exit of a worker, in order: the report's worker lanes and history.jsonl. */
  readonly events: WorkerEvent[] = [];
  /** Public for the autoscaler, which adds and retires workers through it. */
  readonly supervisor: Supervisor;
  /** The quarantine lane: a supervisor of its own, so the autoscaler never counts or retires it. */
  private readonly lane: Supervisor;
  private readonly everSpawned = new Set<string>();
  /** Pids the nemesis sent SIGKILL, until their exit is seen. */
  private readonly nemesisKills = new Set<number>();
  /** Paused pids and their worker ids. */
  private readonly paused = new Map<number, string>();
  private stopping = false;

  /** `laneArgs`: the arguments of the quarantine lane's process. */
  constructor(options: SupervisorOptions, laneArgs: (workerId: string) => string[], onEvent?: (text: string) => void) {
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
    this.supervisor = new Supervisor(options, events);
    this.lane = new Supervisor({ ...options, args: laneArgs }, events);
  }

  /** `processes` main-lane workers and the quarantine lane. */
  start(processes: number): void {
    for (let i = 0; i < processes; i++) this.supervisor.spawn();
    this.lane.spawn(LANE_ID);
  }

  /** Worker ids with a live process, the lane's included. */
  ids(): string[] {
    return [...this.supervisor.ids(), ...this.lane.ids()];
  }

  /** The main lane's worker ids with a live process: those that hold the orders a fault should hit. */
  mainIds(): string[] {
    return this.supervisor.ids();
  }

  stats(): WorkerStats {
    return sumStats([this.supervisor.stats(), this.lane.stats()]);
  }

  private record(event: WorkerEvent["event"], worker: string, pid: number | undefined, cause?: WorkerEvent["cause"]): void {
    this.events.push({ type: "worker", event, worker, ...(pid !== undefined && { pid }), time: Date.now(), ...(cause && { cause }) });
  }

  private process(id: string): ReturnType<Supervisor["process"]> {
    return this.supervisor.process(id) ?? this.lane.process(id);
  }

  /** SIGKILL; resolves true once the exit is seen (the supervisor then starts a replacement). */
  async kill(id: string): Promise<boolean> {
    const worker = this.process(id);
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
    const pid = this.process(id)?.pid;
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
    await Promise.all([this.supervisor.stop(graceMs), this.lane.stop(graceMs)]);
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
