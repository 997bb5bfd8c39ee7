import { Flags } from "@oclif/core";
import cliProgress from "cli-progress";
import { OrderqCommand, nameFlags, parseWeights, settingsFrom, topologyFlags } from "../cli/base.js";
import { duration, probability, shownAs } from "../cli/flags.js";
import { keyValueTable, rate } from "../cli/render.js";
import * as defaults from "../core/base/defaults.js";
import { History } from "../core/pipeline/history.js";
import { SOURCES } from "../core/nats/names.js";
import { Producer, type ProduceStats } from "../core/pipeline/producer.js";
import { randomSeed, seededRng } from "../core/base/random.js";
import { InputError } from "../core/base/errors.js";
import { ensureTopology } from "../core/nats/topology.js";
import { drainWithin } from "../core/nats/connection.js";
import { checkGatewaysReachable, HttpSender } from "../core/intake/http-sender.js";
import { API_TOKEN_ENV } from "../cli/intake-flags.js";

export default class Produce extends OrderqCommand {
  static override summary = "Publish orders from several sources, each stored once (Nats-Msg-Id = order id).";
  static override description =
    "A publish that times out or loses its connection is retried with the same id, inside the stream's " +
    "duplicate window, so it is stored once. --history records every publish as JSON lines for the chaos checker.";
  static override examples = [
    "<%= config.bin %> produce --count 2000",
    "<%= config.bin %> produce --count 10000 --rate 500 --sources web=0.5,mobile=0.3,api=0.2",
    "<%= config.bin %> produce --count 500 --poison-rate 0.02 --invalid-rate 0.01 --history history.jsonl --json",
    "<%= config.bin %> produce --count 1000 --via http://127.0.0.1:8080",
    "<%= config.bin %> produce --count 1000 --via http://127.0.0.1:8080,http://127.0.0.1:8081",
  ];

  static override flags = {
    ...nameFlags,
    ...topologyFlags,
    count: Flags.integer({ char: "n", summary: "Orders to publish.", default: 1000, min: 0 }),
    rate: Flags.integer({ char: "r", summary: "Orders per second; 0 = as fast as possible.", default: 0, min: 0 }),
    duration: duration({ summary: "Stop after this long (e.g. 30s), even if --count is not reached." }),
    sources: Flags.string({ summary: "Source mix as weights.", default: "web=0.5,mobile=0.3,api=0.2" }),
    "poison-rate": probability({ summary: "Share of orders the handler always rejects (retryable).", default: 0 }),
    "fatal-rate": probability({ summary: "Share of orders the handler rejects as non-retryable.", default: 0 }),
    "crash-rate": probability({ summary: "Share of orders that kill every worker that handles them.", default: 0 }),
    "invalid-rate": probability({ summary: "Share of malformed payloads.", default: 0 }),
    "duplicate-rate": probability({ summary: "Share of orders published a second time with the same id.", default: 0 }),
    history: Flags.string({ summary: "Write every publish (invoke / ok / fail / indeterminate) to this JSON-lines file." }),
    "in-flight": Flags.integer({ summary: "Publishes awaiting their PubAck at once.", default: defaults.PUBLISH_IN_FLIGHT, min: 1 }),
    "publish-timeout": duration({
      summary: "PubAck timeout per try.",
      default: defaults.PUBLISH_TIMEOUT_MS,
      defaultHelp: shownAs(defaults.PUBLISH_TIMEOUT_MS),
      minMs: 1,
    }),
    "retry-for": duration({
      summary: "Keep retrying one order this long (stay inside the duplicate window).",
      default: defaults.PUBLISH_RETRY_FOR_MS,
      defaultHelp: shownAs(defaults.PUBLISH_RETRY_FOR_MS),
    }),
    "id-prefix": Flags.string({ summary: "Order ids are <prefix>-<n>; a random prefix by default." }),
    seed: Flags.integer({ summary: "Seed of the generated orders and mix." }),
    via: Flags.string({
      summary: "Send the orders through intake gateways (POST /orders at these comma-separated URLs) instead of straight to JetStream.",
      description:
        "A request that times out or is answered 409 or 503 is retried with the same Idempotency-Key; --publish-timeout is the timeout of one request. " +
        "With several gateways, orders are spread over them and a request that one did not answer (refused, reset, timed out) is sent to the next at once.",
    }),
    "api-token": Flags.string({ summary: "Bearer token for the gateways of --via.", env: API_TOKEN_ENV }),
  };

