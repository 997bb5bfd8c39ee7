/** Real `orderq work` processes for the benchmark, under the project's Supervisor. */
import type { Names } from "../nats/names.js";
import { QUARANTINE_LANE_ID, WorkerLanes } from "../fleet/worker-lanes.js";
import { peakRssMb } from "../fleet/procfs.js";
import { workArgs, type InboxWorkOptions } from "../fleet/work-args.js";
import { INBOX_URL_ENV } from "../inbox/connect.js";

export interface WorkerLaunch {
  /** bin/run.js of this orderq. */
  script: string;
  /** `--server` of the worker processes. */
  server: string;
  /** Credentials travel in NATS_* variables, not in arguments that `ps` shows. */
  env: NodeJS.ProcessEnv;
  processes: number;
  concurrency: number;
  /** A handler module (default: the simulated one). */
  handler?: string;
  /** Inbox mode; its URL travels in `env` (ORDERQ_INBOX_URL), never in the arguments. */
  inbox?: InboxWorkOptions;
}

export class BenchWorkers {
  /** Workers that died during the phase (the supervisor replaced them). */
  restarts = 0;
  /** Both lanes; the quarantine lane's process is not a worker here (its memory is not measured). */
  private readonly lanes: WorkerLanes;

  constructor(
    private readonly launch: WorkerLaunch,
    names: Names,
  ) {
    this.lanes = new WorkerLanes(
      {
        script: launch.script,
        args: (workerId, lane) =>
          workArgs({
            server: launch.server,
            settings: { names },
            concurrency: launch.concurrency,
            handler: launch.handler,
            inbox: launch.inbox,
            workerId,
            lane,
          }),
        // A worker inherits our environment, whose ORDERQ_INBOX_URL would turn on inbox mode (the `--inbox`
        // flag reads it) against a database that is not the bench's: only an inbox phase's launch passes one.
        env: launch.inbox ? launch.env : { ...launch.env, [INBOX_URL_ENV]: undefined },
        restartDelayMs: 200,
        killOnExit: true,
      },
      // The quarantine lane is there so that a redelivered order does not wait forever; its restarts are not the workers'.
      { onExit: ({ id, replaced }) => void (replaced && id !== QUARANTINE_LANE_ID && this.restarts++) },
    );
  }

  start(): void {
    this.lanes.start(this.launch.processes);
  }

  pids(): number[] {
    return this.lanes.main.pids();
  }

  /** VmHWM of each live worker: read before stop(), while the processes still exist. */
  peakRssMb(): number[] {
    return this.pids().map((pid) => Math.round(peakRssMb(pid) ?? 0));
  }

  /** Graceful drain (SIGTERM), as an operator would stop them. */
  async stop(): Promise<void> {
    await this.lanes.stop(10_000);
  }
}
