/** Connecting to the team's PostgreSQL: one pool per process, and failures as one line without secrets. */
import pg from "pg";
import { EnvironmentError, errorMessage, InputError } from "../base/errors.js";

/** The variable that carries the inbox URL to worker processes: never their arguments, which `ps` shows. */
export const INBOX_URL_ENV = "ORDERQ_INBOX_URL";

/**
 * `host:port/database` of a postgres:// URL, for messages: never the user name or the password.
 * Throws InputError when `url` is not a postgres:// or postgresql:// URL.
 */
export function describeInboxUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new InputError("--inbox: not a URL (expected postgres://user@host:port/database)");
  }
  if (parsed.protocol !== "postgres:" && parsed.protocol !== "postgresql:") {
    throw new InputError(`--inbox: ${parsed.protocol}// is not postgres:// (expected postgres://user@host:port/database)`);
  }
  return `${parsed.hostname || "localhost"}:${parsed.port || 5432}${parsed.pathname || "/"}`;
}

/**
 * A pool of at most `max` connections to `url`, once one connection has been made. Throws
 * InputError for a malformed URL and EnvironmentError (exit 3) when the database cannot be reached
 * or refuses the login; the message names host, port and database, never the credentials.
 */
export async function openInboxPool(url: string, max: number): Promise<pg.Pool> {
  const where = describeInboxUrl(url);
  const pool = new pg.Pool({ connectionString: url, max, connectionTimeoutMillis: 10_000 });
  // An idle pooled connection that dies (the database restarted) must not crash the process: the
  // next query on the pool gets a new connection.
  pool.on("error", () => undefined);
  try {
    const client = await pool.connect();
    client.release();
  } catch (err) {
    await pool.end().catch(() => undefined);
    const unreachable = UNREACHABLE.includes((err as { code?: string }).code ?? "");
    throw new EnvironmentError(
      `inbox database ${where} ${unreachable ? "cannot be reached" : "refused the connection"}: ${withoutSecrets(errorMessage(err), url)}`,
    );
  }
  return pool;
}

/** Socket errors of a database that was never reached (anything else: it answered, and said no). */
const UNREACHABLE = ["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "ETIMEDOUT", "EHOSTUNREACH", "ECONNRESET"];

/** The driver's messages can quote the connection string; a password must never reach a log. */
function withoutSecrets(message: string, url: string): string {
  const password = URL.canParse(url) ? decodeURIComponent(new URL(url).password) : "";
  return password ? message.split(password).join("***") : message;
}
