import { Flags } from "@oclif/core";
import { OrderqCommand } from "../../cli/base.js";
import { InputError } from "../../core/base/errors.js";
import { startDetached } from "../../core/fleet/detached-server.js";
import { NatsCluster, NatsServer } from "../../core/fleet/nats-server.js";

export default class ServerStart extends OrderqCommand {
  static override summary = "Start a local nats-server (or a 3-node cluster) with JetStream: in the foreground until Ctrl-C, or --detach.";
  static override description =
    "With --detach the command returns once the server answers JetStream requests, prints the NATS_URL to export, and leaves the server running until `orderq server stop`. A port that is already taken is exit 3.";
  static override examples = [
    "<%= config.bin %> server start --detach --port 4333   # then: export NATS_URL=nats://127.0.0.1:4333",
    "<%= config.bin %> server stop --port 4333",
    "<%= config.bin %> server start --port 4333 --store ./nats-store",
    "<%= config.bin %> server start --cluster 3",
  ];

  static override flags = {
    port: Flags.integer({ summary: "Client port (a free one when absent; the first node's in a cluster).", min: 1, max: 65535 }),
    store: Flags.string({ summary: "JetStream store directory (a temp dir when absent, removed when the server stops)." }),
    cluster: Flags.integer({ summary: "Start a JetStream cluster of this many nodes (3 or 5).", min: 3, max: 5 }),
    detach: Flags.boolean({ summary: "Return once the server is ready and leave it running (stop it with `orderq server stop`)." }),
    "pid-file": Flags.string({ summary: "With --detach: also write the server's pid to this file.", dependsOn: ["detach"] }),
  };

  /**
   * --json: with --detach, the result is what oclif prints on return; in the foreground it is printed
   * at once (while the server runs, which is when it is of use) and nothing is returned, so that the
   * output stays one JSON document.
   */
  async run(): Promise<{ urls: string[]; stores: string[]; pid: number; stop: string } | undefined> {
    const { flags } = await this.parse(ServerStart);
    if (flags.detach) {
      if (flags.cluster) throw new InputError("--detach starts one server; --cluster runs in the foreground only");
      const s = await startDetached({ port: flags.port, store: flags.store, pidFile: flags["pid-file"] });
      const info = { urls: [s.url], stores: [s.store], pid: s.pid, stop: `orderq server stop --port ${s.port}` };
      if (!this.jsonEnabled()) {
        this.log(`nats-server ready at ${s.url} (pid ${s.pid}, store ${s.store})`);
        this.log(`export NATS_URL=${s.url}`);
        this.log(`# stop it with: orderq server stop --port ${s.port}${s.madeStore ? " (removes its temp store)" : ""}`);
      }
      return info;
    }
    const stoppable = flags.cluster
      ? await NatsCluster.start(flags.cluster, { baseDir: flags.store })
      : await NatsServer.start({ port: flags.port, storeDir: flags.store });
    const servers = stoppable instanceof NatsCluster ? stoppable.servers : [stoppable];
    const info = { urls: servers.map((s) => s.url), stores: servers.map((s) => s.storeDir) };
    if (this.jsonEnabled()) this.logJson(info);
    else {
      for (const s of servers) this.log(`nats-server ${s.name} ready at ${s.url} (store ${s.storeDir})`);
      this.log(`export NATS_URL=${info.urls.join(",")}   # Ctrl-C stops ${servers.length > 1 ? "them" : "it"}`);
    }
    await new Promise<void>((resolve) => {
      process.once("SIGINT", resolve);
      process.once("SIGTERM", resolve);
      // A shell's job control (`kill %1` on `npx …&`) may reach only a wrapper: a closed terminal
      // still ends the server.
      process.once("SIGHUP", resolve);
    });
    await stoppable.dispose();
    return undefined;
  }
}
