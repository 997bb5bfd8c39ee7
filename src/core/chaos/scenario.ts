/**
 * A chaos scenario: what to send, how the workers behave, which faults to inject when, and what must
 * hold afterwards. The YAML uses the CLI's kebab-case words; `Scenario` is its typed, defaulted form.
 */
import { z } from "zod";
import { SOURCES, type Source } from "../nats/names.js";
import { durationMs } from "../base/duration.js";
import { INBOX } from "../base/defaults.js";

/** Faults the nemesis can inject; `any` picks one of `of` at each occurrence, from the seed. */
export const FAULT_KINDS = ["kill-worker", "pause-worker", "kill-server", "cut-network", "slow-network", "db-restart", "kill-gateway"] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];
const SCHEDULE_KINDS = [...FAULT_KINDS, "any"] as const;

export const NETWORK_PATHS = ["workers", "producers", "all"] as const;

const duration = z.string({ error: "write a duration such as 500ms, 2s or 1m" }).transform((text, ctx) => {
  const ms = durationMs(text);
  if (ms === undefined) {
    ctx.issues.push({ code: "custom", message: `"${text}" is not a duration (write e.g. 500ms, 2s, 1m)`, input: text });
    return z.NEVER;
  }
  return ms;
});

const probability = z.number({ error: "must be a number between 0 and 1" }).min(0, "must be between 0 and 1").max(1, "must be between 0 and 1");
const count = (min: number) => z.int({ error: "must be a whole number" }).min(min, `must be at least ${min}`);

export const DLQ_EXPECTATIONS = ["only-marked", "all-marked", "any"] as const;
export type DlqExpectation = (typeof DLQ_EXPECTATIONS)[number];

const knownList = (values: readonly string[]) => values.map((v) => `"${v}"`).join(", ");

const faultSchema = z
  .strictObject({
    kind: z.enum(SCHEDULE_KINDS, {
      error: (issue) => `unknown fault ${JSON.stringify(issue.input)} (known: ${knownList(SCHEDULE_KINDS)})`,
    }),
    /** For `any`: the kinds to choose from. */
    of: z
      .array(z.enum(FAULT_KINDS, { error: (issue) => `unknown fault ${JSON.stringify(issue.input)} (known: ${knownList(FAULT_KINDS)})` }))
      .min(1)
      .optional(),
    /** First occurrence, from the start of the run. */
    at: duration.optional(),
    /** Repeat period; without `count` the repetition ends with production. */
    every: duration.optional(),
    /** A random extra delay, up to this long, before each occurrence. */
    jitter: duration.optional(),
    count: count(1).optional(),
    /** How long a pause, cut, slowdown or server outage lasts before it is healed. */
    duration: duration.optional(),
    /** Workers: random | all | a worker id. Servers: random | leader | a node name. Network: workers | producers | all. Gateways: random | g1, g2... */
    target: z.string().min(1).optional(),
    /** slow-network: delay added to every chunk. */
    delay: duration.optional(),
  })
  .superRefine((f, ctx) => {
    if (f.kind === "any" && !f.of) ctx.addIssue({ code: "custom", path: ["of"], message: "fault kind any needs `of`: the kinds to pick from" });
    if (f.kind !== "any" && f.of) ctx.addIssue({ code: "custom", path: ["of"], message: "only fault kind any takes `of`" });
    if (f.at === undefined && f.every === undefined) ctx.addIssue({ code: "custom", path: ["at"], message: "a fault needs `at` or `every`" });
    if (f.kind === "slow-network" && f.delay === undefined) ctx.addIssue({ code: "custom", path: ["delay"], message: "slow-network needs `delay`" });
    if (f.kind === "cut-network" || f.kind === "slow-network") {
      if (f.target !== undefined && !(NETWORK_PATHS as readonly string[]).includes(f.target)) {
        ctx.addIssue({ code: "custom", path: ["target"], message: `network target must be one of ${knownList(NETWORK_PATHS)}` });
      }
    }
  });

/** The simulated handler's knobs that a handler module ignores (invalid-rate is the worker's, not the handler's). */
const SIMULATED_KNOBS = ["ms", "fail-rate", "poison-rate", "fatal-rate", "crash-rate"] as const;

