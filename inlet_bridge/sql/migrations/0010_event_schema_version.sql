-- The version of the shape each stored event was written in (inlet_bridge/domain/stored.py). Rows
-- stored before carry version 1, the shape they have. Additive: a constant default rewrites no
-- row, and code that does not know the column keeps inserting version 1 rows.

ALTER TABLE events ADD COLUMN schema_version smallint NOT NULL DEFAULT 1;
