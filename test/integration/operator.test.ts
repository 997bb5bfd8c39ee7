/**
 * Issue 14, the operator's experience through the real CLI: running servers by hand and the exit
 * codes the README promises. Bad inputs that need no server are in test/unit/operator-inputs.test.ts.
 */
import assert from "node:assert/strict";
import { chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { json, runCli, startCli } from "../support/cli.js";
import { scrape, sumSeries } from "../support/metrics.js";
import { waitFor } from "../support/wait.js";
import { useServer } from "../support/server.js";
import type { ResourceReport } from "../../src/core/nats/topology.js";
import type { OrderLookup } from "../../src/core/ops/order-lookup.js";
import { freePort, NatsServer } from "../../src/core/fleet/nats-server.js";
import { startDetached, stateFile, stopDetached, type DetachedServer } from "../../src/core/fleet/detached-server.js";
import { EnvironmentError, InputError } from "../../src/core/base/errors.js";
import { processState } from "../../src/core/fleet/procfs.js";

describe("orderq server start --detach / server stop", function () {
  this.timeout(60_000);
  let dir: string;
  let port: number;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "orderq-detach-"));
    port = await freePort();
  });
  after(async () => {
    // A failed assertion must not leave the server running.
    if (existsSync(stateFile(port))) await runCli(["server", "stop", "--port", String(port)]);
    rmSync(dir, { recursive: true, force: true });
  });

  it("returns once the server answers, prints the URL to export and how to stop it; a taken port is exit 3; stop ends it", async () => {
    const pidFile = join(dir, "nats.pid");
    const started = await runCli(["server", "start", "--detach", "--port", String(port), "--pid-file", pidFile]);
    assert.equal(started.code, 0, started.stderr);
    const url = `nats://127.0.0.1:${port}`;
    assert.match(started.stdout, new RegExp(`^export NATS_URL=${url}$`, "m"));
    assert.match(started.stdout, new RegExp(`orderq server stop --port ${port}`));
    const pid = Number(readFileSync(pidFile, "utf8"));
    const store = (JSON.parse(readFileSync(stateFile(port), "utf8")) as { store: string }).store;

    // It answers at once: the command after it in a pasted block works.
    const status = await runCli(["topology", "ensure"], { NATS_URL: url });
    assert.equal(status.code, 0, status.stderr);

    const again = await runCli(["server", "start", "--port", String(port)]);
    assert.equal(again.code, 3);
    assert.equal(again.stdout, "", "no 'ready' line for a server that is not ours");
    assert.equal(
      again.stderr.trim(),
      `orderq: port ${port} is already in use (another server? \`orderq server stop --port ${port}\` stops one that orderq started)`,
    );

    const stopped = await runCli(["server", "stop", "--pid-file", pidFile]);
    assert.equal(stopped.code, 0, stopped.stderr);
    assert.match(stopped.stdout, new RegExp(`^nats-server \\(pid ${pid}\\) stopped; removed its store ${store}$`, "m"));
    assert.ok(!existsSync(store), "the temp store is removed");
    // Gone, or a zombie waiting for whichever process adopted it (PID 1 of a container may not reap).
    assert.ok([undefined, "Z"].includes(processState(pid)), `pid ${pid} is ${processState(pid)}`);

    // --json: one JSON document (it was printed twice).
    const asJson = await runCli(["server", "start", "--detach", "--port", String(port), "--json"]);
    assert.equal(asJson.code, 0, asJson.stderr);
    assert.deepEqual((JSON.parse(asJson.stdout) as { urls: string[] }).urls, [url]);
    assert.equal((await runCli(["server", "stop", "--port", String(port)])).code, 0);

    const twice = await runCli(["server", "stop", "--port", String(port)]);
    assert.equal(twice.code, 2);
    assert.match(twice.stderr, new RegExp(`^orderq: no server started with \`orderq server start --detach\` is recorded on port ${port}`));
  });
});

