/**
 * Creates or verifies every stream, consumer and bucket of DESIGN.md. Idempotent; a conflicting
 * existing config is an error naming the field and both values, never a silent overwrite.
 */
import { nanos, millis, type NatsConnection } from "@nats-io/transport-node";
import {
  AckPolicy,
  DeliverPolicy,
  RetentionPolicy,
  StorageType,
  jetstreamManager,
  type ConsumerConfig,
  type JetStreamManager,
  type StreamConfig,
} from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { EnvironmentError, errorMessage } from "../base/errors.js";
import * as defaults from "../base/defaults.js";
import { formatDuration } from "../base/duration.js";
import { DEFAULT_NAMES, kvStreamName, maxDeliveriesAdvisorySubject, type Names } from "./names.js";
import { isNotFound } from "./not-found.js";

export interface TopologySettings {
  names: Names;
  replicas: number;
  /** Crash detection time: a dead worker's order is redelivered after this. */
  ackWaitMs: number;
  maxDeliver: number;
  dupWindowMs: number;
  maxAckPending: number;
}

export const DEFAULT_SETTINGS: TopologySettings = {
  names: DEFAULT_NAMES,
  replicas: defaults.REPLICAS,
  ackWaitMs: defaults.ACK_WAIT_MS,
  maxDeliver: defaults.MAX_DELIVER,
  dupWindowMs: defaults.DUP_WINDOW_MS,
  maxAckPending: defaults.MAX_ACK_PENDING,
};

/** DLQ copies are de-duplicated by message id (see dlqMsgId); the window must outlast a mover that was down. */
const DLQ_DUP_WINDOW_MS = 24 * 3_600_000;
const LEDGER_HISTORY = 5;
const ATTEMPTS_HISTORY = 64;
const ATTEMPTS_MAX_AGE_MS = 7 * 86_400_000;

export type Action = "created" | "exists" | "updated";
export interface ResourceReport {
  kind: "stream" | "consumer" | "kv";
  name: string;
  action: Action;
  settings: Record<string, string | number>;
}

export interface EnsureOptions {
  /** Compare existing resources with the wanted settings (topology ensure); off: use what exists. */
  verify: boolean;
  /** Apply differences that JetStream allows instead of failing. */
  update: boolean;
}

interface FieldDiff {
  field: string;
  have: string;
  want: string;
}

function ordersStreamConfig(s: TopologySettings): Partial<StreamConfig> & { name: string } {
  return {
    name: s.names.stream,
    subjects: [`${s.names.subjectPrefix}.*`],
    retention: RetentionPolicy.Workqueue,
    storage: StorageType.File,
    duplicate_window: nanos(s.dupWindowMs),
    num_replicas: s.replicas,
  };
}

function dlqStreamConfig(s: TopologySettings): Partial<StreamConfig> & { name: string } {
  return {
    name: s.names.dlqStream,
    subjects: [`${s.names.dlqSubjectPrefix}.*`],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    duplicate_window: nanos(DLQ_DUP_WINDOW_MS),
    num_replicas: s.replicas,
  };
}

function advisoryStreamConfig(s: TopologySettings): Partial<StreamConfig> & { name: string } {
  return {
    name: s.names.advisoryStream,
    subjects: [maxDeliveriesAdvisorySubject(s.names)],
    // Acked advisories are done with: the mover is their only reader.
    retention: RetentionPolicy.Workqueue,
    storage: StorageType.File,
    num_replicas: s.replicas,
  };
}

function workersConsumerConfig(s: TopologySettings): Partial<ConsumerConfig> & { durable_name: string } {
  return {
    durable_name: s.names.consumer,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    ack_wait: nanos(s.ackWaitMs),
    max_deliver: s.maxDeliver,
    max_ack_pending: s.maxAckPending,
  };
}

/**
 * The quarantine lane's stream (DESIGN.md, Crash isolation): copies of suspects, de-duplicated by
 * quarantineMsgId, so its window is as long as the DLQ's (a copy retried after a long outage stays single).
 */
