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
  /**
   * How long the intake key store remembers an idempotency key and its answer (ms); unset: the
   * default of 24 h. Never shorter than dupWindowMs (an InputError otherwise).
   */
  intakeRetentionMs?: number;
  /** The horizon: the ledger bucket's max age (ms). Every key, delete markers included, is removed this long after its last write. */
  ledgerRetentionMs: number;
}

export const DEFAULT_SETTINGS: TopologySettings = {
  names: DEFAULT_NAMES,
  replicas: defaults.REPLICAS,
  ackWaitMs: defaults.ACK_WAIT_MS,
  maxDeliver: defaults.MAX_DELIVER,
  dupWindowMs: defaults.DUP_WINDOW_MS,
  maxAckPending: defaults.MAX_ACK_PENDING,
  ledgerRetentionMs: defaults.LEDGER_RETENTION_MS,
};

/** DLQ copies are de-duplicated by message id (see dlqMsgId); the window must outlast a mover that was down. */
const DLQ_DUP_WINDOW_MS = 24 * 3_600_000;
const LEDGER_HISTORY = 5;
const ATTEMPTS_HISTORY = 64;
const ATTEMPTS_MAX_AGE_MS = 7 * 86_400_000;
/** A claim, then its answer: two writes per key; more history would only keep old answers. */
const INTAKE_HISTORY = 2;

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
/** Settings kept as a bucket's max age rather than a stream or consumer field. */
export type RetentionKey = "ledgerRetentionMs" | "intakeRetentionMs";

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
  chosen?: readonly (SettingKey | RetentionKey)[];
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
    // `<source>.<reason>`, and `<source>` alone for the entries of an orderq before the reason was added.
    subjects: [`${s.names.dlqSubjectPrefix}.>`],
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
  if (field === "max_age") return value ? formatDuration(millis(value as number)) : "unlimited";
  if (Array.isArray(value)) return value.join(",");
  if (typeof value === "string" || typeof value === "number" || typeof value === "boolean") return String(value);
  return JSON.stringify(value);
}

