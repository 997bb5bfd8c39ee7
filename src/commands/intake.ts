import { Flags } from "@oclif/core";
import { OrderqCommand, nameFlags, settingsFrom, topologyFlags } from "../cli/base.js";
import { inboxFlags, inboxFrom } from "../cli/inbox-flags.js";
import { intakeRetentionFlag, intakeRetentionFrom, tokenFlags, tokensFrom } from "../cli/intake-flags.js";
import * as defaults from "../core/base/defaults.js";
import { duration, shownAs } from "../cli/flags.js";
import { Gateway } from "../core/intake/gateway.js";
import { ensureTopology, intakeRetentionMs } from "../core/nats/topology.js";
import { drainWithin } from "../core/nats/connection.js";

export default class Intake extends OrderqCommand {
  static override summary = "Receive orders over HTTP: POST /orders, idempotent by key, 202 once JetStream stored the order.";
  static override description =
    "The gateway for web, mobile and API clients. The Idempotency-Key header (or the order id) makes a retried POST safe: " +
    "the same key and payload get the first answer again for --intake-retention (24 h), another payload 422, a request " +
    "still in flight 409. GET /orders/{id} tells where an order is; /healthz, /readyz, /metrics and /openapi.json serve " +
    "operators and client teams. SIGTERM or Ctrl-C stops accepting, answers the requests in flight and exits 0.";
  static override examples = [
    "<%= config.bin %> intake",
    "<%= config.bin %> intake --port 9000 --host 0.0.0.0 --api-tokens-file /etc/orderq/tokens",
    "ORDERQ_API_TOKEN=s3cret <%= config.bin %> intake --json",
  ];

  static override flags = {
    ...nameFlags,
    ...topologyFlags,
    ...intakeRetentionFlag,
    ...inboxFlags,
    ...tokenFlags,
    port: Flags.integer({
      char: "p",
      summary: "Port to listen on (0: a free one, printed at start).",
      default: defaults.INTAKE.port,
      min: 0,
      max: 65535,
    }),
    host: Flags.string({ summary: "Address to listen on (0.0.0.0: every interface).", default: defaults.INTAKE.host }),
    timeout: duration({
      summary: "How long one JetStream request may take before the client is answered 503.",
      default: defaults.PUBLISH_TIMEOUT_MS,
      defaultHelp: shownAs(defaults.PUBLISH_TIMEOUT_MS),
      minMs: 1,
    }),
    "gateway-id": Flags.string({ summary: "Name of this gateway in the key store's records; random by default." }),
    unsafe: Flags.boolean({
      summary: "Negative control for chaos runs: no key store, a new message id per request (a retried order is stored twice).",
      default: false,
      helpGroup: "FAULTS",
    }),
  };

  async run(): Promise<void> {
    const { flags, raw } = await this.parse(Intake);
    const settings = { ...settingsFrom(flags), intakeRetentionMs: intakeRetentionFrom(flags) };
    intakeRetentionMs(settings);
    const inbox = inboxFrom(flags, raw);
    const tokens = tokensFrom(flags);
    const timeoutMs = flags.timeout;
    // Three JetStream writes per order (claim, publish, answer): one socket write per event-loop turn
    // instead of one per message (README, Performance).
    const nc = await this.connect(flags, { coalesceWrites: true });
    await ensureTopology(nc, settings);
    // On stderr with --json too: a failing key-store write is worth seeing whatever the output format.
    const log = (line: string) => process.stderr.write(`orderq intake: ${line}\n`);
    // One JSON line each at start and stop (oclif's logJson would print several).
    const jsonLine = (value: unknown) => process.stdout.write(`${JSON.stringify(value)}\n`);
    const gateway = await Gateway.start(nc, {
      host: flags.host,
      port: flags.port,
      names: settings.names,
      timeoutMs,
      gatewayId: flags["gateway-id"],
      tokens,
      inbox,
      retryAfterSeconds: defaults.INTAKE.retryAfterSeconds,
      log,
      unsafe: flags.unsafe,
    });
    const started = { url: gateway.url, stream: settings.names.stream, keyStore: settings.names.intakeBucket, auth: tokens.length > 0 };
    if (this.jsonEnabled()) jsonLine({ listening: started });
    else
      this.log(
        `orderq intake: listening on ${gateway.url} (stream ${started.stream}, key store ${started.keyStore}, ${started.auth ? `${tokens.length} bearer token(s)` : "no authentication"})`,
      );

    await new Promise<void>((resolve) => {
      const stop = () => {
        process.off("SIGINT", stop);
        process.off("SIGTERM", stop);
        resolve();
      };
      process.on("SIGINT", stop);
      process.on("SIGTERM", stop);
    });
    if (!this.jsonEnabled()) log("stopping: answering the requests in flight");
    await gateway.close();
    // Every request has been answered: a server that does not answer (stopped, cut off) must not keep
    // the process from exiting.
    await drainWithin(nc, timeoutMs);
    if (this.jsonEnabled()) jsonLine({ stopped: { url: started.url } });
  }
}
