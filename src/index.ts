/**
 * What a handler module imports from orderq: `import { defineHandler, NonRetryableError } from "orderq"`.
 * The handler contract is described in the README ("Your handler") and in DESIGN.md.
 */
export { defineHandler, NonRetryableError, isNonRetryable } from "./core/pipeline/handler.js";
export type { DbClient, DbQuery, HandlerContext, Order, OrderHandler } from "./core/pipeline/handler.js";
