import { Flags } from "@oclif/core";
import { OrderqCommand } from "../../cli/base.js";
import { stopDetached, type StopResult } from "../../core/fleet/detached-server.js";

export default class ServerStop extends OrderqCommand {
  static override summary = "Stop a nats-server started with `orderq server start --detach`, by its port or a pid file.";
  static override description =
    "SIGTERM, then SIGKILL after 5 s. A temp store that orderq made for the server is removed with it; a --store directory is kept. A port with no recorded server, or a pid that is not a running nats-server, is exit 2 and nothing is signalled.";
  static override examples = ["<%= config.bin %> server stop --port 4333", "<%= config.bin %> server stop --pid-file ./nats.pid"];

  static override flags = {
    port: Flags.integer({ summary: "Client port of the server to stop.", min: 1, max: 65535, exactlyOne: ["port", "pid-file"] }),
    "pid-file": Flags.string({
      summary: "File holding the pid of the server to stop (written by `server start --detach --pid-file`).",
      exactlyOne: ["port", "pid-file"],
    }),
  };

  async run(): Promise<StopResult> {
    const { flags } = await this.parse(ServerStop);
    const result = await stopDetached({ port: flags.port, pidFile: flags["pid-file"] });
    if (!this.jsonEnabled()) {
      this.log(
        `nats-server (pid ${result.pid}) stopped${result.graceful ? "" : " (killed: it did not exit within 5 s of SIGTERM)"}${result.removedStore ? `; removed its store ${result.removedStore}` : ""}`,
      );
    }
    return result;
  }
}
