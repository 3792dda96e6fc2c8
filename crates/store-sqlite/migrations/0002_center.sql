-- The center: reminders sent (so a restart neither loses nor repeats them), wrong-key
-- lockout per reservation, charge settlement month, operator-managed channels.
ALTER TABLE reservations ADD COLUMN confirm_reminder_sent_ms INTEGER;
ALTER TABLE reservations ADD COLUMN start_reminder_sent_ms INTEGER;
ALTER TABLE reservations ADD COLUMN extension_offer_sent_ms INTEGER;
ALTER TABLE reservations ADD COLUMN key_failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE reservations ADD COLUMN key_locked_until_ms INTEGER;
CREATE INDEX reservations_end ON reservations (end_ms);
CREATE INDEX charges_created ON charges (created_at_ms);
