/**
 * Exit codes of operator commands on paths the other tests do not reach: `server stop` given neither
 * or both of its selectors (bad input, exit 2, nothing signalled) and `orderq intake` on a port that is
 * already taken (environment, exit 3), and `orderq order --inbox` whose database does not answer (exit 3),
 * each one line on stderr.
 */
import assert from "node:assert/strict";
import { createServer, type Server } from "node:net";
import { runCli } from "../support/cli.js";
import { useServer } from "../support/server.js";

describe("operator commands' exit codes on bad input and a busy port", function () {
  this.timeout(60_000);
  const fx = useServer();

  it("server stop with neither --port nor --pid-file, or with both, is exit 2 and one line", async () => {
    for (const args of [[], ["--port", "4999", "--pid-file", "/nonexistent/nats.pid"]]) {
      const stop = await runCli(["server", "stop", ...args]);
      assert.equal(stop.code, 2, `${args.join(" ")}: ${stop.stderr}`);
      assert.equal(stop.stderr.trim(), "orderq: server stop: give one of --port P or --pid-file F");
      assert.equal(stop.stdout, "");
    }
  });

  it("intake on a port that is already taken is exit 3, one line naming --port, the port and the host", async () => {
    const holder: Server = createServer();
    await new Promise<void>((resolve) => holder.listen(0, "127.0.0.1", resolve));
    const address = holder.address();
    const port = typeof address === "object" && address ? address.port : 0;
    try {
      const intake = await runCli(["intake", "--port", String(port), "--host", "127.0.0.1", "--server", fx.server.url]);
      assert.equal(intake.code, 3, intake.stderr);
      assert.equal(intake.stderr.trim(), `orderq: --port: port ${port} is already in use on 127.0.0.1`);
    } finally {
      await new Promise<void>((resolve) => holder.close(() => resolve()));
    }
  });

  it("order --inbox whose database refuses connections is exit 3, one line naming the database, no password", async () => {
    // A port nothing listens on: taken from the system, then given back.
    const probe: Server = createServer();
    await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
    const address = probe.address();
    const port = typeof address === "object" && address ? address.port : 0;
    await new Promise<void>((resolve) => probe.close(() => resolve()));

    const order = await runCli(["order", "ord-1", "--inbox", `postgres://orders:s3cret-pw@127.0.0.1:${port}/shop`, "--server", fx.server.url]);
    assert.equal(order.code, 3, order.stderr);
    assert.equal(order.stderr.trim().split("\n").length, 1, order.stderr);
    assert.match(order.stderr, new RegExp(`^orderq: inbox database 127\\.0\\.0\\.1:${port}/shop cannot be reached: `));
    assert.doesNotMatch(order.stderr + order.stdout, /s3cret-pw/);
  });
});
