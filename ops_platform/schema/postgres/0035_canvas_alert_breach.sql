-- Canvas alerts notify on crossing, not on every cooldown (issue 12, seed 000): a rule remembers whether it
-- is in breach. Crossing into breach fires it (last_triggered_at, as before) and sets `breached`; while it
-- stays in breach nothing more is sent; when its value clears, one "resolved" message and `breached` off.
ALTER TABLE alert_rules ADD COLUMN breached boolean NOT NULL DEFAULT false,
                        ADD COLUMN last_resolved_at timestamptz;
