/**
 * Prometheus metrics (prom-client). Most counters are read from the worker's stats at scrape time;
 * the two labelled by source (commits, dead-letters) count each outcome in a cell made once per label
 * set (a Map lookup and an add, no allocation) and are read at scrape time too; the per-message path
 * also pays for the latency histogram. A supervisor merges its children's registries.
 */
import { createServer, type Server } from "node:http";
import { AggregatorRegistry, Counter, Gauge, Histogram, Registry } from "prom-client";
import { EnvironmentError } from "../base/errors.js";
import type { OutcomeCounter } from "../pipeline/dead-letter.js";
import { DLQ_REASONS, type DlqReason } from "../pipeline/dlq-entry.js";
import type { WorkerStats } from "../pipeline/worker.js";
import { SOURCES } from "../nats/names.js";

type CounterName = Exclude<keyof WorkerStats, "inFlight" | "committed" | "deadLettered">;

const COUNTERS: [CounterName, string, string][] = [
  ["failedAttempts", "orderq_attempts_failed_total", "Handler errors (each one failed attempt)."],
  ["retried", "orderq_attempts_retried_total", "Failed attempts given back with a backoff delay."],
  ["deferred", "orderq_deliveries_deferred_total", "Deliveries given back because another delivery of the order held it (inbox mode)."],
  ["suppressedDuplicates", "orderq_duplicates_suppressed_total", "Redeliveries of committed work absorbed by the ledger."],
  ["invalid", "orderq_payloads_invalid_total", "Payloads that were not a valid order."],
  ["quarantined", "orderq_orders_quarantined_total", "Suspects (previous delivery ended with no recorded failure) sent to the quarantine lane."],
  ["errors", "orderq_errors_total", "Infrastructure errors; the order was left for redelivery."],
];

/** Seconds from receiving an order to its ack, for committed orders. */
export const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/**
 * The values of the `source` label: the order sources, and "unknown" for anything else (a payload
 * published to a subject of its own), so a stray subject cannot grow the series without bound.
 */
export const SOURCE_LABELS = [...SOURCES, "unknown"] as const;

/** One labelled series' count, made once per label set and incremented in place. */
interface Cell {
  labels: Record<string, string>;
  n: number;
}

/**
 * A cell per label value, made once, so counting an outcome is a Map lookup and an add: no
 * allocation (prom-client's `labels(…).inc()` hashes the label set into a new string on every call).
 * A Map, not an object: a subject token such as "constructor" must find no cell, not Object's prototype.
 */
type BySource = Map<string, Cell>;

export class WorkerMetrics implements OutcomeCounter {
  readonly registry = new Registry();
  readonly latency: Histogram;
  private readonly committedBy: BySource;
  private readonly deadLetteredBy: Map<string, BySource>;

  constructor(stats: () => WorkerStats) {
    const bySource = (labels: Record<string, string>): BySource =>
      new Map(SOURCE_LABELS.map((source) => [source, { labels: { source, ...labels }, n: 0 }]));
    this.committedBy = bySource({});
    this.deadLetteredBy = new Map(DLQ_REASONS.map((reason) => [reason, bySource({ reason })]));
    const cells = (maps: Iterable<BySource>) => [...maps].flatMap((m) => [...m.values()]);
    labelledCounter(
      this.registry,
      "orderq_orders_committed_total",
      "Orders committed to the ledger by this worker, by the order's source.",
      ["source"],
      cells([this.committedBy]),
    );
    labelledCounter(
      this.registry,
      "orderq_orders_dead_lettered_total",
      "Orders written to the dead-letter stream by this worker, by source (the order's, else its subject's) and reason.",
      ["source", "reason"],
      cells(this.deadLetteredBy.values()),
    );
    for (const [key, name, help] of COUNTERS) {
      new Counter({
        name,
        help,
        registers: [this.registry],
        collect() {
          this.reset();
          this.inc(stats()[key]);
        },
      });
    }
    new Gauge({
      name: "orderq_orders_in_flight",
      help: "Orders being processed now.",
      registers: [this.registry],
      collect() {
        this.set(stats().inFlight);
      },
    });
    this.latency = new Histogram({
      name: "orderq_processing_seconds",
      help: "Time from receiving an order to acking it, for committed orders.",
      buckets: LATENCY_BUCKETS,
      registers: [this.registry],
    });
  }

