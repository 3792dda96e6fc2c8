-- Listings by time (availability, programs of a day) must not scan the whole history.
CREATE INDEX slot_claims_slot ON slot_claims (slot_ms);
