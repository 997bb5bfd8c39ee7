/**
 * The `orderq work` command line, built from typed options: the one place outside the flags'
 * definitions (src/commands/work.ts) that spells the worker's flags. `orderq work -p`, chaos runs, the
 * bench and the tests all start workers through it, so a renamed flag fails the type check, not a run.
 */
import type { TopologySettings } from "../nats/topology.js";
import type { Lane } from "../pipeline/worker.js";

/** Inbox mode's knobs. The database URL is not among them: it reaches a worker in ORDERQ_INBOX_URL. */
export interface InboxWorkOptions {
  table: string;
  /** Connections of each worker process. */
  poolSize: number;
  /** Most orders in one transaction. */
  maxBatch: number;
}

export interface AutoscaleOptions {
  min: number;
  max: number;
  targetLagSeconds: number;
  cooldownMs: number;
  sampleMs: number;
}

/** What an `orderq work` command line can say. Absent fields are left to the command's defaults. */
export interface WorkOptions {
  /** NATS URL(s). Credentials never go on a command line (`ps` shows it): see credentialEnv. */
  server?: string;
  /** Names and settings of the topology; only the four chosen names are passed (namesFor derives the rest). */
  settings?: Partial<TopologySettings>;
  concurrency?: number;
  /** More than one starts a supervisor of worker processes. */
  processes?: number;
  autoscale?: AutoscaleOptions;
  /** Path of the team's handler module, or "simulated" (the built-in). */
  handler?: string;
  inbox?: InboxWorkOptions;
  handlerMs?: number;
  failRate?: number;
  /** false: the simulated handler no longer rejects poison orders (the bug is "fixed"). */
  poisonSwitch?: boolean;
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  confirmAck?: boolean;
  exitWhenIdleMs?: number;
  drainTimeoutMs?: number;
  workerId?: string;
  /**
   * quarantine: this process is a quarantine lane (one order at a time). Absent: a main-lane worker,
   * which also runs a lane in-process when it is alone (no supervisor).
   */
  lane?: Lane;
  /** false: no DLQ mover in this process. */
  mover?: boolean;
  seed?: number;
  metricsPort?: number;
  crashAfterCommitRate?: number;
  dropAckRate?: number;
  /** Negative control: commit with a plain put. */
  unsafe?: boolean;
  /** Log every outcome decision with a timestamp (chaos evidence). */
  trace?: boolean;
  json?: boolean;
}

const ms = (value: number) => `${value}ms`;

/** The arguments of `orderq work` (after the CLI's entry point), "work" first. */
export function workArgs(o: WorkOptions): string[] {
  const args = ["work"];
  const add = (flag: string, value: string | number | undefined) => {
    if (value !== undefined) args.push(flag, String(value));
  };
  const toggle = (flag: string, value: boolean | undefined, negatable = false) => {
    if (value === true) args.push(flag);
    else if (value === false && negatable) args.push(flag.replace(/^--/, "--no-"));
  };
  add("--server", o.server);
  const s = o.settings ?? {};
  add("--stream", s.names?.stream);
  add("--consumer", s.names?.consumer);
  add("--dlq-stream", s.names?.dlqStream);
  add("--ledger-bucket", s.names?.ledgerBucket);
  add("--replicas", s.replicas);
  add("--ack-wait", s.ackWaitMs === undefined ? undefined : ms(s.ackWaitMs));
  add("--max-deliver", s.maxDeliver);
  add("--dup-window", s.dupWindowMs === undefined ? undefined : ms(s.dupWindowMs));
  add("--max-ack-pending", s.maxAckPending);
  add("--concurrency", o.concurrency);
  add("--processes", o.processes);
  if (o.autoscale) {
    toggle("--autoscale", true);
    add("--min", o.autoscale.min);
    add("--max", o.autoscale.max);
    add("--target-lag-seconds", o.autoscale.targetLagSeconds);
    add("--cooldown", ms(o.autoscale.cooldownMs));
    add("--sample-every", ms(o.autoscale.sampleMs));
  }
  add("--handler", o.handler);
  add("--inbox-table", o.inbox?.table);
  add("--inbox-pool", o.inbox?.poolSize);
  add("--inbox-batch", o.inbox?.maxBatch);
  add("--handler-ms", o.handlerMs);
  add("--fail-rate", o.failRate);
  toggle("--poison-switch", o.poisonSwitch, true);
  add("--backoff-base", o.backoffBaseMs === undefined ? undefined : ms(o.backoffBaseMs));
  add("--backoff-max", o.backoffMaxMs === undefined ? undefined : ms(o.backoffMaxMs));
  toggle("--confirm-ack", o.confirmAck);
  add("--exit-when-idle", o.exitWhenIdleMs === undefined ? undefined : ms(o.exitWhenIdleMs));
  add("--drain-timeout", o.drainTimeoutMs === undefined ? undefined : ms(o.drainTimeoutMs));
  add("--worker-id", o.workerId);
  add("--lane", o.lane);
  toggle("--mover", o.mover, true);
  add("--seed", o.seed);
  add("--metrics-port", o.metricsPort);
  add("--crash-after-commit-rate", o.crashAfterCommitRate);
  add("--drop-ack-rate", o.dropAckRate);
  toggle("--unsafe", o.unsafe);
  toggle("--trace", o.trace);
  toggle("--json", o.json);
  return args;
}

/** WorkOptions as the command resolves them: its defaults filled in, the topology settings whole. */
export type ResolvedWorkOptions = Required<
  Pick<
    WorkOptions,
    | "server"
    | "concurrency"
    | "handler"
    | "drainTimeoutMs"
    | "processes"
    | "handlerMs"
    | "failRate"
    | "poisonSwitch"
    | "backoffBaseMs"
    | "backoffMaxMs"
    | "confirmAck"
    | "workerId"
    | "mover"
    | "crashAfterCommitRate"
    | "dropAckRate"
    | "unsafe"
    | "trace"
  >
> &
  Pick<WorkOptions, "autoscale" | "exitWhenIdleMs" | "seed" | "metricsPort" | "lane"> & {
    settings: TopologySettings;
    /** Inbox mode, with the database URL (which workArgs leaves out). */
    inbox?: InboxWorkOptions & { url: string };
  };
