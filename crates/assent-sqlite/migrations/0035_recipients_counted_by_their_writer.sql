-- Every recipient is recorded by one write path (crates/assent-sqlite/src/campaigns.rs,
-- add_recipients), which has counted what it records itself since 0031 and switched this
-- trigger off for its writes with campaign_counts_bulk. A trigger that is switched off
-- still runs for each row: SQLite enters its program to evaluate the WHEN, which was
-- about a sixth of a 1,000,000-recipient fan-out's insert. (The triggers on messages
-- stay: they count every later change of a message's status.)
DROP TRIGGER campaign_counts_recipient;