function quarantineStreamConfig(s: TopologySettings): Partial<StreamConfig> & { name: string } {
  return {
    name: s.names.quarantineStream,
    subjects: [`${s.names.quarantineSubjectPrefix}.*`],
    retention: RetentionPolicy.Workqueue,
    storage: StorageType.File,
    duplicate_window: nanos(DLQ_DUP_WINDOW_MS),
    num_replicas: s.replicas,
  };
}

/**
 * The lane's consumer: the same ack wait as the workers' (crash detection), and no max deliver of
 * its own — the lane worker counts its crashes against the workers' max deliver and dead-letters a
 * suspect itself (reason crashed-worker), so no advisory is needed for this path.
 */
function quarantineConsumerConfig(s: TopologySettings): Partial<ConsumerConfig> & { durable_name: string } {
  return {
    durable_name: s.names.quarantineConsumer,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    ack_wait: nanos(s.ackWaitMs),
    max_deliver: -1,
  };
}

function moverConsumerConfig(s: TopologySettings): Partial<ConsumerConfig> & { durable_name: string } {
  return {
    durable_name: s.names.moverConsumer,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    ack_wait: nanos(30_000),
    max_deliver: -1,
  };
}

function show(value: unknown, field: string): string {
  if (value === undefined) return "unset";
  if (field === "ack_wait" || field === "duplicate_window") return formatDuration(millis(value as number));
  if (Array.isArray(value)) return value.join(",");
  if (typeof value === "string" || typeof value === "number" || typeof value === "boolean") return String(value);
  return JSON.stringify(value);
}

function diff(have: Record<string, unknown>, want: Record<string, unknown>, fields: string[]): FieldDiff[] {
  const out: FieldDiff[] = [];
  for (const field of fields) {
    const a = show(have[field], field);
    const b = show(want[field], field);
    if (a !== b) out.push({ field, have: a, want: b });
  }
  return out;
}

function conflictError(kind: string, name: string, diffs: FieldDiff[], updatable: boolean): EnvironmentError {
  const what = diffs.map((d) => `${d.field} is ${d.have}, wanted ${d.want}`).join("; ");
  const hint = updatable ? " (pass --update to apply the change)" : "";
  return new EnvironmentError(`${kind} ${name} exists with a different config: ${what}${hint}`);
}

/**
 * Deletes every stream of a topology (the KV buckets are streams too): a chaos run's or benchmark's
 * own names on a server of the user's. A stream already gone is fine; every stream is tried.
 */
export async function deleteTopology(jsm: JetStreamManager, names: Names): Promise<void> {
  const streams = [
    names.stream,
    names.dlqStream,
    names.advisoryStream,
    names.quarantineStream,
    kvStreamName(names.ledgerBucket),
    kvStreamName(names.attemptsBucket),
  ];
  const failures: string[] = [];
  for (const stream of streams) {
    await jsm.streams.delete(stream).catch((err: unknown) => {
      if (!isNotFound(err)) failures.push(`${stream}: ${errorMessage(err)}`);
    });
  }
  if (failures.length) throw new EnvironmentError(`could not delete ${failures.join("; ")}`);
}

async function ensureStream(
  jsm: JetStreamManager,
  want: Partial<StreamConfig> & { name: string },
  fields: string[],
  fixed: string[],
  opts: EnsureOptions,
): Promise<ResourceReport> {
  const report = (action: Action): ResourceReport => ({
    kind: "stream",
    name: want.name,
    action,
    settings: Object.fromEntries(fields.map((f) => [f, show((want as Record<string, unknown>)[f], f)])),
  });
  let info;
  try {
    info = await jsm.streams.info(want.name);
  } catch (err) {
    if (!isNotFound(err)) throw err;
    await jsm.streams.add(want);
    return report("created");
  }
  if (!opts.verify) return report("exists");
  const diffs = diff(info.config, want, fields);
  if (diffs.length === 0) return report("exists");
  const blocked = diffs.filter((d) => fixed.includes(d.field));
  if (!opts.update || blocked.length > 0) throw conflictError("stream", want.name, opts.update ? blocked : diffs, blocked.length === 0);
  await jsm.streams.update(want.name, { ...info.config, ...want });
  return report("updated");
}