const scenarioSchema = z
  .strictObject({
    name: z
      .string()
      .regex(/^[a-z0-9][a-z0-9-]*$/, "lower-case letters, digits and -")
      .optional(),
    description: z.string().prefault(""),
    orders: count(1),
    /** Orders per second; 0 publishes as fast as the in-flight limit allows. */
    rate: z.number({ error: "must be a number (orders per second)" }).min(0, "must be 0 or more"),
    sources: z.partialRecord(z.enum(SOURCES), z.number().min(0, "weights must be 0 or more")).prefault({ web: 0.5, mobile: 0.3, api: 0.2 }),
    /** 1: one nats-server; 3: a JetStream cluster with replicas 3. */
    servers: z.union([z.literal(1), z.literal(3)], { error: "must be 1 or 3" }).prefault(1),
    workers: z
      .strictObject({
        processes: count(1).max(16, "at most 16").prefault(3),
        concurrency: count(1).prefault(32),
        "restart-delay": duration.prefault("300ms"),
        /** Let the autoscaler add and retire worker processes (processes is then ignored). */
        autoscale: z
          .strictObject({
            min: count(1).max(16, "at most 16"),
            max: count(1).max(16, "at most 16"),
            "target-lag-seconds": z.number().positive("must be above 0").prefault(2),
            cooldown: duration.prefault("3s"),
            "sample-every": duration.prefault("1s"),
          })
          .refine((a) => a.min <= a.max, { message: "min must not be above max", path: ["min"] })
          .optional(),
        /** Fault knob of every worker: SIGKILL itself between commit and ack. */
        "crash-after-commit-rate": probability.prefault(0),
        /** Fault knob of every worker: commit and never ack. */
        "drop-ack-rate": probability.prefault(0),
      })
      .prefault({}),
    consumer: z
      .strictObject({
        "ack-wait": duration.prefault("2s"),
        "max-deliver": count(1).prefault(5),
        backoff: z.strictObject({ base: duration.prefault("100ms"), max: duration.prefault("1s") }).prefault({}),
      })
      .prefault({}),
    handler: z
      .strictObject({
        /** The team's handler module, a path relative to the scenario file; absent: the simulated handler. */
        module: z.string({ error: "a path to a handler module (.mjs/.js), relative to the scenario file" }).min(1, "must not be empty").optional(),
        ms: count(0).prefault(0),
        "fail-rate": probability.prefault(0),
        /** Shares of orders marked poison (always fails), fatal (non-retryable), crash (kills the worker), invalid payload. */
        "poison-rate": probability.prefault(0),
        "fatal-rate": probability.prefault(0),
        "crash-rate": probability.prefault(0),
        "invalid-rate": probability.prefault(0),
      })
      .prefault({})
      .superRefine((h, ctx) => {
        const marked = h["poison-rate"] + h["fatal-rate"] + h["crash-rate"] + h["invalid-rate"];
        if (marked > 1)
          ctx.addIssue({ code: "custom", path: ["poison-rate"], message: `poison, fatal, crash and invalid rates add up to ${marked}, more than 1` });
        if (h.module !== undefined) {
          // Only the simulated handler acts on these; a module would ignore them and the run would lie.
          for (const knob of SIMULATED_KNOBS) {
            if (h[knob] !== 0)
              ctx.addIssue({ code: "custom", path: [knob], message: `a knob of the simulated handler: it does not apply with \`module\`` });
          }
        }
      }),
    /** Inbox mode: a private PostgreSQL whose inbox table is the ledger of record. */
    inbox: z
      .strictObject({
        /** SQL run once before the workers start (the handler's tables), a path relative to the scenario file. */
        schema: z.string({ error: "a path to an SQL file, relative to the scenario file" }).min(1, "must not be empty").optional(),
        /** Check the handler's effects (examples/postgres-orders' `orders`, `stock_movements` and `stock`) after the run. */
        effects: z.boolean({ error: "must be true or false" }).prefault(false),
        /** Most orders in one transaction. */
        batch: count(1).max(INBOX.maxBatchCeiling, `must be at most ${INBOX.maxBatchCeiling}`).prefault(INBOX.maxBatch),
        /** Database connections per worker process. */
        pool: count(1).prefault(INBOX.poolSize),
      })
      .optional(),
    /** Intake mode: the producers post through this many `orderq intake` gateways instead of publishing. */
    intake: z
      .strictObject({
        gateways: count(1).max(8, "at most 8").prefault(2),
        /** The gateways' --timeout: one JetStream request before the client gets 503 (claims expire after 3 × it + 1 s). */
        timeout: duration.prefault("1s"),
      })
      .optional(),
    producer: z
      .strictObject({
        /** Share of orders published a second time with the same id. */
        "duplicate-rate": probability.prefault(0),
        "in-flight": count(1).prefault(64),
        "publish-timeout": duration.prefault("2s"),
        "retry-for": duration.prefault("60s"),
      })
      .prefault({}),
    faults: z.array(faultSchema).prefault([]),
    "time-limit": duration.prefault("2m"),
    expect: z
      .strictObject({
        /**
         * only-marked: poison/fatal/crash/invalid orders, and only they, end in the DLQ. all-marked: every
         * marked order does, ordinary ones may too (a crash order takes the orders in flight beside it along).
         */
        dlq: z.enum(DLQ_EXPECTATIONS, { error: `must be one of ${knownList(DLQ_EXPECTATIONS)}` }).prefault("only-marked"),
        "min-faults": count(0).prefault(1),
        "min-redeliveries": count(0).prefault(0),
      })
      .prefault({}),
  })
  .superRefine((sc, ctx) => {
    if (sc.intake && sc.inbox) ctx.addIssue({ code: "custom", path: ["intake"], message: "intake and inbox cannot be combined in one scenario yet" });
    if (!sc.intake) {
      sc.faults.forEach((f, i) => {
        const kinds = f.kind === "any" ? (f.of ?? []) : [f.kind];
        if (kinds.includes("kill-gateway"))
          ctx.addIssue({ code: "custom", path: ["faults", i, "kind"], message: "kill-gateway kills an intake gateway: the scenario needs `intake`" });
      });
    }
    if (sc.inbox) {
      if (sc.inbox.effects && sc.handler.module === undefined) {
        ctx.addIssue({
          code: "custom",
          path: ["inbox", "effects"],
          message: "effects are checked on a handler module's tables: set handler.module (the simulated handler writes none)",
        });
      }
      if (sc.inbox.effects && sc.inbox.schema === undefined) {
        ctx.addIssue({ code: "custom", path: ["inbox", "effects"], message: "effects are read from the tables the schema makes: set inbox.schema" });
      }
      return;
    }
    sc.faults.forEach((f, i) => {
      const kinds = f.kind === "any" ? (f.of ?? []) : [f.kind];
      if (kinds.includes("db-restart"))
        ctx.addIssue({
          code: "custom",
          path: ["faults", i, "kind"],
          message: "db-restart restarts the inbox's PostgreSQL: the scenario needs `inbox`",
        });
    });
  });

