"""Messages on a clock: canvas digests (seed 000), scheduled notifications (seed 004), and seed 003's
daily digest and morning call. Cron rows live in Postgres; each due time is delivered once."""