async function ensureConsumer(
  jsm: JetStreamManager,
  stream: string,
  want: Partial<ConsumerConfig> & { durable_name: string },
  fields: string[],
  opts: EnsureOptions,
): Promise<ResourceReport> {
  const report = (action: Action): ResourceReport => ({
    kind: "consumer",
    name: `${stream}/${want.durable_name}`,
    action,
    settings: Object.fromEntries(fields.map((f) => [f, show((want as Record<string, unknown>)[f], f)])),
  });
  let info;
  try {
    info = await jsm.consumers.info(stream, want.durable_name);
  } catch (err) {
    if (!isNotFound(err)) throw err;
    // nats-server 2.9 silently updates an existing durable on add, so add only what is missing.
    await jsm.consumers.add(stream, want);
    return report("created");
  }
  if (!opts.verify) return report("exists");
  const diffs = diff(info.config, want, fields);
  if (diffs.length === 0) return report("exists");
  const blocked = diffs.filter((d) => d.field === "ack_policy");
  if (!opts.update || blocked.length > 0) {
    throw conflictError("consumer", `${stream}/${want.durable_name}`, opts.update ? blocked : diffs, blocked.length === 0);
  }
  const { durable_name: _durable, ack_policy: _ack, deliver_policy: _deliver, ...changes } = want;
  await jsm.consumers.update(stream, want.durable_name, changes);
  return report("updated");
}

async function ensureBucket(
  nc: NatsConnection,
  jsm: JetStreamManager,
  bucket: string,
  history: number,
  replicas: number,
  maxAgeMs: number,
  opts: EnsureOptions,
): Promise<ResourceReport> {
  const settings = { history, replicas, max_age: maxAgeMs ? formatDuration(maxAgeMs) : "unlimited" };
  let exists = true;
  try {
    const info = await jsm.streams.info(kvStreamName(bucket));
    if (opts.verify && info.config.max_msgs_per_subject < 2) {
      throw new EnvironmentError(
        `kv ${bucket} exists with a different config: history is ${info.config.max_msgs_per_subject}, wanted ${history} (a second write of a key must stay visible)`,
      );
    }
  } catch (err) {
    if (!isNotFound(err)) throw err;
    exists = false;
  }
  if (!exists) {
    await new Kvm(nc).create(bucket, { history, replicas, ttl: maxAgeMs || undefined });
  }
  return { kind: "kv", name: bucket, action: exists ? "exists" : "created", settings };
}

const STREAM_FIELDS = ["subjects", "retention", "storage", "duplicate_window", "num_replicas"];
const STREAM_FIXED = ["retention", "storage"];
const WORKER_FIELDS = ["ack_policy", "ack_wait", "max_deliver", "max_ack_pending"];

/** Creates what is missing; with verify, checks what exists against the settings. */
export async function ensureTopology(
  nc: NatsConnection,
  settings: TopologySettings,
  opts: EnsureOptions = { verify: false, update: false },
): Promise<ResourceReport[]> {
  const jsm = await jetstreamManager(nc);
  const n = settings.names;
  const reports: ResourceReport[] = [];
  reports.push(await ensureStream(jsm, ordersStreamConfig(settings), STREAM_FIELDS, STREAM_FIXED, opts));
  reports.push(await ensureConsumer(jsm, n.stream, workersConsumerConfig(settings), WORKER_FIELDS, opts));
  reports.push(await ensureStream(jsm, dlqStreamConfig(settings), STREAM_FIELDS, STREAM_FIXED, opts));
  reports.push(await ensureStream(jsm, advisoryStreamConfig(settings), ["subjects", "retention", "storage", "num_replicas"], STREAM_FIXED, opts));
  reports.push(await ensureConsumer(jsm, n.advisoryStream, moverConsumerConfig(settings), ["ack_policy", "ack_wait"], opts));
  reports.push(await ensureStream(jsm, quarantineStreamConfig(settings), STREAM_FIELDS, STREAM_FIXED, opts));
  reports.push(await ensureConsumer(jsm, n.quarantineStream, quarantineConsumerConfig(settings), ["ack_policy", "ack_wait", "max_deliver"], opts));
  reports.push(await ensureBucket(nc, jsm, n.ledgerBucket, LEDGER_HISTORY, settings.replicas, 0, opts));
  reports.push(await ensureBucket(nc, jsm, n.attemptsBucket, ATTEMPTS_HISTORY, settings.replicas, ATTEMPTS_MAX_AGE_MS, opts));
  return reports;
}