type Parsed = z.output<typeof scenarioSchema>;

export interface FaultSpec {
  kind: FaultKind | "any";
  of: FaultKind[];
  atMs?: number;
  everyMs?: number;
  jitterMs: number;
  count?: number;
  durationMs: number;
  target?: string;
  delayMs: number;
}

export interface Scenario {
  name: string;
  description: string;
  file: string;
  orders: number;
  rate: number;
  sources: Partial<Record<Source, number>>;
  servers: 1 | 3;
  workers: {
    processes: number;
    concurrency: number;
    restartDelayMs: number;
    crashAfterCommitRate: number;
    dropAckRate: number;
    autoscale?: { min: number; max: number; targetLagSeconds: number; cooldownMs: number; sampleMs: number };
  };
  consumer: { ackWaitMs: number; maxDeliver: number; backoffBaseMs: number; backoffMaxMs: number };
  handler: { module?: string; ms: number; failRate: number; poisonRate: number; fatalRate: number; crashRate: number; invalidRate: number };
  producer: { duplicateRate: number; inFlight: number; publishTimeoutMs: number; retryForMs: number };
  /** Intake mode: producers post to this many gateways (`timeoutMs`: each one's --timeout). */
  intake?: { gateways: number; timeoutMs: number };
  /** Inbox mode; `schema` absolute (resolved against the scenario file). */
  inbox?: { schema?: string; effects: boolean; maxBatch: number; poolSize: number };
  faults: FaultSpec[];
  timeLimitMs: number;
  expect: { dlq: DlqExpectation; minFaults: number; minRedeliveries: number };
}

