"""Photos and documents on a ticket: from the operator, the department's liaison and the mayor's
mailbox. Checked by their content (not their name), limited in size and number, stored with a
SHA-256 checksum; shown to the staff who may see the ticket, never on the public pages."""
