-- Whether a member's new programs show their e-mail address by default (the account page).
ALTER TABLE members ADD COLUMN show_email INTEGER NOT NULL DEFAULT 0;
