/**
 * Applies the autoscale policy to a Supervisor: samples the consumer's lag and the commit count,
 * then spawns workers or retires one (a graceful drain). Every decision is kept with its reason.
 */
import type { JetStreamManager } from "@nats-io/jetstream";
import { decide, type AutoscaleConfig, type Sample } from "./autoscale-policy.js";
import type { Names } from "../nats/names.js";
import { backlog } from "./quiescence.js";
import type { Supervisor } from "./supervisor.js";

export interface ScaleEvent {
  time: string;
  from: number;
  to: number;
  reason: string;
}

export class Autoscaler {
  readonly events: ScaleEvent[] = [];
  private timer?: NodeJS.Timeout;
  private prev?: Sample;
  private lastChangeAt?: number;
  private busy = false;

  constructor(
    private readonly supervisor: Supervisor,
    private readonly jsm: JetStreamManager,
    private readonly names: Names,
    private readonly config: AutoscaleConfig & { sampleMs: number },
    private readonly onScale: (event: ScaleEvent) => void,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.tick(), this.config.sampleMs);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private async tick(): Promise<void> {
    if (this.busy) return; // a sample can outlast one period when the broker is slow
    this.busy = true;
    try {
      const b = await backlog(this.jsm, this.names);
      const now: Sample = {
        time: Date.now(),
        lag: b.pending + b.ackPending,
        committed: this.supervisor.stats().committed,
        workers: this.supervisor.active,
      };
      const prev = this.prev;
      this.prev = now;
      if (!prev) return;
      const decision = decide(this.config, prev, now, this.lastChangeAt);
      if (decision.action === "hold") return;
      this.lastChangeAt = now.time;
      const event = { time: new Date(now.time).toISOString(), from: now.workers, to: decision.workers, reason: decision.reason };
      this.events.push(event);
      this.onScale(event);
      for (let n = now.workers; n < decision.workers; n++) this.supervisor.spawn();
      // Not awaited: a retiring worker no longer counts as active, and a slow drain must not delay
      // the next decision (the cooldown already spaces them). So while a drain lasts,
      // a scale-up may briefly run one process more than --max.
      for (let n = now.workers; n > decision.workers; n--) void this.supervisor.retireOne();
    } catch {
      // Broker briefly unreachable: skip this sample, the next one decides.
    } finally {
      this.busy = false;
    }
  }
}
