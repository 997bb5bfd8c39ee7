/**
 * Every default orderq ships, in one place: the CLI's flags, the topology and the workers read these
 * constants, so a default changes here or nowhere. Chaos scenarios have their own, faster defaults
 * (src/core/chaos/scenario.ts): a scenario must finish in seconds, not model production.
 */

/** Ack wait of the workers' consumer: how soon a dead worker's order is redelivered (crash detection). */
export const ACK_WAIT_MS = 10_000;
/** JetStream's own ack wait when a consumer sets none. */
export const SERVER_ACK_WAIT_MS = 30_000;
/** Publish de-duplication window of the orders stream: a producer retries inside it. */
export const DUP_WINDOW_MS = 120_000;
/**
 * The horizon: how long the ledger (the KV bucket's max age, and the inbox's rows in inbox mode)
 * remembers an order. Within it a re-send or a DLQ replay is absorbed; after it, the order is
 * forgotten (see README, "The guarantee, and its limits"). It must exceed the duplicate window.
 */
export const LEDGER_RETENTION_MS = 7 * 86_400_000;
/** Deliveries of one order before it is dead-lettered. */
export const MAX_DELIVER = 5;
/** Orders delivered but not yet acked, over all workers. */
export const MAX_ACK_PENDING = 1000;
export const REPLICAS = 1;

/** Shortest interval of a worker's in-progress acks (they come every ack-wait/3, never more often). */
export const HEARTBEAT_MIN_MS = 100;
/** Shortest ack wait that works: below it, in-progress acks cannot come every ack-wait/3 and every slow order is redelivered. */
export const MIN_ACK_WAIT_MS = 3 * HEARTBEAT_MIN_MS;

/** Retry delay after a failed attempt, passed to nak(delay): exponential, capped, with jitter. */
export const BACKOFF = { baseMs: 250, factor: 2, maxMs: 5_000, jitter: 0.2 } as const;

/** After SIGTERM, how long a worker waits for the orders in hand before aborting their handlers. */
export const DRAIN_TIMEOUT_MS = 30_000;

/** Orders in flight per worker process. */
export const CONCURRENCY = 256;
/** Worker processes of `orderq work`. */
export const PROCESSES = 1;
/**
 * Most worker processes one `orderq work` supervisor runs (--processes, --autoscale --max): each is a
 * Node process of ~60 MB with its own connection, and more than this on one machine is a typo, not a
 * plan (scale out with more machines, or raise --concurrency).
 */
export const MAX_PROCESSES = 64;
/** Publishes awaiting their PubAck at once (`orderq produce`, the bench). */
export const PUBLISH_IN_FLIGHT = 256;
export const PUBLISH_TIMEOUT_MS = 5_000;
/** How long the producer keeps retrying one order: well inside the duplicate window. */
export const PUBLISH_RETRY_FOR_MS = 60_000;

/**
 * Lifetime of one pull request of a worker or DLQ mover. The client notices a pull lost to a stream
 * leader change or a reconnect only after two missed idle heartbeats (expires/2 each): with the
 * client's default of 30 s, workers would stand idle that long after a cluster node dies.
 */
export const PULL_EXPIRES_MS = 5_000;

/** `orderq work --autoscale`. */
export const AUTOSCALE = { min: 1, max: 8, targetLagSeconds: 5, cooldownMs: 3_000, sampleMs: 1_000 } as const;

/**
 * Inbox mode (`orderq work --inbox`): connections per worker process (at most this many order
 * transactions open at once), the most orders one transaction takes, and the ceiling of that flag.
 * Batches of 16 share one commit (one WAL flush) and take about 16 round trips (twice that when an
 * order fails and the batch runs again in savepoints), a few milliseconds, well inside any ack wait;
 * a quiet worker's order still runs at once in a transaction of its own. Orders of a batch hold
 * their row locks until the commit, so a handler
 * that updates shared rows deadlocks across batches (each order of a batch takes its locks in turn):
 * it should append instead, as examples/postgres-orders does, or run with a batch of 1. Ceiling:
 * PostgreSQL keeps at most 64 subtransaction ids per transaction in shared memory
 * (PGPROC_MAX_CACHED_SUBXIDS); a transaction with more makes every other session's snapshots slower
 * until it ends, and in a batch run again in savepoints each order that writes is one.
 */
export const INBOX = { poolSize: 8, maxBatch: 16, maxBatchCeiling: 64 } as const;

/**
 * `orderq intake`, the HTTP gateway: where it listens, how long its key store remembers an
 * idempotency key and the answer given for it (never less than the duplicate window; 24 h lets a
 * client retry the next day), how long one request's claim on a key holds before another request may
 * take it over (a gateway that died mid-publish), and the Retry-After of a 503.
 */
export const INTAKE = { port: 8080, host: "127.0.0.1", keyRetentionMs: 24 * 3_600_000, retryAfterSeconds: 1 } as const;

/**
 * Keep-alive connections `produce --via` (HttpSender) opens to its gateway; requests beyond them wait
 * for a free one. A few dozen keep both processes busy: hundreds (one per request in flight) cost
 * each side a socket's reads, writes and timers per request without a request more per second
 * (README, Performance).
 */
export const INTAKE_CLIENT_CONNECTIONS = 32;
