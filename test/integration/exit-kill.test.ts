/** A process that dies abruptly leaves no nats-server running and no temp store behind. */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { isGone } from "../support/processes.js";
import { waitFor } from "../support/wait.js";

const SERVER_JS = new URL("../../dist/core/fleet/nats-server.js", import.meta.url).href;

describe("exit hook", function () {
  this.timeout(60_000);

  it("kills the servers a process started and removes their stores when it exits without stopping them", async () => {
    // An uncaught error ends the process: no dispose() ever runs.
    const script = `
      import { NatsServer, NatsCluster } from ${JSON.stringify(SERVER_JS)};
      const one = await NatsServer.start();
      const cluster = await NatsCluster.start(3);
      console.log(JSON.stringify({ pids: [one.pid, ...cluster.servers.map((s) => s.pid)], dirs: [one.storeDir, ...cluster.servers.map((s) => s.storeDir)] }));
      throw new Error("boom");`;
    const run = spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    assert.notEqual(run.status, 0, "the script should have died");
    assert.match(run.stderr, /boom/);
    const { pids, dirs } = JSON.parse(run.stdout) as { pids: number[]; dirs: string[] };
    assert.equal(pids.length, 4);
    // SIGKILL is delivered, not awaited.
    await waitFor("the servers to be gone", () => pids.every(isGone), 5_000, 100).catch(() => undefined);
    assert.deepEqual(
      pids.filter((pid) => !isGone(pid)),
      [],
      "no nats-server left running",
    );
    assert.deepEqual(
      dirs.filter((d) => existsSync(d)),
      [],
      "no store left on disk",
    );
  });
});