describe("server stop and a state file in the shared temp dir", function () {
  this.timeout(60_000);
  let dir: string;
  const started: DetachedServer[] = [];
  const start = async (o: { pidFile?: string } = {}) => {
    const server = await startDetached({ ...o, stateDir: dir });
    started.push(server);
    return server;
  };
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "orderq-state-"));
  });
  after(() => {
    // A failed assertion must not leave a detached server running, nor its store behind.
    for (const server of started) {
      if (![undefined, "Z"].includes(processState(server.pid))) process.kill(server.pid, "SIGKILL");
      rmSync(server.store, { recursive: true, force: true });
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it("removes only the store the stopped server ran from (a file naming another directory leaves it alone)", async () => {
    const server = await start();
    const decoy = join(dir, "someone-elses-data");
    mkdirSync(decoy);
    writeFileSync(join(decoy, "keep"), "");
    const file = stateFile(server.port, dir);
    writeFileSync(file, JSON.stringify({ ...server, store: decoy, madeStore: true }));
    const stopped = await stopDetached({ port: server.port, stateDir: dir });
    assert.equal(stopped.pid, server.pid);
    assert.equal(stopped.removedStore, undefined);
    assert.ok(existsSync(join(decoy, "keep")), "the directory the state file named is kept");
    assert.ok(!existsSync(file), "the state file is gone with the server");
    rmSync(server.store, { recursive: true, force: true });
  });

  it("a server killed (-9) before its stop: the stop says it had stopped (exit 2) and removes its record and temp store", async () => {
    const server = await start();
    process.kill(server.pid, "SIGKILL");
    await waitFor("the server to die", () => [undefined, "Z"].includes(processState(server.pid)), 5_000, 20);
    await assert.rejects(stopDetached({ port: server.port, stateDir: dir }), (err: Error) => {
      assert.ok(err instanceof InputError, String(err));
      assert.equal(err.message, `no server is running with pid ${server.pid} (it has stopped already; removed its store ${server.store})`);
      return true;
    });
    assert.ok(!existsSync(server.store), "the temp store is gone (was: left behind)");
    assert.ok(!existsSync(stateFile(server.port, dir)), "and its record");
  });

  it("refuses a state file another user owns (exit 3), and stops nothing", async function () {
    if (process.getuid?.() !== 0) this.skip(); // only root can give a file to another user
    const server = await start();
    const file = stateFile(server.port, dir);
    try {
      chownSync(file, 65534, 65534);
      await assert.rejects(stopDetached({ port: server.port, stateDir: dir }), (err: Error) => {
        assert.ok(err instanceof EnvironmentError);
        assert.match(err.message, /belongs to uid 65534, not to this user \(uid 0\): not trusting it \(ask its owner to remove it if it is stale\)$/);
        return true;
      });
      assert.ok(![undefined, "Z"].includes(processState(server.pid)), "the server still runs");
    } finally {
      chownSync(file, 0, 0);
      const stopped = await stopDetached({ port: server.port, stateDir: dir });
      assert.equal(stopped.removedStore, server.store, "its own state file: the store it ran from is removed");
    }
  });

  it("a stop by pid file passes over other users' records (was: exit 3 on the first one)", async function () {
    if (process.getuid?.() !== 0) this.skip(); // only root can give a file to another user
    const pidFile = join(dir, "nats.pid");
    const server = await start({ pidFile });
    const others = stateFile(1, dir);
    writeFileSync(others, JSON.stringify({ ...server, port: 1 }));
    chownSync(others, 65534, 65534);
    try {
      const stopped = await stopDetached({ pidFile, stateDir: dir });
      assert.equal(stopped.pid, server.pid);
      assert.equal(stopped.removedStore, server.store, "its own record was found and its store removed");
    } finally {
      rmSync(others, { force: true });
    }
  });

  it("refuses a state file that is a symlink (to another of the caller's records: it would stop that server)", async () => {
    const server = await start();
    const link = stateFile(2, dir);
    symlinkSync(stateFile(server.port, dir), link);
    try {
      await assert.rejects(stopDetached({ port: 2, stateDir: dir }), /orderq-server-2\.json is not a regular file: not trusting it/);
      assert.ok(![undefined, "Z"].includes(processState(server.pid)), "the server still runs");
    } finally {
      rmSync(link, { force: true });
      await stopDetached({ port: server.port, stateDir: dir });
    }
  });
});

describe("chaos --report that cannot be written", function () {
  this.timeout(30_000);
  it("fails before the run, one line, exit 2 (was: after the whole run)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "orderq-report-"));
    try {
      const file = join(dir, "a-file");
      writeFileSync(file, "");
      for (const cmd of [
        ["chaos", "worker-crash"],
        ["chaos", "all"],
      ]) {
        const result = await runCli([...cmd, "--report", join(file, "sub")]);
        assert.equal(result.code, 2, result.stderr);
        assert.equal(result.stdout, "");
        assert.match(result.stderr, /^orderq: --report: cannot write to .*a-file\/sub: ENOTDIR: not a directory/);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("a NATS server without JetStream", function () {
  this.timeout(60_000);
  let server: NatsServer;
  before(async () => {
    server = await NatsServer.start({ noJetStream: true });
  });
  after(async () => server?.dispose());

  it("is exit 3 with one line saying so (was: exit 1)", async () => {
    const result = await runCli(["status"], { NATS_URL: server.url });
    assert.equal(result.code, 3);
    assert.equal(
      result.stderr.trim(),
      "orderq: JetStream is not enabled on this NATS server (start nats-server with -js, or add `jetstream {}` to its config)",
    );
  });
});

describe("topology settings (issue 14)", function () {
  this.timeout(60_000);
  const fx = useServer();
  const cli = (args: string[]) => runCli([...args, "--server", fx.server.url]);

  it("--update changes only what is passed and shows what the server holds, with each change", async () => {
    assert.equal((await cli(["topology", "ensure", "--max-deliver", "7", "--dup-window", "5m"])).code, 0);
    const updated = await cli(["topology", "ensure", "--ack-wait", "30s", "--update", "--json"]);
    assert.equal(updated.code, 0, updated.stderr);
    const resources = json<{ resources: ResourceReport[] }>(updated).resources;
    const consumer = resources.find((r) => r.name === "ORDERS/workers")!;
    assert.equal(consumer.action, "updated");
    assert.deepEqual(consumer.changed, [{ field: "ack_wait", from: "10s", to: "30s" }]);
    assert.equal(consumer.settings.max_deliver, "7", "max deliver kept (was: reset to 5)");
    const stream = resources.find((r) => r.name === "ORDERS")!;
    assert.equal(stream.action, "exists");
    assert.equal(stream.settings.duplicate_window, "5m", "duplicate window kept (was: reset to 2m)");
    const table = await cli(["topology", "ensure", "--max-ack-pending", "50", "--update"]);
    assert.match(table.stdout, /max_ack_pending 1000 → 50/);
  });

  it("refuses values that cannot work with one line, exit 2, before anything changes", async () => {
    const low = await cli(["topology", "ensure", "--ack-wait", "1ms", "--update"]);
    assert.equal(low.code, 2);
    assert.equal(
      low.stderr.trim(),
      "orderq: --ack-wait: 1ms is below the floor of 300ms (workers renew a lease every ack-wait/3, at most every 100ms)",
    );
    const r3 = await cli(["topology", "ensure", "--replicas", "3", "--update"]);
    assert.equal(r3.code, 2);
    assert.match(r3.stderr, /^orderq: --replicas: 3 needs a JetStream cluster of at least 3 servers; .* is a single server \(use 1\)\n$/);
  });

  it("produce and work do not create a topology under a mistyped name (was: a second, empty set of streams, exit 0)", async () => {
    for (const args of [
      ["produce", "--count", "1"],
      ["work", "--exit-when-idle", "1s"],
    ]) {
      const result = await cli([...args, "--stream", "ORDRES"]);
      assert.equal(result.code, 2, `${args[0]}: ${result.stderr}`);
      assert.match(result.stderr, /^orderq: stream ORDRES does not exist: create it with `orderq topology ensure`/);
    }
    const jsm = await jetstreamManager(fx.nc);
    await assert.rejects(jsm.streams.info("ORDRES"), "no stream was created");
    // Explicitly, it is allowed.
    // (Its own DLQ too: the default one's subjects belong to the default stream.)
    const other = ["--stream", "ORDRES", "--dlq-stream", "ORDRES_DLQ"];
    const ensured = await cli(["topology", "ensure", ...other]);
    assert.equal(ensured.code, 0, ensured.stderr);
    const produced = await cli(["produce", "--count", "1", ...other]);
    assert.equal(produced.code, 0, produced.stderr);
  });
});

describe("credentials in the server URL and natscli contexts (issue 14)", function () {
  this.timeout(60_000);
  const PASSWORD = "p@ss:w0rd";
  const fx = useServer({ auth: { user: "ops", password: PASSWORD } });
  let home: string;
  before(() => {
    home = mkdtempSync(join(tmpdir(), "orderq-natscfg-"));
  });
  after(() => rmSync(home, { recursive: true, force: true }));
  const withLogin = (password: string) => fx.server.url.replace("nats://", `nats://ops:${encodeURIComponent(password)}@`);

  it("nats://user:pass@host:port logs in, reaches work's child processes, and the password is never printed", async () => {
    const url = withLogin(PASSWORD);
    const produced = await runCli(["produce", "--count", "5", "--id-prefix", "urlcred", "--server", url, "--json"]);
    assert.equal(json(produced).accepted, 5, produced.stderr);
    const worked = await runCli(["work", "--processes", "2", "--exit-when-idle", "1s", "--json"], { NATS_URL: url });
    assert.equal(worked.code, 0, worked.stderr);
    assert.equal(json(worked).committed, 5);
    const wrong = await runCli(["status", "--server", withLogin("nope-secret")]);
    assert.equal(wrong.code, 3);
    assert.equal(wrong.stderr.trim(), `orderq: cannot connect to NATS at ${fx.server.url}: Authorization Violation`);
    for (const out of [produced, worked, wrong]) {
      for (const secret of [PASSWORD, encodeURIComponent(PASSWORD), "nope-secret"])
        assert.ok(!(out.stdout + out.stderr).includes(secret), "a password was printed");
    }
  });

  it("--context NAME and the selected natscli context connect with the context's URL and login", async () => {
    mkdirSync(join(home, "nats", "context"), { recursive: true });
    writeFileSync(
      join(home, "nats", "context", "shop.json"),
      JSON.stringify({ description: "", url: fx.server.url, user: "ops", password: PASSWORD, token: "", creds: "" }),
    );
    const env = { XDG_CONFIG_HOME: home };
    const named = await runCli(["topology", "show", "--context", "shop", "--json"], env);
    assert.equal(named.code, 0, named.stderr);
    writeFileSync(join(home, "nats", "context.txt"), "shop\n");
    const selected = await runCli(["topology", "show", "--json"], env);
    assert.equal(selected.code, 0, selected.stderr);
    const missing = await runCli(["topology", "show", "--context", "nosuch"], env);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /^orderq: --context: no context "nosuch" \(.*nosuch\.json does not exist\)\n$/);
    // An explicit --server wins over the selected context, as with natscli: this one has no login.
    const explicit = await runCli(["topology", "show", "--server", fx.server.url], env);
    assert.equal(explicit.code, 3);
    assert.match(explicit.stderr, /Authorization Violation/);
  });
});

describe("orderq order X (issue 14)", function () {
  this.timeout(60_000);
  const fx = useServer();
  const cli = (args: string[]) => runCli([...args, "--server", fx.server.url]);

  it("says where an order is: waiting, committed (worker, attempt, time), dead-lettered (reason, attempts), or nowhere (exit 1)", async () => {
    assert.equal((await cli(["topology", "ensure", "--max-deliver", "1"])).code, 0);
    assert.equal((await cli(["produce", "--count", "2", "--id-prefix", "ok"])).code, 0);
    assert.equal((await cli(["produce", "--count", "1", "--id-prefix", "bad", "--poison-rate", "1"])).code, 0);
    const waiting = json<OrderLookup>(await cli(["order", "ok-000001", "--json"]));
    assert.equal(waiting.state, "waiting");
    assert.equal(waiting.inStream.length, 1);
    assert.deepEqual([waiting.inStream[0].stream, waiting.inStream[0].delivered], ["ORDERS", false]);

    const worked = await cli(["work", "--exit-when-idle", "1s", "--json"]);
    assert.equal(worked.code, 0, worked.stderr);
    const committed = await cli(["order", "ok-000001", "--json"]);
    assert.equal(committed.code, 0);
    const c = json<OrderLookup>(committed);
    assert.equal(c.state, "committed");
    assert.equal(c.outcome?.attempt, 1);
    assert.match(c.outcome?.worker ?? "", /\S/);
    assert.ok(Date.parse(c.outcome?.at ?? "") > 0);
    assert.deepEqual(c.inStream, []);

    const dead = await cli(["order", "bad-000000"]);
    assert.equal(dead.code, 0, dead.stderr);
    assert.match(dead.stdout, /state\s+│ dead-lettered/);
    assert.match(dead.stdout, /dlq seq 1\s+│ max-deliveries after 1 deliveries/);

    // An order with a field the schema does not name: committed by default (was: dead-lettered as
    // invalid), dead-lettered as invalid-payload with --strict-orders.
    const js = jetstream(fx.nc);
    const extra = (id: string) =>
      js.publish(
        "orders.web",
        JSON.stringify({
          id,
          source: "web",
          items: [{ sku: "a", qty: 1, price: 1 }],
          amount: 1,
          createdAt: new Date().toISOString(),
          customer: "Ada",
        }),
        { msgID: id },
      );
    await extra("extra-1");
    assert.equal((await cli(["work", "--exit-when-idle", "1s"])).code, 0);
    assert.equal(json<OrderLookup>(await cli(["order", "extra-1", "--json"])).state, "committed");
    await extra("extra-2");
    assert.equal((await cli(["work", "--exit-when-idle", "1s", "--strict-orders"])).code, 0);
    const strict = json<OrderLookup>(await cli(["order", "extra-2", "--json"]));
    assert.equal(strict.state, "dead-lettered");
    assert.match(strict.dlq[0]?.lastError ?? "", /^invalid-payload: .*Unrecognized key: "customer"/);

    const nowhere = await cli(["order", "no-such-order"]);
    assert.equal(nowhere.code, 1);
    assert.equal(nowhere.stderr.trim(), "orderq: order no-such-order is not in the ledger, the DLQ or ORDERS (never accepted, or purged)");
  });
});

describe("metrics labels (issue 14)", function () {
  this.timeout(90_000);
  const fx = useServer();
  const cli = (args: string[]) => runCli([...args, "--server", fx.server.url]);

  it("count commits by source and dead-letters by source and reason, merged over a supervisor's workers", async () => {
    assert.equal((await cli(["topology", "ensure", "--max-deliver", "1"])).code, 0);
    assert.equal((await cli(["produce", "--count", "3", "--sources", "web=1", "--id-prefix", "w"])).code, 0);
    assert.equal((await cli(["produce", "--count", "2", "--sources", "mobile=1", "--id-prefix", "m"])).code, 0);
    assert.equal((await cli(["produce", "--count", "1", "--sources", "api=1", "--id-prefix", "p", "--poison-rate", "1"])).code, 0);
    // Not an order, on a subject no source names: its source is "unknown", not a series of its own.
    await jetstream(fx.nc).publish("orders.kiosk", "not json");

    const port = await freePort();
    const work = startCli(["work", "-p", "2", "--metrics-port", String(port), "--server", fx.server.url]);
    try {
      const m = await waitFor("a scrape with every order counted", async () => {
        const s = await scrape(port);
        return sumSeries(s, "orderq_orders_committed_total") === 5 && sumSeries(s, "orderq_orders_dead_lettered_total") === 2 ? s : undefined;
      });
      assert.equal(m.get('orderq_orders_committed_total{source="web"}'), 3);
      assert.equal(m.get('orderq_orders_committed_total{source="mobile"}'), 2);
      assert.equal(m.get('orderq_orders_dead_lettered_total{source="api",reason="max-deliveries"}'), 1);
      assert.equal(m.get('orderq_orders_dead_lettered_total{source="unknown",reason="invalid-payload"}'), 1);
      assert.equal(m.get('orderq_dlq_depth{reason="max-deliveries"}'), 1);
    } finally {
      work.child.kill("SIGTERM");
    }
    assert.equal((await work.done).code, 0);
  });
});