/** The fields to compare: the fixed ones always, the settable ones only when chosen. */
function compared(fields: string[], opts: EnsureOptions): string[] {
  if (!opts.chosen) return fields;
  const chosen = new Set(opts.chosen.flatMap((k) => (k in FIELD_OF ? [FIELD_OF[k as SettingKey]] : [])));
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
  const streams = [
    names.stream,
    names.dlqStream,
    names.advisoryStream,
    names.quarantineStream,
    kvStreamName(names.ledgerBucket),
    kvStreamName(names.attemptsBucket),
    kvStreamName(names.intakeBucket),
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

/** Every resource ensureTopology makes under the default names (a test checks that none is missing). */
export const DEFAULT_RESOURCE_NAMES = new Set([
  DEFAULT_NAMES.stream,
  DEFAULT_NAMES.dlqStream,
  DEFAULT_NAMES.advisoryStream,
  DEFAULT_NAMES.quarantineStream,
  `${DEFAULT_NAMES.stream}/${DEFAULT_NAMES.consumer}`,
  `${DEFAULT_NAMES.advisoryStream}/${DEFAULT_NAMES.moverConsumer}`,
  `${DEFAULT_NAMES.quarantineStream}/${DEFAULT_NAMES.quarantineConsumer}`,
  DEFAULT_NAMES.ledgerBucket,
  DEFAULT_NAMES.attemptsBucket,
  DEFAULT_NAMES.intakeBucket,
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

/**
 * The retention rules of the horizon (README, "The guarantee, and its limits"); throws InputError
 * (exit 2) with one line naming the rule broken. All durations in ms; `ordersMaxAgeMs` 0 = unset.
 * - above the orders stream's duplicate window: a re-send inside the window is stored once by the
 *   stream, and one after it must still find its order in the ledger, or it is processed again while
 *   the producer still believes it is retrying the same publish;
 * - above the orders stream's max age, when one is set: an order committed but not yet acked (a worker
 *   that died in between) stays in ORDERS at most that long, and its redelivery must find the key.
 */
export function checkRetention(r: { ledgerRetentionMs: number; dupWindowMs: number; ordersMaxAgeMs: number; stream: string }): void {
  const horizon = formatDuration(r.ledgerRetentionMs);
  if (r.ledgerRetentionMs <= r.dupWindowMs) {
    throw new InputError(
      `--ledger-retention ${horizon} must exceed the duplicate window of ${r.stream} (${formatDuration(r.dupWindowMs)}): a re-send after the ledger forgot its order would be processed again`,
    );
  }
  if (r.ordersMaxAgeMs > 0 && r.ledgerRetentionMs <= r.ordersMaxAgeMs) {
    throw new InputError(
      `--ledger-retention ${horizon} must exceed the max age of ${r.stream} (${formatDuration(r.ordersMaxAgeMs)}): an order can wait there that long, and its redelivery must still find its ledger key`,
    );
  }
}

/**
 * A KV bucket; its max age (a bucket's TTL is its stream's max_age on nats-server 2.9: every
 * message older than it is removed, the last value of a key and its delete markers included, so a
 * key is gone `maxAgeMs` after its last write and can be created again) is compared like a stream
 * field and, with `update`, applied.
 */
async function ensureBucket(
  nc: NatsConnection,
  jsm: JetStreamManager,
  bucket: string,
  history: number,
  replicas: number,
  maxAgeMs: number,
  opts: EnsureOptions,
  /** The setting behind maxAgeMs, if the operator can choose it: compared only when chosen. */
  retention?: RetentionKey,
): Promise<ResourceReport> {
  const shown = (ms: number) => (ms ? formatDuration(ms) : "unlimited");
  const settings = { history, replicas, max_age: shown(maxAgeMs) };
  let info;
  try {
    info = await jsm.streams.info(kvStreamName(bucket));
  } catch (err) {
    if (!isNotFound(err)) throw err;
    await new Kvm(nc).create(bucket, { history, replicas, ttl: maxAgeMs || undefined });
    return { kind: "kv", name: bucket, action: "created", settings };
  }
  if (!opts.verify) return { kind: "kv", name: bucket, action: "exists", settings };
  if (info.config.max_msgs_per_subject < 2) {
    throw new EnvironmentError(
      `kv ${bucket} exists with a different config: history is ${info.config.max_msgs_per_subject}, wanted ${history} (a second write of a key must stay visible)`,
    );
  }
  const haveMs = millis(info.config.max_age ?? 0);
  // A retention not given on the command line stays as the server holds it: a default must never
  // shorten what an operator chose (the keys between the two ages would be dropped at once).
  const notChosen = retention !== undefined && opts.chosen !== undefined && !opts.chosen.includes(retention);
  if (haveMs === maxAgeMs || notChosen) return { kind: "kv", name: bucket, action: "exists", settings: { ...settings, max_age: shown(haveMs) } };
  const diffs = [{ field: "max_age", have: shown(haveMs), want: shown(maxAgeMs) }];
  if (!opts.update) throw conflictError("kv", bucket, diffs, true);
  // The server refuses a duplicate window longer than the max age.
  const dup = Math.min(millis(info.config.duplicate_window ?? 0) || maxAgeMs, maxAgeMs || Number.MAX_SAFE_INTEGER);
  await jsm.streams.update(info.config.name, { ...info.config, max_age: nanos(maxAgeMs), duplicate_window: nanos(dup) });
  return { kind: "kv", name: bucket, action: "updated", settings };
}

/**
 * A DLQ stream made by an orderq before entries had their reason in the subject (`<prefix>.*`) is
 * widened to `<prefix>.>` whatever the mode: a worker of this orderq could not dead-letter into it
 * otherwise, and the old entries stay where they are, covered by the new subject.
 */
async function widenDlqSubjects(jsm: JetStreamManager, s: TopologySettings): Promise<void> {
  const info = await jsm.streams.info(s.names.dlqStream).catch((err: unknown) => {
    if (isNotFound(err)) return undefined;
    throw err;
  });
  const old = `${s.names.dlqSubjectPrefix}.*`;
  if (info && info.config.subjects?.length === 1 && info.config.subjects[0] === old) {
    await jsm.streams.update(s.names.dlqStream, { ...info.config, subjects: [`${s.names.dlqSubjectPrefix}.>`] });
  }
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
  if (opts.verify) {
    // Before anything is created or changed: a broken rule leaves the server as it was. The rule is
    // checked on what the server will hold afterwards: a setting not given keeps the server's value.
    const infoOf = (stream: string) =>
      jsm.streams.info(stream).catch((err: unknown) => {
        if (isNotFound(err)) return undefined;
        throw err;
      });
    const [orders, ledger] = await Promise.all([infoOf(n.stream), infoOf(kvStreamName(n.ledgerBucket))]);
    const given = (k: SettingKey | RetentionKey) => opts.chosen === undefined || opts.chosen.includes(k);
    const after = {
      dupWindowMs: orders && !given("dupWindowMs") ? millis(orders.config.duplicate_window ?? 0) : settings.dupWindowMs,
      ledgerRetentionMs: ledger && !given("ledgerRetentionMs") ? millis(ledger.config.max_age ?? 0) : settings.ledgerRetentionMs,
    };
    // 0: a ledger made before the horizon existed, which forgets nothing.
    if (after.ledgerRetentionMs > 0) checkRetention({ ...after, ordersMaxAgeMs: millis(orders?.config.max_age ?? 0), stream: n.stream });
  }
  const reports: ResourceReport[] = [];
  reports.push(await ensureStream(jsm, ordersStreamConfig(settings), STREAM_FIELDS, STREAM_FIXED, opts));
  reports.push(await ensureConsumer(jsm, n.stream, workersConsumerConfig(settings), WORKER_FIELDS, opts));
  await widenDlqSubjects(jsm, settings);
  reports.push(await ensureStream(jsm, dlqStreamConfig(settings), STREAM_FIELDS, STREAM_FIXED, opts));
  reports.push(await ensureStream(jsm, advisoryStreamConfig(settings), ["subjects", "retention", "storage", "num_replicas"], STREAM_FIXED, opts));
  reports.push(await ensureConsumer(jsm, n.advisoryStream, moverConsumerConfig(settings), ["ack_policy", "ack_wait"], opts));
  reports.push(await ensureStream(jsm, quarantineStreamConfig(settings), STREAM_FIELDS, STREAM_FIXED, opts));
  reports.push(await ensureConsumer(jsm, n.quarantineStream, quarantineConsumerConfig(settings), ["ack_policy", "ack_wait", "max_deliver"], opts));
  reports.push(await ensureBucket(nc, jsm, n.ledgerBucket, LEDGER_HISTORY, settings.replicas, settings.ledgerRetentionMs, opts, "ledgerRetentionMs"));
  reports.push(await ensureBucket(nc, jsm, n.attemptsBucket, ATTEMPTS_HISTORY, settings.replicas, ATTEMPTS_MAX_AGE_MS, opts));
  reports.push(await ensureIntakeBucket(nc, jsm, settings, opts));
  return reports;
}

/**
 * The intake key store's retention (ms): the chosen one, or the default of 24 h stretched to the
 * duplicate window when that is longer. A chosen retention shorter than the window is an InputError.
 */
export function intakeRetentionMs(settings: TopologySettings): number {
  if (settings.intakeRetentionMs === undefined) return Math.max(defaults.INTAKE.keyRetentionMs, settings.dupWindowMs);
  if (settings.intakeRetentionMs < settings.dupWindowMs) {
    // A key forgotten inside the window would be answered as new while JetStream still drops the publish.
    throw new InputError(
      `--intake-retention: ${formatDuration(settings.intakeRetentionMs)} is shorter than the duplicate window (${formatDuration(settings.dupWindowMs)}); it must be at least as long`,
    );
  }
  return settings.intakeRetentionMs;
}

/**
 * The HTTP gateway's key store (DESIGN.md, Intake): a bucket whose max age is the key retention. With
 * verify, an existing bucket that forgets keys sooner than wanted is a conflict (--update applies it).
 */
async function ensureIntakeBucket(
  nc: NatsConnection,
  jsm: JetStreamManager,
  settings: TopologySettings,
  opts: EnsureOptions,
): Promise<ResourceReport> {
  return ensureBucket(
    nc,
    jsm,
    settings.names.intakeBucket,
    INTAKE_HISTORY,
    settings.replicas,
    intakeRetentionMs(settings),
    opts,
    "intakeRetentionMs",
  );
}

/**
 * The horizon in force: the ledger bucket's max age in ms (0: unlimited, a ledger made before the
 * horizon existed). Throws the client's "not found" error when the bucket does not exist.
 */
export async function ledgerRetentionMs(jsm: JetStreamManager, names: Names): Promise<number> {
  const info = await jsm.streams.info(kvStreamName(names.ledgerBucket));
  return millis(info.config.max_age ?? 0);
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
 * workers consumer's max deliver, as the server holds them now. Read at start and again every
 * second (LEASE_REFRESH_MS) by the worker, so `topology ensure --update` reaches running workers.
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
      const fields = kind === "kv" ? ["max_msgs_per_subject", "num_replicas", "storage", "max_age"] : STREAM_FIELDS;
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
    await stream(kvStreamName(names.intakeBucket), "kv", names.intakeBucket),
  ];
}
