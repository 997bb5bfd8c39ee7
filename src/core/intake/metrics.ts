/** The gateway's Prometheus metrics (prom-client), on a registry of its own (`GET /metrics`). */
import { Counter, Histogram, Registry } from "prom-client";

/** Seconds per request: the bench's target is p99 ≤ 10 ms, so the buckets are fine below it. */
const BUCKETS = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export class IntakeMetrics {
  readonly registry = new Registry();
  readonly requests = new Counter({
    name: "orderq_intake_requests_total",
    help: "HTTP requests answered, by route, method and status.",
    labelNames: ["route", "method", "status"] as const,
    registers: [this.registry],
  });
  readonly latency = new Histogram({
    name: "orderq_intake_request_seconds",
    help: "Time from receiving a request to answering it, by route and method.",
    labelNames: ["route", "method"] as const,
    buckets: BUCKETS,
    registers: [this.registry],
  });
  readonly publishes = new Counter({
    name: "orderq_intake_publishes_total",
    help: "Orders published to JetStream, by result: stored, duplicate (the stream had the message id), failed.",
    labelNames: ["result"] as const,
    registers: [this.registry],
  });
  readonly replays = new Counter({
    name: "orderq_intake_replays_total",
    help: "Requests answered with the stored answer of an earlier request with the same key and payload.",
    registers: [this.registry],
  });
  readonly conflicts = new Counter({
    name: "orderq_intake_conflicts_total",
    help: "Requests refused over their idempotency key: 409 (in flight) or 422 (another payload).",
    labelNames: ["status"] as const,
    registers: [this.registry],
  });

  /** The two series of each (route, method, status) met so far: a key string → their children. */
  private readonly answers = new Map<string, { count: { inc(): void }; time: { observe(v: number): void } }>();

  /**
   * Counts one answered request and its time (s). The children are looked up once per distinct
   * route, method and status: prom-client's inc({…}) / observe({…}, v) hash the label object on every
   * call, which showed in the gateway's profile.
   */
  answered(route: string, method: string, status: number, seconds: number): void {
    const key = `${status} ${method} ${route}`;
    let series = this.answers.get(key);
    if (!series) {
      series = { count: this.requests.labels(route, method, String(status)), time: this.latency.labels(route, method) };
      this.answers.set(key, series);
    }
    series.count.inc();
    series.time.observe(seconds);
  }
}
