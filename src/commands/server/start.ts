import { Flags } from "@oclif/core";
import { OrderqCommand } from "../../cli/base.js";
import { NatsCluster, NatsServer } from "../../core/fleet/nats-server.js";

export default class ServerStart extends OrderqCommand {
  static override summary = "Start a local nats-server (or a 3-node cluster) with JetStream, in the foreground until Ctrl-C.";
  static override examples = ["<%= config.bin %> server start --port 4333 --store ./nats-store", "<%= config.bin %> server start --cluster 3"];

  static override flags = {
    port: Flags.integer({ summary: "Client port (a free one when absent; the first node's in a cluster).", min: 1, max: 65535 }),
    store: Flags.string({ summary: "JetStream store directory (a temp dir, removed on exit, when absent)." }),
    cluster: Flags.integer({ summary: "Start a JetStream cluster of this many nodes (3 or 5).", min: 3, max: 5 }),
  };

  async run(): Promise<{ urls: string[]; stores: string[] }> {
    const { flags } = await this.parse(ServerStart);
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
    });
    await stoppable.dispose();
    return info;
  }
}
