/**
 * `orderq bench --intake`: orders sent through the HTTP gateway (`POST /orders`), in the same run as
 * the direct produce phase, so the two rates share the machine's moment.
 *
 * The gateway is a child process, `orderq intake` exactly as an operator starts it, not a Gateway in
 * this process: the load generator (the real Producer sending through HttpSender, undici's Pool, as
 * `produce --via` does) would otherwise share the gateway's event loop and add its own CPU to every request's
 * latency, and the gateway's CPU could not be told apart from the client's.
 *
 * Two phases on one gateway: throughput (orders flat out, `inFlight` requests outstanding), which also
 * warms the gateway's JIT, then latency at a fixed rate, measured from the moment the producer calls
 * send to the moment the 202 is read. Both are verified: every order answered 202 and stored once.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import type { JetStreamManager } from "@nats-io/jetstream";
import type { Names } from "../nats/names.js";
import { killOnExit } from "../fleet/exit-kill.js";
import { INBOX_URL_ENV } from "../inbox/connect.js";
import { workArgs } from "../fleet/work-args.js";
import { HttpSender } from "../intake/http-sender.js";
import { summarizeLatency } from "./histogram.js";
import { Meter } from "./meter.js";
import { BenchSink, newProducer, producedResult } from "./produce.js";
import type { Producer } from "../pipeline/producer.js";
import { streamMessages } from "./topology.js";
import type { PhaseResult } from "./types.js";

/** How the bench starts its gateway. */
export interface GatewayLaunch {
  /** bin/run.js of this orderq. */
  script: string;
  /** `--server` of the gateway. */
  server: string;
  /** Credentials travel in NATS_* variables, not in arguments. */
  env: NodeJS.ProcessEnv;
}

export interface IntakeSettings {
  /** Orders of the throughput phase. */
  count: number;
  /** Requests outstanding in the throughput phase (the produce phase's --in-flight). */
  inFlight: number;
  /** Requests per second of the latency phase, and how long it lasts (s). */
  rate: number;
  seconds: number;
  payloadBytes: number;
  seed: number;
  idPrefix: string;
}

/** A gateway process of the bench's own on a free loopback port. */
export class BenchGateway {
  private constructor(
    private readonly child: ChildProcess,
    readonly url: string,
    private readonly exited: Promise<number | null>,
  ) {}

  get pid(): number {
    return this.child.pid!;
  }

  /** Starts `orderq intake --port 0` on the phase's topology; resolves once it listens. Throws when it exits first. */
  static async start(launch: GatewayLaunch, names: Names): Promise<BenchGateway> {
    // The four chosen names, as the workers get them (the key store's bucket derives from the stream).
    const nameArgs = workArgs({ server: launch.server, settings: { names } }).slice(1);
    const child = spawn(process.execPath, [launch.script, "intake", ...nameArgs, "--host", "127.0.0.1", "--port", "0", "--json"], {
      // Our environment's ORDERQ_API_TOKEN (the intake command's --api-token) would make the gateway
      // ask for a token, and its ORDERQ_INBOX_URL would point the status lookup at another database.
      env: { ...process.env, ...launch.env, ORDERQ_API_TOKEN: undefined, [INBOX_URL_ENV]: undefined },
      stdio: ["ignore", "pipe", "inherit"],
    });
    killOnExit(child);
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    const lines = createInterface({ input: child.stdout });
    const first = new Promise<string>((resolve) => lines.once("line", resolve));
    const started = await Promise.race([first, exited.then((code) => ({ code }))]);
    if (typeof started !== "string") throw new Error(`bench --intake: the gateway exited (code ${started.code}) before it listened`);
    const url = (JSON.parse(started) as { listening: { url: string } }).listening.url;
    return new BenchGateway(child, url, exited);
  }

  /** SIGTERM, as an operator stops it: it answers what is in flight and exits. */
  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill("SIGTERM");
    await this.exited;
  }
}

/** The Producer of `produce --via` (an HttpSender to `url`), with the bench's mix. */
function viaProducer(url: string, names: Names, s: IntakeSettings, count: number, rate: number, idPrefix: string, sink: BenchSink): Producer {
  return newProducer((timeoutMs) => new HttpSender(url, timeoutMs), names, { ...s, count, rate, idPrefix }, sink);
}

/**
 * Both intake phases against one gateway this function starts and stops. `serverPid`: our
 * nats-server's, for its CPU. The client CPU of each phase is this process (the load generator) plus
 * the gateway's; `gatewaySeconds` is the gateway's part.
 */
export async function intakePhases(
  launch: GatewayLaunch,
  jsm: JetStreamManager,
  names: Names,
  s: IntakeSettings,
  serverPid: number | undefined,
  progress: (text: string) => void,
): Promise<PhaseResult[]> {
  progress("intake: starting a gateway (orderq intake)");
  const gateway = await BenchGateway.start(launch, names);
  const meter = new Meter(() => [process.pid, gateway.pid], serverPid, undefined, gateway.pid);
  try {
    progress(`intake: ${s.count} orders through ${gateway.url}, ${s.inFlight} requests in flight`);
    const flat = new BenchSink(false);
    let t0 = meter.mark();
    const flatStats = await viaProducer(gateway.url, names, s, s.count, 0, `${s.idPrefix}t`, flat).run();
    let t1 = meter.mark();
    const storedAfterFlat = await streamMessages(jsm, names.stream);
    const words = { accepted: "answered 202", duplicates: "replayed" };
    const throughput = producedResult({
      phase: "intake",
      expected: s.count,
      stats: flatStats,
      stored: storedAfterFlat,
      words,
      window: "first POST → last 202 (produce --via's Producer and HttpSender in this process, the gateway a child process)",
      cpu: meter.cpu(t0, t1),
      t0,
      t1,
    });

    const count = Math.max(1, Math.round(s.rate * s.seconds));
    progress(`intake latency: ${count} orders at ${s.rate}/s`);
    const paced = new BenchSink(true);
    t0 = meter.mark();
    const pacedStats = await viaProducer(gateway.url, names, s, count, s.rate, `${s.idPrefix}l`, paced).run();
    t1 = meter.mark();
    const latency: PhaseResult = {
      ...producedResult({
        phase: "intake-latency",
        expected: count,
        stats: pacedStats,
        stored: (await streamMessages(jsm, names.stream)) - storedAfterFlat,
        words,
        window: `after the throughput phase (its warm-up), POSTing at ${s.rate}/s; latency = 202 read − send called`,
        cpu: meter.cpu(t0, t1),
        t0,
        t1,
      }),
      latency: summarizeLatency(answerLatencies(paced)),
    };
    return [throughput, latency];
  } finally {
    await gateway.stop();
  }
}

/** ms from each order's send call to its answer; orders never answered have none. */
export function answerLatencies(sink: BenchSink): number[] {
  const out: number[] = [];
  for (const [id, answeredAt] of sink.answeredAt) {
    const sentAt = sink.publishedAt.get(id);
    if (sentAt !== undefined) out.push(answeredAt - sentAt);
  }
  return out;
}
