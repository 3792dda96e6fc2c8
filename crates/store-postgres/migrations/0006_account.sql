-- Whether a member's new programs show their e-mail address by default (the account page).
ALTER TABLE members ADD COLUMN show_email BOOLEAN NOT NULL DEFAULT FALSE;
