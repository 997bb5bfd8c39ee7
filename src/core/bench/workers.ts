/** Real `orderq work` processes for the benchmark, under the project's Supervisor. */
import type { Names } from "../nats/names.js";
import { Supervisor, type SupervisorOptions } from "../fleet/supervisor.js";
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
  private readonly supervisor: Supervisor;
  /** The quarantine lane, apart (its memory is not a worker's): a redelivered order must not wait forever. */
  private readonly lane: Supervisor;

  constructor(
    private readonly launch: WorkerLaunch,
    names: Names,
  ) {
    const args = (workerId: string, lane?: "quarantine") =>
      workArgs({
        server: launch.server,
        settings: { names },
        concurrency: launch.concurrency,
        handler: launch.handler,
        inbox: launch.inbox,
        workerId,
        lane,
      });
    const options: SupervisorOptions = {
      script: launch.script,
      args: (workerId) => args(workerId),
      // A worker inherits our environment, whose ORDERQ_INBOX_URL would turn on inbox mode (the `--inbox`
      // flag reads it) against a database that is not the bench's: only an inbox phase's launch passes one.
      env: launch.inbox ? launch.env : { ...launch.env, [INBOX_URL_ENV]: undefined },
      restartDelayMs: 200,
      killOnExit: true,
    };
    this.supervisor = new Supervisor(options, { onExit: ({ replaced }) => void (replaced && this.restarts++) });
    this.lane = new Supervisor({ ...options, args: (workerId) => args(workerId, "quarantine") });
  }

  start(): void {
    for (let i = 0; i < this.launch.processes; i++) this.supervisor.spawn();
    this.lane.spawn("q1");
  }

  pids(): number[] {
    return this.supervisor.pids();
  }

  /** VmHWM of each live worker: read before stop(), while the processes still exist. */
  peakRssMb(): number[] {
    return this.pids().map((pid) => Math.round(peakRssMb(pid) ?? 0));
  }

  /** Graceful drain (SIGTERM), as an operator would stop them. */
  async stop(): Promise<void> {
    await Promise.all([this.supervisor.stop(10_000), this.lane.stop(10_000)]);
  }
}
