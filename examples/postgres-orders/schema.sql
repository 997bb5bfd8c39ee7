-- The example's own tables: what its handler changes. orderq's inbox table is created separately
-- (`orderq topology ensure --inbox …`). Safe to run again: nothing is dropped or re-seeded.

-- One row per processed order. The primary key makes a second insert of one order an error, which
-- the inbox never lets happen: it is a second line of defence, not the mechanism.
CREATE TABLE IF NOT EXISTS orders (
  id         text PRIMARY KEY,
  source     text NOT NULL,
  items      jsonb NOT NULL,           -- [{ "sku": "mug-330", "qty": 2, "price": 12.5 }, …]
  amount     numeric(12, 2) NOT NULL,
  created_at timestamptz NOT NULL,     -- the order's createdAt
  stored_at  timestamptz NOT NULL DEFAULT now()
);

-- Every change of stock, appended, never updated: units in (a delivery, the seed below) are positive,
-- units out (an order's items) negative. Orders only ever add rows here, so two orders for the same
-- SKU never wait for each other's row lock, and many orders can commit in one transaction without
-- deadlocking. `order_id` is the order that took the units (NULL for other movements).
CREATE TABLE IF NOT EXISTS stock_movements (
  order_id text,
  sku      text NOT NULL,
  qty      bigint NOT NULL,
  at       timestamptz NOT NULL DEFAULT now()
);

-- Units on hand per SKU: the sum of its movements (negative: backordered). A shop with years of
-- movements would roll old ones up into one row per SKU now and then; the sum stays the same.
CREATE OR REPLACE VIEW stock AS
SELECT sku, sum(qty)::bigint AS on_hand FROM stock_movements GROUP BY sku;

-- The SKUs `orderq produce` generates, with enough units for long chaos and bench runs: a first
-- delivery into stock for each SKU that has none yet.
INSERT INTO stock_movements (sku, qty)
SELECT s.sku, 1000000
FROM unnest(ARRAY['book-001', 'lamp-204', 'mug-330', 'pen-017', 'desk-900', 'sock-123', 'cable-450', 'tea-077']) AS s(sku)
WHERE NOT EXISTS (SELECT 1 FROM stock_movements m WHERE m.sku = s.sku);
