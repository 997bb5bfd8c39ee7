/** The server under test: the user's (--server) or, by default, a nats-server of our own in a temp dir. */
import type { NatsConnection } from "@nats-io/transport-node";
import { connectNats, credentialEnv, type NatsOptions } from "../nats/connection.js";
import { NatsServer } from "../fleet/nats-server.js";

export interface Target {
  nc: NatsConnection;
  /**
   * Connected as `orderq produce` and `work` connect (write coalescing on), for produce and the
   * exactly-once floor; the other baselines use `nc`, as shipped.
   */
  hotNc: NatsConnection;
  url: string;
  /** Known only for our own server. */
  serverPid?: number;
  version: string;
  /** Environment of worker processes: the same credentials as ours. */
  workerEnv: NodeJS.ProcessEnv;
  close(): Promise<void>;
}

export async function openTarget(server: NatsOptions | undefined): Promise<Target> {
  // If this process exits early (Ctrl-C), exit-kill.ts kills our server and removes its store.
  const own = server ? undefined : await NatsServer.start();
  const options: NatsOptions = server ?? { server: own!.url };
  try {
    const nc = await connectNats({ ...options, name: "orderq bench" });
    const hotNc = await connectNats({ ...options, name: "orderq bench hot path", coalesceWrites: true });
    return {
      nc,
      hotNc,
      url: options.server,
      serverPid: own?.pid,
      version: nc.info?.version ?? "unknown",
      workerEnv: credentialEnv(options),
      close: async () => {
        await hotNc.close();
        await nc.close();
        await own?.dispose();
      },
    };
  } catch (err) {
    await own?.dispose();
    throw err;
  }
}
