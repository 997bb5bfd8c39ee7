/** The server under test: the user's (--server) or, by default, a nats-server of our own in a temp dir. */
import { rmSync } from "node:fs";
import type { NatsConnection } from "@nats-io/transport-node";
import { connectNats, credentialEnv, type NatsOptions } from "../connection.js";
import { NatsServer } from "../server.js";

export interface Target {
  nc: NatsConnection;
  /** Connected as `orderq produce` connects (write coalescing on); the baselines use `nc`, as shipped. */
  producerNc: NatsConnection;
  url: string;
  /** Known only for our own server. */
  serverPid?: number;
  version: string;
  /** Environment of worker processes: the same credentials as ours. */
  workerEnv: NodeJS.ProcessEnv;
  close(): Promise<void>;
}

export async function openTarget(server: NatsOptions | undefined): Promise<Target> {
  const own = server ? undefined : await NatsServer.start();
  // server.ts kills our server if this process exits early (Ctrl-C); its store is large, remove it too.
  const removeStore = () => own && rmSync(own.storeDir, { recursive: true, force: true });
  process.on("exit", removeStore);
  const dispose = async () => {
    await own?.dispose();
    process.off("exit", removeStore);
  };
  const options: NatsOptions = server ?? { server: own!.url };
  try {
    const nc = await connectNats({ ...options, name: "orderq bench" });
    const producerNc = await connectNats({ ...options, name: "orderq bench producer", coalesceWrites: true });
    return {
      nc,
      producerNc,
      url: options.server,
      serverPid: own?.pid,
      version: nc.info?.version ?? "unknown",
      workerEnv: credentialEnv(options),
      close: async () => {
        await producerNc.close();
        await nc.close();
        await dispose();
      },
    };
  } catch (err) {
    await dispose();
    throw err;
  }
}
