/** The PostgreSQL launcher: a private cluster that survives kill -9, leaves nothing behind, and says clearly when it cannot exist. */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { EnvironmentError, describeFailure } from "../../src/core/base/errors.js";
import { findPostgresBinDir, PostgresServer } from "../../src/core/fleet/postgres-server.js";
import { usePostgres } from "../support/postgres.js";
import { descendants, isGone } from "../support/processes.js";
import { waitFor } from "../support/wait.js";

async function connect(url: string): Promise<pg.Client> {
  const client = new pg.Client(url);
  client.on("error", () => {}); // the server is killed under some of these clients
  await client.connect();
  return client;
}

async function setting(client: pg.Client, name: string): Promise<string> {
  const { rows } = await client.query<Record<string, string>>(`SHOW ${name}`);
  return rows[0][name];
}

describe("PostgreSQL launcher", function () {
  this.timeout(60_000);
  const db = usePostgres();

  it("serves a private cluster: loopback only, its socket in its own dir, fsync on, never port 5432", async () => {
    const { server } = db;
    assert.match(server.url, /^postgres:\/\/postgres@127\.0\.0\.1:\d+\/postgres$/);
    assert.notEqual(server.port, 5432);
    const client = await connect(server.url);
    try {
      assert.equal(await setting(client, "listen_addresses"), "127.0.0.1");
      assert.equal(await setting(client, "unix_socket_directories"), server.dir);
      assert.equal(await setting(client, "fsync"), "on");
      assert.equal(await setting(client, "data_directory"), server.dataDir);
    } finally {
      await client.end();
    }
    if (process.getuid?.() === 0) {
      // PostgreSQL refuses root: as root, the launcher runs it as the postgres OS user.
      const uid = readFileSync(`/proc/${server.pid}/status`, "utf8").match(/^Uid:\s+(\d+)/m)?.[1];
      assert.notEqual(uid, "0");
    }
  });

  it("keeps committed rows across kill -9 and a restart on the same data dir and port, and only those", async () => {
    const { server } = db;
    await db.pool.query("CREATE TABLE crash_test (id int PRIMARY KEY)");
    await db.pool.query("INSERT INTO crash_test VALUES (1)");
    const open = await connect(server.url);
    await open.query("BEGIN");
    await open.query("INSERT INTO crash_test VALUES (2)"); // never committed
    const postmaster = server.pid!;
    const children = descendants(postmaster);
    assert.ok(children.length > 0, "a running cluster has backends and background processes");
    const port = server.port;

    await server.kill();
    assert.equal(server.running, false);
    assert.deepEqual(
      [postmaster, ...children].filter((pid) => !isGone(pid)),
      [],
      "the postmaster and every child are gone",
    );

    const started = performance.now();
    await server.restart();
    const restartMs = performance.now() - started;
    assert.equal(server.port, port);
    const client = await connect(server.url);
    try {
      const { rows } = await client.query("SELECT id FROM crash_test ORDER BY id");
      assert.deepEqual(rows, [{ id: 1 }]);
    } finally {
      await client.end();
      await open.end().catch(() => {});
    }
    console.log(`      restart after kill -9 (crash recovery included): ${Math.round(restartMs)} ms`);
  });

  it("stop() shuts down cleanly and restart() serves the same data again", async () => {
    const { server } = db;
    await db.pool.query("CREATE TABLE stop_test AS SELECT 7 AS n");
    await server.stop();
    assert.equal(server.running, false);
    assert.match(readFileSync(server.logFile, "utf8"), /database system is shut down/);
    await server.restart();
    const client = await connect(server.url);
    try {
      assert.deepEqual((await client.query("SELECT n FROM stop_test")).rows, [{ n: 7 }]);
    } finally {
      await client.end();
    }
  });

  it("dispose() removes the temp dir and the processes, and may be called twice", async () => {
    const started = performance.now();
    const server = await PostgresServer.start();
    console.log(`      start: ${Math.round(performance.now() - started)} ms`);
    const pid = server.pid!;
    assert.ok(existsSync(join(server.dataDir, "PG_VERSION")));
    await server.dispose();
    await server.dispose();
    assert.equal(existsSync(server.dir), false);
    assert.ok(isGone(pid));
  });

  it("leaves no server and no temp dir behind when its process dies without dispose()", async () => {
    const launcher = new URL("../../src/core/fleet/postgres-server.ts", import.meta.url).href;
    const script = `
      import { execFileSync } from "node:child_process";
      import { PostgresServer } from ${JSON.stringify(launcher)};
      const server = await PostgresServer.start();
      const children = execFileSync("pgrep", ["-P", String(server.pid)], { encoding: "utf8" }).trim().split("\\n").map(Number);
      console.log(JSON.stringify({ pid: server.pid, children, dir: server.dir }));
      throw new Error("boom");`;
    const run = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
    });
    assert.match(run.stderr, /boom/);
    const { pid, children, dir } = JSON.parse(run.stdout) as { pid: number; children: number[]; dir: string };
    assert.ok(isGone(pid), "the postmaster is killed at exit");
    assert.equal(existsSync(dir), false);
    assert.ok(children.length > 0);
    // Its children notice the postmaster's death and exit on their own.
    await waitFor("the postmaster's children to exit", () => children.every(isGone), 10_000, 100);
  });

  it("fails at start, without taking it for its own, when its port is held by someone else", async () => {
    const other: Server = createServer(() => {});
    await new Promise<void>((resolve) => other.listen(0, "127.0.0.1", resolve));
    const port = (other.address() as { port: number }).port;
    try {
      await assert.rejects(PostgresServer.start({ port }), (err: Error) => {
        assert.ok(err instanceof EnvironmentError, String(err));
        assert.match(err.message, new RegExp(`postgres on port ${port} exited at start: .*could not (bind|create)`));
        return true;
      });
    } finally {
      other.close();
    }
  });

  it("names what to install when the binaries are missing (exit 3), before making anything", async () => {
    const empty = mkdtempSync(join(tmpdir(), "orderq-no-pg-"));
    try {
      assert.throws(
        () => findPostgresBinDir({ ORDERQ_PG_BIN: empty }),
        (err: Error) => {
          assert.ok(err instanceof EnvironmentError);
          assert.equal(describeFailure(err).exitCode, 3);
          assert.equal(
            err.message,
            `PostgreSQL not found (ORDERQ_PG_BIN=${empty} holds no executable initdb and postgres): install it (apt-get install postgresql) or set ORDERQ_PG_BIN to the directory holding initdb and postgres`,
          );
          return true;
        },
      );
      await assert.rejects(PostgresServer.start({ binDir: empty }), (err: Error) => {
        assert.ok(err instanceof EnvironmentError);
        assert.match(err.message, /^PostgreSQL not found .*apt-get install postgresql/);
        return true;
      });
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });
});