  committed(source: string): void {
    (this.committedBy.get(source) ?? this.committedBy.get("unknown")!).n++;
  }

  deadLettered(source: string, reason: DlqReason): void {
    const bySource = this.deadLetteredBy.get(reason)!;
    (bySource.get(source) ?? bySource.get("unknown")!).n++;
  }
}

/** A counter read from `cells` at scrape time; a label set never counted is not a series. */
function labelledCounter(registry: Registry, name: string, help: string, labelNames: string[], cells: Cell[]): void {
  new Counter({
    name,
    help,
    labelNames,
    registers: [registry],
    collect() {
      this.reset();
      for (const cell of cells) if (cell.n > 0) this.inc(cell.labels, cell.n);
    },
  });
}

/** Gauges only the supervising process knows: how many workers, and the consumer's lag. */
export function pipelineRegistry(sample: () => Promise<{ workers: number; lag: number }>): Registry {
  const registry = new Registry();
  let last: Promise<{ workers: number; lag: number }> | undefined;
  // Both gauges come from one sample per scrape.
  const current = () => (last ??= sample().finally(() => setTimeout(() => (last = undefined), 100)));
  new Gauge({
    name: "orderq_workers",
    help: "Worker processes running.",
    registers: [registry],
    async collect() {
      this.set((await current()).workers);
    },
  });
  new Gauge({
    name: "orderq_consumer_lag",
    help: "Orders not yet acked (consumer pending + ack pending): what an autoscaler reads.",
    registers: [registry],
    async collect() {
      this.set((await current()).lag);
    },
  });
  return registry;
}

/**
 * A gauge of the dead-letter stream's entries by reason, `orderq_dlq_depth{reason="…"}`, read by
 * `sample` once per scrape (the caller passes countDlq's `byReason`, counted by the server from the
 * DLQ's per-subject counts, so a scrape reads no entry). Messages that are not orderq entries have no
 * reason and are not in it (`orderq status` shows them as foreign).
 */
export function dlqDepthRegistry(sample: () => Promise<Record<string, number>>): Registry {
  const registry = new Registry();
  new Gauge({
    name: "orderq_dlq_depth",
    help: "Entries in the dead-letter stream now, by reason.",
    labelNames: ["reason"],
    registers: [registry],
    async collect() {
      const byReason = await sample();
      this.reset();
      for (const [reason, n] of Object.entries(byReason)) this.set({ reason }, n);
    },
  });
  return registry;
}

/** Merges registries' JSON snapshots (e.g. from worker processes) by summing like series. */
export function mergeMetrics(snapshots: object[][]): Registry {
  return AggregatorRegistry.aggregate(snapshots);
}

/** Where the metrics endpoint listens unless ORDERQ_METRICS_HOST says otherwise: loopback, so it is not exposed by accident. */
export const METRICS_HOST_ENV = "ORDERQ_METRICS_HOST";

/**
 * Serves `GET /metrics` in Prometheus text format on `port`, on 127.0.0.1 (or `$ORDERQ_METRICS_HOST`,
 * e.g. 0.0.0.0 for a scraper on another host). A port in use is EnvironmentError (exit 3).
 */
export async function serveMetrics(
  port: number,
  render: () => Promise<{ contentType: string; body: string }>,
  host = process.env[METRICS_HOST_ENV] || "127.0.0.1",
): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.url !== "/metrics") {
      res.writeHead(404).end("see /metrics\n");
      return;
    }
    render().then(
      ({ contentType, body }) => res.writeHead(200, { "Content-Type": contentType }).end(body),
      (err: Error) => res.writeHead(500).end(`${err.message}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", (err: NodeJS.ErrnoException) =>
      reject(
        err.code === "EADDRINUSE"
          ? new EnvironmentError(`--metrics-port: port ${port} is already in use on ${host}`)
          : new EnvironmentError(`--metrics-port: cannot listen on port ${port}: ${err.message}`),
      ),
    );
    server.listen(port, host, resolve);
  });
  return server;
}
