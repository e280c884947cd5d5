-- The pending calls of one booking, by its key, for lock_bookings_pending_calls (a batch's
-- look-up, one booking at a time). Its predicate is written as that look-up writes it,
-- `coalesce(state, '') = 'pending'`, which no other index's `state = 'pending'` matches: with
-- statistics that counted no pending call, the planner answered each booking's look-up by
-- walking a whole index of pending calls (every entry a wave had left there until vacuum), and
-- without an index of its own the look-up read each booking's past calls. Additive: safe for a
-- rolling deploy (the previous release's statements never use it).

CREATE INDEX inlet_calls_pending_by_booking_idx ON inlet_calls (source, booking_id)
    WHERE coalesce(state, '') = 'pending';
