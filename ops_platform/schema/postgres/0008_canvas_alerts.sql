-- Canvas alerts (seed 000): what the set-wise evaluation needs.

-- Evaluating a rule (last_value, last_evaluated_at, last_error, last_triggered_at) is not editing it:
-- updated_at moves only when the rule's definition changes, and a tick of 10 000 rules pays no trigger.
DROP TRIGGER alert_rules_touch ON alert_rules;
CREATE TRIGGER alert_rules_touch
    BEFORE UPDATE OF workspace_id, name, metric, aggregation, window_minutes, operator, threshold, cooldown_minutes,
                     severity, channels, recipients, enabled
    ON alert_rules FOR EACH ROW EXECUTE FUNCTION ops_touch_updated_at();

-- One series (metric, workspace) over a time window is one index range: the evaluation reads exactly
-- the points of each rule's window and nothing of other workspaces.
CREATE INDEX metric_points_series ON metric_points (metric, workspace_id, ts) INCLUDE (value);
