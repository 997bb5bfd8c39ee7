/**
 * What every orderq command shares: connection flags (`--server` / NATS_URL and credentials),
 * `--json`, and turning any failure into one clear line with a meaningful exit code.
 */
import { Command, Errors, Flags } from "@oclif/core";
import type { NatsConnection } from "@nats-io/transport-node";
import { connectNats, DEFAULT_SERVER, withUrlCredentials, type NatsOptions } from "../core/nats/connection.js";
import { loadContext, selectedContext } from "../core/nats/context.js";
import { describeFailure, InputError } from "../core/base/errors.js";
import { reportFailureToSupervisor } from "../core/fleet/child-channel.js";
import { DEFAULT_NAMES, namesFor, type Names } from "../core/nats/names.js";
import { DEFAULT_SETTINGS, type TopologySettings } from "../core/nats/topology.js";
import { duration, shownAs } from "./flags.js";

/** The connection flags every command has (baseFlags). */
export interface ConnectionFlags {
  server: string;
  user?: string;
  password?: string;
  token?: string;
  creds?: string;
  nkey?: string;
  "tls-ca"?: string;
  "tls-cert"?: string;
  "tls-key"?: string;
  context?: string;
}

export abstract class OrderqCommand extends Command {
  static override enableJsonFlag = true;

  static override baseFlags = {
    server: Flags.string({
      char: "s",
      summary: "NATS server URL(s), comma-separated.",
      env: "NATS_URL",
      default: DEFAULT_SERVER,
      helpGroup: "CONNECTION",
    }),
    user: Flags.string({ summary: "NATS user name.", env: "NATS_USER", helpGroup: "CONNECTION" }),
    password: Flags.string({ summary: "NATS password.", env: "NATS_PASSWORD", helpGroup: "CONNECTION" }),
    token: Flags.string({ summary: "NATS auth token.", env: "NATS_TOKEN", helpGroup: "CONNECTION" }),
    creds: Flags.string({ summary: "NATS credentials file (JWT and nkey seed).", env: "NATS_CREDS", helpGroup: "CONNECTION" }),
    "tls-ca": Flags.string({ summary: "CA certificate to verify the server's TLS certificate.", env: "NATS_CA", helpGroup: "CONNECTION" }),
    "tls-cert": Flags.string({ summary: "Client certificate for mutual TLS (with --tls-key).", env: "NATS_CERT", helpGroup: "CONNECTION" }),
    "tls-key": Flags.string({ summary: "Private key of --tls-cert.", env: "NATS_KEY", helpGroup: "CONNECTION" }),
    nkey: Flags.string({ summary: "NATS nkey seed file.", env: "NATS_NKEY", helpGroup: "CONNECTION" }),
    context: Flags.string({
      summary:
        "natscli context to connect with (its JSON file under ~/.config/nats/context/); the selected one is used when no --server or NATS_URL is given.",
      env: "NATS_CONTEXT",
      helpGroup: "CONNECTION",
    }),
  };

  /**
   * The connection: a natscli context first (--context, else the selected one when no server was
   * given), then the flags and NATS_* variables over it, as natscli does; credentials in the URL are
   * moved out of it (withUrlCredentials), so the URL that is printed or passed on is clean.
   */
  protected natsOptions(flags: ConnectionFlags): NatsOptions {
    const serverGiven = process.env.NATS_URL !== undefined || this.argv.some((a) => /^(--server|-s)(=|$)/.test(a) || /^-s./.test(a));
    const contextName = flags.context ?? (serverGiven ? undefined : selectedContext());
    const context = contextName ? loadContext(contextName) : {};
    const given = {
      server: serverGiven || !context.server ? flags.server : undefined,
      user: flags.user,
      password: flags.password,
      token: flags.token,
      creds: flags.creds,
      nkey: flags.nkey,
      tlsCa: flags["tls-ca"],
      tlsCert: flags["tls-cert"],
      tlsKey: flags["tls-key"],
    };
    const defined = Object.fromEntries(Object.entries(given).filter(([, v]) => v !== undefined));
    // A login given apart replaces the context's whole login, not half of it.
    const login = given.user ?? given.token ?? given.creds ?? given.nkey;
    const base =
      login === undefined ? context : { ...context, user: undefined, password: undefined, token: undefined, creds: undefined, nkey: undefined };
    return withUrlCredentials({ server: DEFAULT_SERVER, ...base, ...defined, name: `orderq ${this.id ?? ""}`.trim() });
  }

  /**
   * One log line on stderr, with or without --json: oclif's logToStderr() is silent under --json, but a
   * log line (a handler's `ctx.log`, a worker's error) is no part of the JSON result on stdout, and a
   * script that asked for JSON still wants its logs.
   */
  protected logLine(line: string): void {
    process.stderr.write(`${line}\n`);
  }

  protected connect(flags: ConnectionFlags, extra: Partial<NatsOptions> = {}): Promise<NatsConnection> {
    return connectNats({ ...this.natsOptions(flags), ...extra });
  }

  /**
   * Every failure ends as one line on stderr (or `{"error": …}` with --json) and an exit code:
   * 2 bad input, 3 environment, 1 anything else. oclif's own wrapping would break the line.
   */
  protected override async catch(err: Error & { exitCode?: number; oclif?: { exit?: number } }): Promise<unknown> {
    if (err instanceof Errors.ExitError) throw err;
    const { exitCode } = describeFailure(err);
    const message = withoutParserWrapping(describeFailure(err).message);
    if (process.env.DEBUG) this.logToStderr(err.stack ?? String(err));
    // A supervisor's child tells the supervisor why it stops: exit 2 stops the supervisor with this line.
    await reportFailureToSupervisor(message, exitCode);
    if (this.jsonEnabled()) this.logJson({ error: { message, exitCode } });
    else this.logToStderr(`orderq: ${message}`);
    return this.exit(exitCode);
  }
}

