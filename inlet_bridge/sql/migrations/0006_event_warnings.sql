-- The warnings of an event's validation: the contact details (an invalid email or phone) dropped
-- from it before it was stored, as [{"path", "message"}], never the values. NULL when nothing was
-- dropped, and for the rows stored before this column. Nullable without a default: adding it
-- rewrites no row, and code that does not know it keeps inserting and reading as before.

ALTER TABLE events ADD COLUMN warnings jsonb;
