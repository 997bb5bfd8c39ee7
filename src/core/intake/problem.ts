/**
 * RFC 9457 problem details, the body of every error the gateway answers (`application/problem+json`).
 * Each kind of problem has a `type` URI of its own (a URN: nothing to dereference), so a client can
 * branch on it rather than on the title.
 */
import { z } from "zod";

/** One field at fault: a JSON pointer into the request body (RFC 6901) and, as orderq logs it, a dotted path. */
export interface FieldProblem {
  pointer: string;
  path: string;
  detail: string;
}

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  /** The fields at fault, for a 400 about the order. */
  errors?: FieldProblem[];
}

export const PROBLEM_CONTENT_TYPE = "application/problem+json";

/** The kinds of problems, by `type`: title and status. */
export const PROBLEMS = {
  "invalid-order": { title: "The order is not valid", status: 400 },
  "invalid-json": { title: "The body is not valid JSON", status: 400 },
  "invalid-idempotency-key": { title: "The Idempotency-Key header is not valid", status: 400 },
  "key-mismatch": { title: "The Idempotency-Key header and the order id differ", status: 400 },
  unauthorized: { title: "A valid bearer token is needed", status: 401 },
  "not-found": { title: "Not found", status: 404 },
  "request-in-flight": { title: "A request with this idempotency key is still being processed", status: 409 },
  "payload-too-large": { title: "The body is too large", status: 413 },
  "unsupported-media-type": { title: "The body must be application/json", status: 415 },
  "key-reused": { title: "The idempotency key was used with another payload", status: 422 },
  unavailable: { title: "JetStream is not answering", status: 503 },
  "bad-request": { title: "Bad request", status: 400 },
  internal: { title: "Internal error", status: 500 },
} as const;

export type ProblemKind = keyof typeof PROBLEMS;

export function problem(kind: ProblemKind, detail: string, errors?: FieldProblem[]): Problem {
  const { title, status } = PROBLEMS[kind];
  return { type: `urn:orderq:problem:${kind}`, title, status, detail, ...(errors ? { errors } : {}) };
}

/** A field path as zod gives it → pointer and dotted path ("(root)" for the body itself, as parseOrder says). */
export function fieldProblem(path: ReadonlyArray<PropertyKey>, detail: string): FieldProblem {
  const parts = path.map(String);
  const pointer = `#${parts.map((p) => `/${p.replace(/~/g, "~0").replace(/\//g, "~1")}`).join("")}`;
  return { pointer, path: parts.length ? parts.join(".") : "(root)", detail };
}

/** The schema of a problem, for the OpenAPI document. */
export const problemSchema = z
  .looseObject({
    type: z.string().describe("A URN naming the kind of problem, e.g. urn:orderq:problem:invalid-order."),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
    errors: z.array(z.object({ pointer: z.string(), path: z.string(), detail: z.string() })).optional(),
  })
  .describe("RFC 9457 problem details");
