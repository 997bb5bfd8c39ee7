/**
 * CPU accounting over a time window: the benchmark's clients (this process, or the worker processes)
 * and the nats-server are sampled every 50 ms, so the CPU of a window known only afterwards (first to
 * last ledger write) can be interpolated, leaving process start-up and shutdown out.
 */
import { cpuSeconds } from "../fleet/procfs.js";

/** Wall-clock ms with sub-ms precision, comparable with the server's message timestamps (same host). */
export function wallNow(): number {
  return performance.timeOrigin + performance.now();
}

export interface CpuUse {
  /** This process (baseline, produce) or the sum of the worker processes (work, latency). */
  clientSeconds: number;
  /** Null when the server is not ours (--server): its pid is unknown. */
  serverSeconds: number | null;
  /** Inbox phases only: the bench's own PostgreSQL (postmaster and every process it forked). */
  databaseSeconds?: number;
  /** Intake phases only: the gateway process alone (clientSeconds includes it; the rest is the load generator). */
  gatewaySeconds?: number;
}

class CpuSeries {
  private readonly samples: { t: number; seconds: number }[] = [];

  constructor(private readonly pids: () => readonly number[]) {}

  sample(t: number): void {
    let seconds = 0;
    for (const pid of this.pids()) seconds += cpuSeconds(pid) ?? 0;
    this.samples.push({ t, seconds });
  }

  /** Cumulative CPU at time t, linear between the samples around it (clamped at the ends). */
  at(t: number): number {
    const s = this.samples;
    if (s.length === 0) return 0;
    const i = s.findIndex((x) => x.t >= t);
    if (i === -1) return s[s.length - 1].seconds;
    if (i === 0) return s[0].seconds;
    const [a, b] = [s[i - 1], s[i]]; // a.t < t <= b.t
    return a.seconds + ((t - a.t) / (b.t - a.t)) * (b.seconds - a.seconds);
  }
}

export class Meter {
  private readonly client: CpuSeries;
  private readonly server?: CpuSeries;
  private readonly database?: CpuSeries;
  private readonly gateway?: CpuSeries;
  private timer?: NodeJS.Timeout;

  /**
   * `databasePids`: the PostgreSQL processes of an inbox phase (their CPU is reported apart);
   * `gatewayPid`: an intake phase's gateway, one of the clients, whose share is reported too.
   */
  constructor(clientPids: () => readonly number[], serverPid: number | undefined, databasePids?: () => readonly number[], gatewayPid?: number) {
    this.client = new CpuSeries(clientPids);
    if (serverPid !== undefined) this.server = new CpuSeries(() => [serverPid]);
    if (databasePids) this.database = new CpuSeries(databasePids);
    if (gatewayPid !== undefined) this.gateway = new CpuSeries(() => [gatewayPid]);
  }

  start(everyMs = 50): void {
    this.mark();
    this.timer = setInterval(() => this.mark(), everyMs);
  }

  stop(): void {
    clearInterval(this.timer);
    this.mark();
  }

  /** Samples now and returns the time, for windows measured in this process. */
  mark(): number {
    const t = wallNow();
    this.client.sample(t);
    this.server?.sample(t);
    this.database?.sample(t);
    this.gateway?.sample(t);
    return t;
  }

  cpu(t0: number, t1: number): CpuUse {
    const use: CpuUse = {
      clientSeconds: round(this.client.at(t1) - this.client.at(t0)),
      serverSeconds: this.server ? round(this.server.at(t1) - this.server.at(t0)) : null,
    };
    // A backend that exits takes its CPU time out of the sum: never report less than nothing.
    if (this.database) use.databaseSeconds = Math.max(0, round(this.database.at(t1) - this.database.at(t0)));
    if (this.gateway) use.gatewaySeconds = Math.max(0, round(this.gateway.at(t1) - this.gateway.at(t0)));
    return use;
  }
}

function round(seconds: number): number {
  return Math.round(seconds * 100) / 100;
}