export { scenarioSchema };

const DEFAULT_FAULT_DURATION_MS = 2000;

export function toScenario(p: Parsed, file: string, fallbackName: string): Scenario {
  return {
    name: p.name ?? fallbackName,
    description: p.description,
    file,
    orders: p.orders,
    rate: p.rate,
    sources: p.sources,
    servers: p.servers,
    workers: {
      processes: p.workers.processes,
      concurrency: p.workers.concurrency,
      restartDelayMs: p.workers["restart-delay"],
      crashAfterCommitRate: p.workers["crash-after-commit-rate"],
      dropAckRate: p.workers["drop-ack-rate"],
      autoscale: p.workers.autoscale && {
        min: p.workers.autoscale.min,
        max: p.workers.autoscale.max,
        targetLagSeconds: p.workers.autoscale["target-lag-seconds"],
        cooldownMs: p.workers.autoscale.cooldown,
        sampleMs: p.workers.autoscale["sample-every"],
      },
    },
    consumer: {
      ackWaitMs: p.consumer["ack-wait"],
      maxDeliver: p.consumer["max-deliver"],
      backoffBaseMs: p.consumer.backoff.base,
      backoffMaxMs: p.consumer.backoff.max,
    },
    handler: {
      ...(p.handler.module !== undefined && { module: p.handler.module }),
      ms: p.handler.ms,
      failRate: p.handler["fail-rate"],
      poisonRate: p.handler["poison-rate"],
      fatalRate: p.handler["fatal-rate"],
      crashRate: p.handler["crash-rate"],
      invalidRate: p.handler["invalid-rate"],
    },
    producer: {
      duplicateRate: p.producer["duplicate-rate"],
      inFlight: p.producer["in-flight"],
      publishTimeoutMs: p.producer["publish-timeout"],
      retryForMs: p.producer["retry-for"],
    },
    ...(p.intake && { intake: { gateways: p.intake.gateways, timeoutMs: p.intake.timeout } }),
    ...(p.inbox && {
      inbox: {
        ...(p.inbox.schema !== undefined && { schema: p.inbox.schema }),
        effects: p.inbox.effects,
        maxBatch: p.inbox.batch,
        poolSize: p.inbox.pool,
      },
    }),
    faults: p.faults.map((f) => ({
      kind: f.kind,
      of: f.of ?? [],
      atMs: f.at,
      everyMs: f.every,
      jitterMs: f.jitter ?? 0,
      count: f.count,
      durationMs: f.duration ?? DEFAULT_FAULT_DURATION_MS,
      target: f.target,
      delayMs: f.delay ?? 0,
    })),
    timeLimitMs: p["time-limit"],
    expect: { dlq: p.expect.dlq, minFaults: p.expect["min-faults"], minRedeliveries: p.expect["min-redeliveries"] },
  };
}

/** Fault kinds the nemesis can inject in a scenario, `any` expanded. */
export function faultKinds(s: Scenario): FaultKind[] {
  return [...new Set(s.faults.flatMap((f) => (f.kind === "any" ? f.of : [f.kind])))];
}

/** Every fault a scenario carries, the nemesis's and the workload's, for listings. */
export function faultNames(s: Scenario): string[] {
  const knobs: [string, number][] = [
    ["crash-after-commit", s.workers.crashAfterCommitRate],
    ["drop-ack", s.workers.dropAckRate],
    ["poison", s.handler.poisonRate],
    ["fatal", s.handler.fatalRate],
    ["crash-order", s.handler.crashRate],
    ["invalid", s.handler.invalidRate],
    ["transient-failure", s.handler.failRate],
    ["re-send", s.producer.duplicateRate],
  ];
  return [...faultKinds(s), ...knobs.filter(([, rate]) => rate > 0).map(([name]) => name)];
}
