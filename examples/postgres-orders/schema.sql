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

-- Units on hand per SKU. An order for an SKU not listed here adds it with a negative count (a
-- backorder) rather than failing: orders for new products must still be processed.
CREATE TABLE IF NOT EXISTS stock (
  sku     text PRIMARY KEY,
  on_hand bigint NOT NULL
);

-- The SKUs `orderq produce` generates, with enough units for long chaos and bench runs.
INSERT INTO stock (sku, on_hand)
SELECT sku, 1000000
FROM unnest(ARRAY['book-001', 'lamp-204', 'mug-330', 'pen-017', 'desk-900', 'sock-123', 'cable-450', 'tea-077']) AS sku
ON CONFLICT (sku) DO NOTHING;
