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
import { EnvironmentError, InputError, errorMessage } from "../base/errors.js";
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
  /** What the server holds (read back after a create or update), in the units `topology show` uses. */
  settings: Record<string, string | number>;
  /** With action "updated": each field changed, from the value the server held to the one it holds now. */
  changed?: Array<{ field: string; from: string; to: string }>;
}

/** The settings an operator can choose (flags of `topology ensure`). */
export type SettingKey = "replicas" | "ackWaitMs" | "maxDeliver" | "dupWindowMs" | "maxAckPending";

/** The server config field each setting is stored in. */
const FIELD_OF: Record<SettingKey, string> = {
  replicas: "num_replicas",
  ackWaitMs: "ack_wait",
  maxDeliver: "max_deliver",
  dupWindowMs: "duplicate_window",
  maxAckPending: "max_ack_pending",
};
const SETTABLE_FIELDS = new Set(Object.values(FIELD_OF));

export interface EnsureOptions {
  /** Compare existing resources with the wanted settings (topology ensure); off: use what exists. */
  verify: boolean;
  /** Apply differences that JetStream allows instead of failing. */
  update: boolean;
  /**
   * The settings the operator chose (the flags given); only these are compared with, or applied to,
   * what exists. Absent: all of them (chaos runs and the bench, which own their topology).
   */
  chosen?: readonly SettingKey[];
  /**
   * Whether a resource missing under a name other than the default may be created (default true).
   * `produce` and `work` pass false: a mistyped `--stream` must not silently start a second topology.
   */
  createUnderOtherNames?: boolean;
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

/** The fields to compare: the fixed ones always, the settable ones only when chosen. */
function compared(fields: string[], opts: EnsureOptions): string[] {
  if (!opts.chosen) return fields;
  const chosen = new Set(opts.chosen.map((k) => FIELD_OF[k]));
  return fields.filter((f) => !SETTABLE_FIELDS.has(f) || chosen.has(f));
}

function pickShown(config: Record<string, unknown>, fields: string[]): Record<string, string> {
  return Object.fromEntries(fields.map((f) => [f, show(config[f], f)]));
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
  const streams = [names.stream, names.dlqStream, names.advisoryStream, kvStreamName(names.ledgerBucket), kvStreamName(names.attemptsBucket)];
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
  const report = (action: Action, config: object, changed?: FieldDiff[]): ResourceReport => ({
    kind: "stream",
    name: want.name,
    action,
    settings: pickShown(config as Record<string, unknown>, fields),
    ...(changed ? { changed: changed.map((d) => ({ field: d.field, from: d.have, to: d.want })) } : {}),
  });
  let info;
  try {
    info = await jsm.streams.info(want.name);
  } catch (err) {
    if (!isNotFound(err)) throw err;
    refuseOtherName("stream", want.name, opts);
    return report("created", (await jsm.streams.add(want)).config);
  }
  if (!opts.verify) return report("exists", info.config);
  const diffs = diff(info.config, want, compared(fields, opts));
  if (diffs.length === 0) return report("exists", info.config);
  const blocked = diffs.filter((d) => fixed.includes(d.field));
  if (!opts.update || blocked.length > 0) throw conflictError("stream", want.name, opts.update ? blocked : diffs, blocked.length === 0);
  // Only what differs is sent: every other setting stays as the server holds it.
  const changes = Object.fromEntries(diffs.map((d) => [d.field, (want as Record<string, unknown>)[d.field]]));
  const updated = await jsm.streams.update(want.name, { ...info.config, ...changes });
  return report("updated", updated.config, diff(info.config, updated.config, fields));
}

/** A resource missing under a non-default name, where the caller may not create one (see createUnderOtherNames). */
function refuseOtherName(kind: string, name: string, opts: EnsureOptions): void {
  if (opts.createUnderOtherNames !== false || DEFAULT_RESOURCE_NAMES.has(name)) return;
  throw new InputError(
    `${kind} ${name} does not exist: create it with \`orderq topology ensure\` and the same names (a mistyped name would start a second, empty topology)`,
  );
}

const DEFAULT_RESOURCE_NAMES = new Set([
  DEFAULT_NAMES.stream,
  DEFAULT_NAMES.dlqStream,
  DEFAULT_NAMES.advisoryStream,
  `${DEFAULT_NAMES.stream}/${DEFAULT_NAMES.consumer}`,
  `${DEFAULT_NAMES.advisoryStream}/${DEFAULT_NAMES.moverConsumer}`,
  DEFAULT_NAMES.ledgerBucket,
  DEFAULT_NAMES.attemptsBucket,
]);

async function ensureConsumer(
  jsm: JetStreamManager,
  stream: string,
  want: Partial<ConsumerConfig> & { durable_name: string },
  fields: string[],
  opts: EnsureOptions,
): Promise<ResourceReport> {
  const name = `${stream}/${want.durable_name}`;
  const report = (action: Action, config: object, changed?: FieldDiff[]): ResourceReport => ({
    kind: "consumer",
    name,
    action,
    settings: pickShown(config as Record<string, unknown>, fields),
    ...(changed ? { changed: changed.map((d) => ({ field: d.field, from: d.have, to: d.want })) } : {}),
  });
  let info;
  try {
    info = await jsm.consumers.info(stream, want.durable_name);
  } catch (err) {
    if (!isNotFound(err)) throw err;
    refuseOtherName("consumer", name, opts);
    // nats-server 2.9 silently updates an existing durable on add, so add only what is missing.
    return report("created", (await jsm.consumers.add(stream, want)).config);
  }
  if (!opts.verify) return report("exists", info.config);
  const diffs = diff(info.config, want, compared(fields, opts));
  if (diffs.length === 0) return report("exists", info.config);
  const blocked = diffs.filter((d) => d.field === "ack_policy");
  if (!opts.update || blocked.length > 0) {
    throw conflictError("consumer", name, opts.update ? blocked : diffs, blocked.length === 0);
  }
  // Only what differs is sent: every other setting stays as the server holds it.
  const changes = Object.fromEntries(diffs.map((d) => [d.field, (want as Record<string, unknown>)[d.field]]));
  const updated = await jsm.consumers.update(stream, want.durable_name, changes);
  return report("updated", updated.config, diff(info.config, updated.config, fields));
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

/**
 * Refuses settings that cannot work, before anything is created (InputError, exit 2): an ack wait
 * below the heartbeat floor (in-progress acks could not keep a slow order's lease), and replicas
 * above 1 on a server that is not in a cluster (the server would have no peers to place them on).
 * A cluster's size is not in the connection's INFO: there the server refuses too many replicas itself.
 */
function refuseUnworkable(nc: NatsConnection, s: TopologySettings): void {
  if (s.ackWaitMs < defaults.MIN_ACK_WAIT_MS) {
    throw new InputError(
      `--ack-wait: ${formatDuration(s.ackWaitMs)} is below the floor of ${formatDuration(defaults.MIN_ACK_WAIT_MS)} (workers renew a lease every ack-wait/3, at most every ${defaults.HEARTBEAT_MIN_MS}ms)`,
    );
  }
  if (s.replicas > 1 && nc.info !== undefined && !nc.info.cluster) {
    throw new InputError(
      `--replicas: ${s.replicas} needs a JetStream cluster of at least ${s.replicas} servers; ${nc.info.server_name} is a single server (use 1)`,
    );
  }
}

/** Creates what is missing; with verify, checks what exists against the settings. */
export async function ensureTopology(
  nc: NatsConnection,
  settings: TopologySettings,
  opts: EnsureOptions = { verify: false, update: false },
): Promise<ResourceReport[]> {
  refuseUnworkable(nc, settings);
  const jsm = await jetstreamManager(nc);
  const n = settings.names;
  const reports: ResourceReport[] = [];
  reports.push(await ensureStream(jsm, ordersStreamConfig(settings), STREAM_FIELDS, STREAM_FIXED, opts));
  reports.push(await ensureConsumer(jsm, n.stream, workersConsumerConfig(settings), WORKER_FIELDS, opts));
  reports.push(await ensureStream(jsm, dlqStreamConfig(settings), STREAM_FIELDS, STREAM_FIXED, opts));
  reports.push(await ensureStream(jsm, advisoryStreamConfig(settings), ["subjects", "retention", "storage", "num_replicas"], STREAM_FIXED, opts));
  reports.push(await ensureConsumer(jsm, n.advisoryStream, moverConsumerConfig(settings), ["ack_policy", "ack_wait"], opts));
  reports.push(await ensureBucket(nc, jsm, n.ledgerBucket, LEDGER_HISTORY, settings.replicas, 0, opts));
  reports.push(await ensureBucket(nc, jsm, n.attemptsBucket, ATTEMPTS_HISTORY, settings.replicas, ATTEMPTS_MAX_AGE_MS, opts));
  return reports;
}

/** The workers consumer's ack wait as configured on the server (the operator's choice wins). */
export async function consumerAckWaitMs(nc: NatsConnection, names: Names): Promise<{ ackWaitMs: number; maxDeliver: number }> {
  const jsm = await jetstreamManager(nc);
  const info = await jsm.consumers.info(names.stream, names.consumer);
  return { ackWaitMs: millis(info.config.ack_wait ?? nanos(defaults.SERVER_ACK_WAIT_MS)), maxDeliver: info.config.max_deliver ?? -1 };
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
    await stream(kvStreamName(names.ledgerBucket), "kv", names.ledgerBucket),
    await stream(kvStreamName(names.attemptsBucket), "kv", names.attemptsBucket),
  ];
}
