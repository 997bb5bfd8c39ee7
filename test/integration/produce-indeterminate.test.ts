/**
 * `orderq produce` when the server goes away mid-run: the publishes then in flight get no PubAck, so
 * each may or may not be stored. The run still ends with its report (the counts, and one line saying
 * why the first indeterminate publish is one), exit 1, instead of dying on the connection's drain.
 */
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { connect } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { NatsServer } from "../../src/core/fleet/nats-server.js";
import { json, startCli } from "../support/cli.js";

describe("orderq produce: the server stopped mid-run", function () {
  this.timeout(120_000);
  let server: NatsServer | undefined;

  after(async () => {
    await server?.dispose();
  });

  it("reports every order as accepted or indeterminate, says why the first may or may not be stored, exit 1", async () => {
    server = await NatsServer.start();
    const COUNT = 40;
    // 10 a second: the server is stopped long before the last order is due.
    const run = startCli(["produce", "--count", String(COUNT), "--rate", "10", "--publish-timeout", "500ms", "--retry-for", "0s", "--json"], {
      NATS_URL: server.url,
    });
    const nc = await connect({ servers: server.url });
    const jsm = await jetstreamManager(nc);
    const stored = async () => (await jsm.streams.info("ORDERS").catch(() => undefined))?.state.messages ?? 0;
    while ((await stored()) < 5) await sleep(50);
    await nc.close();
    // kill -9, not SIGTERM: a stopping nats-server shuts JetStream down before it closes its client
    // connections, and a publish in between is answered "no responders" — not stored, a second line.
    await server.kill();

    const result = await run.done;
    assert.equal(result.code, 1, result.stderr);
    const stats = json(result);
    assert.equal(stats.published, COUNT);
    assert.ok(stats.indeterminate >= 1, `indeterminate ${stats.indeterminate}`);
    assert.equal(stats.accepted + stats.indeterminate + stats.failed, COUNT);
    const lines = result.stderr.trim().split("\n");
    assert.equal(lines.length, 1, result.stderr);
    // Why: a PubAck not received in time, or the connection lost while waiting for it.
    assert.match(lines[0], new RegExp(`^orderq: ${stats.indeterminate} order\\(s\\) may or may not be stored; the first: \\S.*$`));
    assert.equal(stats.firstIndeterminate, lines[0].replace(/^.*?; the first: /, ""));
  });
});