/**
 * oclif wraps a flag's parse error as `Parsing --flag <message> See more help with --help`: keep one
 * line that names the flag once (`--flag: <message>`).
 */
export function withoutParserWrapping(message: string): string {
  const m = /^Parsing (--[\w-]+)\s+([\s\S]*?)\s*See more help with --help$/.exec(message);
  if (!m) return message;
  return m[2].startsWith(`${m[1]}:`) ? m[2] : `${m[1]}: ${m[2]}`;
}

/** Names of streams, consumer and buckets; defaults from DESIGN.md. */
export const nameFlags = {
  stream: Flags.string({ summary: "Orders stream.", default: DEFAULT_NAMES.stream, helpGroup: "TOPOLOGY" }),
  consumer: Flags.string({ summary: "Durable consumer shared by the workers.", default: DEFAULT_NAMES.consumer, helpGroup: "TOPOLOGY" }),
  // No default value: without the flag the DLQ stream follows --stream (namesFor).
  "dlq-stream": Flags.string({
    summary: `Dead-letter stream. [default: ${DEFAULT_NAMES.dlqStream}; <stream>_DLQ with another --stream]`,
    helpGroup: "TOPOLOGY",
  }),
  "ledger-bucket": Flags.string({ summary: "KV bucket of committed outcomes.", default: DEFAULT_NAMES.ledgerBucket, helpGroup: "TOPOLOGY" }),
};

export function namesFrom(flags: { stream: string; consumer: string; "dlq-stream"?: string; "ledger-bucket": string }): Names {
  return namesFor({ stream: flags.stream, consumer: flags.consumer, dlqStream: flags["dlq-stream"], ledgerBucket: flags["ledger-bucket"] });
}

/** Consumer and stream settings used when creating what is missing. */
export const topologyFlags = {
  replicas: Flags.integer({
    summary: "Stream replicas (1, or 3 in a cluster).",
    default: DEFAULT_SETTINGS.replicas,
    min: 1,
    max: 5,
    helpGroup: "TOPOLOGY",
  }),
  "ack-wait": duration({
    summary: "Ack wait: how soon a dead worker's order is redelivered.",
    default: DEFAULT_SETTINGS.ackWaitMs,
    defaultHelp: shownAs(DEFAULT_SETTINGS.ackWaitMs),
    minMs: 1,
    helpGroup: "TOPOLOGY",
  }),
  "max-deliver": Flags.integer({
    summary: "Attempts before an order is dead-lettered.",
    default: DEFAULT_SETTINGS.maxDeliver,
    min: 1,
    helpGroup: "TOPOLOGY",
  }),
  "dup-window": duration({
    summary: "Publish de-duplication window.",
    default: DEFAULT_SETTINGS.dupWindowMs,
    defaultHelp: shownAs(DEFAULT_SETTINGS.dupWindowMs),
    minMs: 1,
    helpGroup: "TOPOLOGY",
  }),
  "max-ack-pending": Flags.integer({
    summary: "Orders delivered but not yet acked, over all workers.",
    default: DEFAULT_SETTINGS.maxAckPending,
    min: 1,
    helpGroup: "TOPOLOGY",
  }),
};

/** `topology ensure` only: the horizon is set where the topology is verified, and shown by `status`. */
export const retentionFlags = {
  "ledger-retention": duration({
    summary: "How long the ledger (and the inbox) remembers an order: a re-send or DLQ replay after it is not recognised.",
    description: "Must exceed --dup-window and the orders stream's max age when one is set.",
    default: DEFAULT_SETTINGS.ledgerRetentionMs,
    defaultHelp: shownAs(DEFAULT_SETTINGS.ledgerRetentionMs),
    minMs: 1,
    helpGroup: "TOPOLOGY",
  }),
};

export function settingsFrom(
  flags: Parameters<typeof namesFrom>[0] & {
    replicas: number;
    "ack-wait": number;
    "max-deliver": number;
    "dup-window": number;
    "max-ack-pending": number;
    "ledger-retention"?: number;
  },
): TopologySettings {
  return {
    ledgerRetentionMs: flags["ledger-retention"] ?? DEFAULT_SETTINGS.ledgerRetentionMs,
    names: namesFrom(flags),
    replicas: flags.replicas,
    ackWaitMs: flags["ack-wait"],
    maxDeliver: flags["max-deliver"],
    dupWindowMs: flags["dup-window"],
    maxAckPending: flags["max-ack-pending"],
  };
}

/** `web=0.5,mobile=0.3,api=0.2` → weights; names the bad part. */
export function parseWeights(text: string, flag: string, allowed: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const part of text.split(",")) {
    const [key, value] = part.split("=").map((s) => s.trim());
    const weight = Number(value);
    if (!allowed.includes(key)) throw new InputError(`${flag}: unknown source "${key}" (known: ${allowed.join(", ")})`);
    if (value === undefined || !Number.isFinite(weight) || weight < 0) throw new InputError(`${flag}: "${part}" needs a weight ≥ 0, e.g. ${key}=0.5`);
    out[key] = weight;
  }
  if (Object.values(out).every((w) => w === 0)) throw new InputError(`${flag}: at least one weight must be above 0`);
  return out;
}
