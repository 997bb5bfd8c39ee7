/**
 * The gateway's fastify schema compilers: fastify-type-provider-zod's, with a fast path for the one
 * request and the one answer on the hot path (`POST /orders` and its 202). The route schemas stay zod
 * schemas, so they still generate the OpenAPI document and still decide (and name the field at fault)
 * whenever the fast path does not accept a value outright.
 */
import type { FastifySchemaCompiler, FastifySerializerCompiler } from "fastify";
import { serializerCompiler as zodSerializerCompiler, validatorCompiler as zodValidatorCompiler } from "fastify-type-provider-zod";
import type { z } from "zod";
import { isPlainValidOrder, orderSchema, type Order } from "../pipeline/order.js";
import type { AcceptedBody } from "./key-store.js";

/**
 * Validators of the route schemas. For the order body, isPlainValidOrder first: zod's safeParse of an
 * order was the largest single item of the gateway's CPU per request; the check accepts only what the
 * schema accepts as it is (pipeline/order.ts), and anything else goes to zod, which decides and names
 * the field. For the headers of `POST /orders`, whose schema asks only that Idempotency-Key be a string
 * when present, that test itself.
 */
export function validatorCompiler(ids: { headers: unknown }): FastifySchemaCompiler<z.ZodType> {
  return (route) => {
    const zod = zodValidatorCompiler(route);
    if (route.schema === orderSchema) return (data: unknown) => (isPlainValidOrder(data) ? { value: inSchemaOrder(data) } : zod(data));
    if (route.schema === ids.headers) {
      return (data: unknown) => {
        const key = (data as Record<string, unknown>)["idempotency-key"];
        return key === undefined || typeof key === "string" ? { value: data } : zod(data);
      };
    }
    return zod;
  };
}

/**
 * A plain order with its members in the schema's order, as zod's parse returns it: the gateway
 * publishes the validated order's JSON (README, "What a 202 stores"), whatever order the client wrote.
 */
function inSchemaOrder(o: Order): Order {
  const items = o.items.map((i) => ({ sku: i.sku, qty: i.qty, price: i.price }));
  const order = { id: o.id, source: o.source, items, amount: o.amount, createdAt: o.createdAt };
  return o.simulate === undefined ? order : { ...order, simulate: o.simulate };
}

/**
 * Serializers of the answers. For the 202 (`accepted`, the schema of AcceptedBody), the body written out
 * by hand: the zod serializer parses the answer against its schema (a copy of it) and then calls
 * JSON.stringify. Both of its values come from a PubAck or the key store's record of one; a body whose
 * seq is not an integer goes to the zod serializer, which refuses it as before.
 */
export function serializerCompiler(accepted: unknown): FastifySerializerCompiler<z.ZodType> {
  return (route) => {
    const zod = zodSerializerCompiler(route);
    if (route.schema !== accepted) return zod;
    return (data: unknown) => {
      const body = data as AcceptedBody;
      if (!Number.isSafeInteger(body.seq) || typeof body.id !== "string" || typeof body.stream !== "string") return zod(data);
      return `{"id":${JSON.stringify(body.id)},"seq":${body.seq},"stream":${JSON.stringify(body.stream)}}`;
    };
  };
}