/** What a worker follows from the server (the operator's choice wins over any flag). */
export interface LeaseSettings {
  /** Ack wait of the consumer the worker pulls from, in ms: its lease per delivery. */
  ackWaitMs: number;
  /** The workers consumer's max deliver (-1: unlimited); the quarantine lane counts against it too. */
  maxDeliver: number;
}

/**
 * The ack wait of the consumer a worker pulls from (`consumer`, the workers' by default) and the
 * workers consumer's max deliver, as the server holds them now. Read at start and again every few
 * seconds by the worker, so `topology ensure --update` reaches running workers.
 */
export async function leaseSettings(jsm: JetStreamManager, names: Names, lane: "main" | "quarantine" = "main"): Promise<LeaseSettings> {
  const workers = await jsm.consumers.info(names.stream, names.consumer);
  const pulled = lane === "main" ? workers : await jsm.consumers.info(names.quarantineStream, names.quarantineConsumer);
  return { ackWaitMs: millis(pulled.config.ack_wait ?? nanos(defaults.SERVER_ACK_WAIT_MS)), maxDeliver: workers.config.max_deliver ?? -1 };
}

export interface ResourceState {
  kind: "stream" | "consumer" | "kv";
  name: string;
  exists: boolean;
  settings: Record<string, string | number>;
}

/** What exists on the server now, with the settings that matter (for `topology show`). */
export async function describeTopology(nc: NatsConnection, names: Names): Promise<ResourceState[]> {
  const jsm = await jetstreamManager(nc);
  const pick = (config: Record<string, unknown>, fields: string[]) => Object.fromEntries(fields.map((f) => [f, show(config[f], f)]));
  const stream = async (name: string, kind: "stream" | "kv" = "stream", label = name): Promise<ResourceState> => {
    try {
      const info = await jsm.streams.info(name);
      const fields = kind === "kv" ? ["max_msgs_per_subject", "num_replicas", "storage"] : STREAM_FIELDS;
      const settings = { ...pick(info.config, fields), messages: info.state.messages };
      return { kind, name: label, exists: true, settings };
    } catch (err) {
      if (!isNotFound(err)) throw err;
      return { kind, name: label, exists: false, settings: {} };
    }
  };
  const consumer = async (streamName: string, durable: string): Promise<ResourceState> => {
    const name = `${streamName}/${durable}`;
    try {
      const info = await jsm.consumers.info(streamName, durable);
      const settings = {
        ...pick(info.config, WORKER_FIELDS),
        pending: info.num_pending,
        ack_pending: info.num_ack_pending,
      };
      return { kind: "consumer", name, exists: true, settings };
    } catch (err) {
      if (!isNotFound(err)) throw err;
      return { kind: "consumer", name, exists: false, settings: {} };
    }
  };
  return [
    await stream(names.stream),
    await consumer(names.stream, names.consumer),
    await stream(names.dlqStream),
    await stream(names.advisoryStream),
    await consumer(names.advisoryStream, names.moverConsumer),
    await stream(names.quarantineStream),
    await consumer(names.quarantineStream, names.quarantineConsumer),
    await stream(kvStreamName(names.ledgerBucket), "kv", names.ledgerBucket),
    await stream(kvStreamName(names.attemptsBucket), "kv", names.attemptsBucket),
  ];
}
