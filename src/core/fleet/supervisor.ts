/**
 * Runs worker processes (`orderq work` children), replaces any that die, and sums their stats,
 * which each child reports over IPC. Retiring a child is a graceful drain (SIGTERM). A child that
 * exits 2 (bad input) is not replaced: a replacement would be refused the same way, forever.
 */
import { fork, type ChildProcess } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { killOnExit } from "./exit-kill.js";
import { LineSplitter } from "../base/lines.js";
import { emptyStats, type WorkerStats } from "../pipeline/worker.js";
import { SUPERVISED_ENV, type ChildReport } from "./child-channel.js";

export interface SupervisorOptions {
  /** Entry point of the CLI (bin/run.js) and the arguments of one worker process. */
  script: string;
  args: (workerId: string) => string[];
  /** Extra environment of every worker process. */
  env?: NodeJS.ProcessEnv;
  /** Delay before a dead worker is replaced; doubled (up to 5 s) while replacements die young. */
  restartDelayMs: number;
  /**
   * SIGKILL the workers if this process exits without stopping them (chaos runs, benchmarks: nothing
   * may outlive them). Off for `orderq work`: its workers drain what they hold and exit on their own
   * when the supervisor goes (a second Ctrl-C, a crash).
   */
  killOnExit?: boolean;
  /** Append each worker's stderr to this file instead of this process's stderr (chaos evidence). */
  logFile?: (workerId: string) => string;
  /**
   * Without logFile: each whole line a worker writes to stderr goes here instead of straight to this
   * process's stderr, so that the supervisor prints it through its own logger (above its status line
   * on a terminal, never glued onto it). Absent: the workers share this process's stderr.
   */
  stderrLine?: (workerId: string, line: string) => void;
}

export interface WorkerExit {
  id: string;
  pid: number | undefined;
  code: number | null;
  signal: NodeJS.Signals | null;
  /** A replacement is on its way (the worker was neither retired nor stopped, and did not exit 2). */
  replaced: boolean;
  /** The line the child reported before it exited with a failure, if it did. */
  message?: string;
}

/** The exit code of an orderq command refusing its input (src/core/base/errors.ts). */
export const BAD_INPUT_EXIT = 2;

export interface SupervisorEvents {
  onExit?(exit: WorkerExit): void;
  onSpawn?(workerId: string): void;
}

/**
 * A worker that dies sooner than this after its start, before its first report, "died young": it
 * cannot start, and is restarted ever more slowly. One that reported first was running: a crash order
 * killed it (the quarantine lane dies once per crash order's delivery), and it is restarted at once.
 */
const YOUNG_MS = 5_000;
const MAX_RESTART_DELAY_MS = 5_000;

interface Slot {
  id: string;
  child: ChildProcess;
  stats: WorkerStats;
  metrics?: object[];
  exited: Promise<void>;
  retiring: boolean;
  failure?: string;
  /** It sent a report: it connected and started its worker (it did not fail to start). */
  reported: boolean;
}

export class Supervisor {
  private readonly slots = new Map<string, Slot>();
  /** Stats and metrics of children that are gone (their last report). */
  private readonly retired = emptyStats();
  private readonly retiredMetrics: object[][] = [];
  private stopping = false;
  private next = 1;
  /** Current restart delay per worker id: a worker that cannot start must not spin the CPU. */
  private readonly delays = new Map<string, number>();

  constructor(
    private readonly options: SupervisorOptions,
    private readonly events: SupervisorEvents = {},
  ) {}

  /** Workers running and not being retired. */
  get active(): number {
    return [...this.slots.values()].filter((s) => !s.retiring).length;
  }

  pids(): number[] {
    return [...this.slots.values()].map((s) => s.child.pid).filter((p): p is number => p !== undefined);
  }

  /** Ids of the workers with a live process (those being retired included). */
  ids(): string[] {
    return [...this.slots.keys()];
  }

  /** The live process of worker `id` and its exit; undefined when it has none. */
  process(id: string): { pid: number | undefined; exited: Promise<void> } | undefined {
    const slot = this.slots.get(id);
    return slot && { pid: slot.child.pid, exited: slot.exited };
  }

