/** A process that dies abruptly leaves no nats-server running and no temp store behind. */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";

const SERVER_JS = new URL("../dist/core/server.js", import.meta.url).href;

/** Running: it exists and is not a zombie waiting for a reaper (that runs no code, holds no port). */
function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

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
    let out = "";
    try {
      execFileSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
      assert.fail("the script should have died");
    } catch (err) {
      out = (err as { stdout: string }).stdout;
    }
    const { pids, dirs } = JSON.parse(out) as { pids: number[]; dirs: string[] };
    assert.equal(pids.length, 4);
    for (let i = 0; i < 50 && pids.some(alive); i++) await sleep(100); // SIGKILL is delivered, not awaited
    assert.deepEqual(pids.filter(alive), [], "no nats-server left running");
    assert.deepEqual(dirs.filter((d) => existsSync(d)), [], "no store left on disk");
  });
});