  async run(): Promise<ProduceStats & { seed: number; idPrefix: string; rate: number }> {
    const { flags } = await this.parse(Produce);
    const settings = settingsFrom(flags);
    const seed = flags.seed ?? randomSeed();
    const idPrefix = flags["id-prefix"] ?? seed.toString(36);
    if (!/^[A-Za-z0-9_-]{1,40}$/.test(idPrefix)) this.error(`--id-prefix: "${idPrefix}" may use only A-Z a-z 0-9 _ - (at most 40)`, { exit: 2 });
    const retryForMs = flags["retry-for"];
    const options = {
      names: settings.names,
      count: flags.count,
      durationMs: flags.duration,
      rate: flags.rate,
      sources: parseWeights(flags.sources, "--sources", SOURCES),
      poisonRate: flags["poison-rate"],
      fatalRate: flags["fatal-rate"],
      crashRate: flags["crash-rate"],
      invalidRate: flags["invalid-rate"],
      duplicateRate: flags["duplicate-rate"],
      inFlight: flags["in-flight"],
      publishTimeoutMs: flags["publish-timeout"],
      retryForMs,
      idPrefix,
    };
    const via = flags.via === undefined ? undefined : flags.via.split(",").map((u) => gatewayUrl(u.trim()));
    const history = new History(flags.history);
    // Through a gateway, NATS is the gateway's business: nothing here connects to it.
    if (via) await checkGatewaysReachable(via);
    const nc = via ? undefined : await this.connect(flags, { coalesceWrites: true });
    if (nc) await ensureTopology(nc, settings, { verify: false, update: false, createUnderOtherNames: false });
    const target = nc ?? ((timeoutMs: number) => new HttpSender(via!, timeoutMs, flags["api-token"]));
    const producer = new Producer(target, options, seededRng(seed), history);
    const onSignal = () => producer.stop();
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);

    const showBar = process.stderr.isTTY === true && !this.jsonEnabled();
    const bar = new cliProgress.SingleBar(
      { format: "orders {bar} {value}/{total} | {rate}/s | dup {dup} | indeterminate {ind}", stream: process.stderr, hideCursor: true },
      cliProgress.Presets.shades_classic,
    );
    let timer: NodeJS.Timeout | undefined;
    if (showBar) {
      const started = Date.now();
      bar.start(flags.count, 0, { rate: 0, dup: 0, ind: 0 });
      timer = setInterval(() => {
        const s = producer.stats;
        bar.update(s.accepted + s.failed + s.indeterminate, {
          rate: Math.round((s.accepted * 1000) / Math.max(1, Date.now() - started)),
          dup: s.duplicates,
          ind: s.indeterminate,
        });
      }, 200);
    }
    const stats = await producer.run();
    if (timer) clearInterval(timer);
    if (showBar) bar.stop();
    await history.close();
    // The server may be away by now (that is what made publishes indeterminate): a plain drain would
    // fail, or wait minutes, and lose the report below. Nothing is in flight any more.
    if (nc) await drainWithin(nc, flags["publish-timeout"]);
    this.log(
      keyValueTable([
        ["published", stats.published],
        ["accepted", stats.accepted],
        ["duplicates (absorbed by the stream)", stats.duplicates],
        ["failed", stats.failed],
        ["indeterminate", stats.indeterminate],
        ["retries", stats.retries],
        ["rate", rate(stats.accepted, stats.elapsedMs)],
        ["id prefix / seed", `${idPrefix} / ${seed}`],
      ]),
    );
    // The table counts them; these say why (one line each: the first of its kind; --history has all).
    if (stats.firstFailure) this.logLine(`orderq: ${stats.failed} order(s) not stored; the first: ${stats.firstFailure}`);
    if (stats.firstIndeterminate) {
      this.logLine(`orderq: ${stats.indeterminate} order(s) may or may not be stored; the first: ${stats.firstIndeterminate}`);
    }
    if (stats.failed + stats.indeterminate > 0) process.exitCode = 1;
    return { ...stats, seed, idPrefix, rate: Math.round((stats.accepted * 1000) / Math.max(1, stats.elapsedMs)) };
  }
}

/** One --via URL, checked before anything starts; an InputError that never echoes what may be a secret in it. */
function gatewayUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new InputError("--via: not a URL (write e.g. http://127.0.0.1:8080)");
  }
  if (url.username || url.password) {
    // The gateway authenticates with a bearer token; a user and password in the URL would only leak.
    throw new InputError(`--via: a user or password in the URL is not used by the gateway; pass a token in ORDERQ_API_TOKEN (--api-token)`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new InputError(`--via: ${url.protocol} is not http: or https:`);
  return url.toString();
}