  spawn(id = `w${this.next++}`): void {
    const log = this.options.logFile ? openSync(this.options.logFile(id), "a") : undefined;
    const { stderrLine } = this.options;
    const child = fork(this.options.script, this.options.args(id), {
      env: { ...process.env, ...this.options.env, [SUPERVISED_ENV]: "1" },
      stdio: ["ignore", "ignore", log ?? (stderrLine ? "pipe" : "inherit"), "ipc"],
    });
    if (log !== undefined) closeSync(log); // the child has its own copy
    if (log === undefined && stderrLine && child.stderr) {
      const lines = new LineSplitter((line) => stderrLine(id, line));
      child.stderr.setEncoding("utf8"); // a character split across two chunks stays whole
      child.stderr.on("data", (text: string) => lines.push(text));
      child.stderr.on("end", () => lines.end());
    }
    if (this.options.killOnExit) killOnExit(child);
    const slot: Slot = { id, child, stats: emptyStats(), retiring: false, exited: Promise.resolve(), reported: false };
    const startedAt = Date.now();
    slot.exited = new Promise((resolve) => {
      child.once("exit", (code, signal) => {
        this.slots.delete(id);
        addStats(this.retired, { ...slot.stats, inFlight: 0 });
        if (slot.metrics) this.retiredMetrics.push(slot.metrics);
        const replace = !this.stopping && !slot.retiring && code !== BAD_INPUT_EXIT;
        this.events.onExit?.({ id, pid: child.pid, code, signal, replaced: replace, message: slot.failure });
        if (replace) {
          const base = this.options.restartDelayMs;
          const young = !slot.reported && Date.now() - startedAt < YOUNG_MS;
          const delay = young ? Math.min(MAX_RESTART_DELAY_MS, (this.delays.get(id) ?? base / 2) * 2) : base;
          this.delays.set(id, delay);
          setTimeout(() => !this.stopping && this.spawn(id), delay);
        }
        resolve();
      });
    });
    child.on("message", (msg: ChildReport) => {
      if (msg?.type === "failed") slot.failure = msg.message;
      if (msg?.type !== "stats") return;
      slot.reported = true;
      slot.stats = msg.stats;
      if (msg.metrics) slot.metrics = msg.metrics;
    });
    this.slots.set(id, slot);
    this.events.onSpawn?.(id);
  }

  /** Gracefully retires one worker (the newest). */
  async retireOne(graceMs = 30_000): Promise<void> {
    const slot = [...this.slots.values()].filter((s) => !s.retiring).pop();
    if (!slot) return;
    slot.retiring = true;
    slot.child.kill("SIGTERM");
    const timer = setTimeout(() => slot.child.kill("SIGKILL"), graceMs); // a worker that hangs is not left running
    await slot.exited;
    clearTimeout(timer);
  }

  stats(): WorkerStats {
    const total = { ...this.retired, inFlight: 0 };
    for (const slot of this.slots.values()) addStats(total, slot.stats);
    return total;
  }

  /** Every child's last metrics snapshot, the gone ones included (their counters still count). */
  metricsSnapshots(): object[][] {
    const live = [...this.slots.values()].map((s) => s.metrics).filter((m): m is object[] => m !== undefined);
    return [...this.retiredMetrics, ...live];
  }

  /** Drains every worker; SIGKILL after the grace period. */
  async stop(graceMs = 30_000): Promise<void> {
    this.stopping = true;
    const slots = [...this.slots.values()];
    for (const slot of slots) slot.child.kill("SIGTERM");
    const timer = setTimeout(() => slots.forEach((s) => s.child.kill("SIGKILL")), graceMs);
    await Promise.all(slots.map((s) => s.exited));
    clearTimeout(timer);
  }
}

function addStats(into: WorkerStats, from: WorkerStats): void {
  for (const key of Object.keys(into) as (keyof WorkerStats)[]) into[key] += from[key];
}
