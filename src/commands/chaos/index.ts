import { Args, Flags } from "@oclif/core";
import { OrderqCommand } from "../../cli/base.js";
import { renderResult, runScenario, scenariosDir } from "../../cli/chaos.js";
import { resolveScenario } from "../../core/chaos/loader.js";
import type { ChaosResult } from "../../core/chaos/runner.js";
import { randomSeed } from "../../core/base/random.js";
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { InputError } from "../../core/base/errors.js";

/** Absolute, so worker processes started elsewhere find it; @throws InputError when there is no such file. */
function handlerPath(path: string): string {
  const absolute = resolve(path);
  if (!existsSync(absolute)) throw new InputError(`--handler: no handler module at ${path}`);
  return absolute;
}

export default class Chaos extends OrderqCommand {
  static override summary = "Run a chaos scenario: real faults on real processes, then a checker proves exactly-once.";
  static override description =
    "Starts its own nats-server(s) in a temp dir (or uses --server), worker processes and in-process producers " +
    "that record every publish; runs the scenario's fault schedule, heals every fault, waits until nothing is pending " +
    "or in flight, stops everything it started and checks the history against the ledger, the DLQ and the stream. " +
    "Exit code 0 valid, 1 invalid, 2 bad input, 3 environment.";
  static override examples = [
    "<%= config.bin %> chaos worker-crash",
    "<%= config.bin %> chaos broker-restart --seed 42 --orders 5000 --report ./chaos-report",
    "<%= config.bin %> chaos ack-lost --unsafe   # negative control: must be INVALID",
    "<%= config.bin %> chaos ./my-scenario.yaml --json",
    "<%= config.bin %> chaos inbox-worker-crash --handler examples/postgres-orders/unsafe-handler.mjs   # negative control of the inbox: must be INVALID",
  ];

  static override args = {
    scenario: Args.string({ required: true, description: "Scenario name (see `orderq chaos list`) or path to a YAML file." }),
  };

  static override flags = {
    // No default and no NATS_URL: a chaos run starts its own servers unless told otherwise.
    server: Flags.string({
      char: "s",
      summary: "Use this NATS server instead of starting one (server faults are then refused).",
      helpGroup: "CONNECTION",
    }),
    seed: Flags.integer({ summary: "Seed of orders, handler randomness and fault schedule (random when absent)." }),
    orders: Flags.integer({ char: "n", summary: "Orders to publish (overrides the scenario).", min: 1 }),
    report: Flags.string({
      summary: "Write history.jsonl, result.json and report.html to this directory.",
      description:
        "An INVALID run also leaves its evidence there (servers' stores and logs, workers' logs, the checker's inputs); without --report it goes to a new directory in the system's temp dir, named in the output.",
    }),
    keep: Flags.boolean({ summary: "Keep the evidence (servers' stores and logs, workers' logs) even when the run is valid.", default: false }),
    unsafe: Flags.boolean({ summary: "Negative control: workers commit with a plain put; the checker must report INVALID.", default: false }),
    handler: Flags.string({ summary: "Handler module the workers run instead of the scenario's (relative to the current directory)." }),
  };

  async run(): Promise<ChaosResult> {
    const { args, flags } = await this.parse(Chaos);
    const scenario = resolveScenario(args.scenario, scenariosDir(this.config));
    const result = await runScenario(scenario, {
      config: this.config,
      seed: flags.seed ?? randomSeed(),
      orders: flags.orders,
      unsafe: flags.unsafe,
      handler: flags.handler === undefined ? undefined : handlerPath(flags.handler),
      external: flags.server ? this.natsOptions({ ...flags, server: flags.server }) : undefined,
      reportDir: flags.report,
      keep: flags.keep,
      interactive: process.stderr.isTTY === true && !this.jsonEnabled(),
    });
    this.log(renderResult(result));
    if (!result.valid) process.exitCode = 1;
    return result;
  }
}
