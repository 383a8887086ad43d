-- Whether a failed webhook attempt may succeed if repeated is a column, not a phrase in its error.
ALTER TABLE webhook_deliveries ADD COLUMN retryable boolean;  -- NULL: the attempt succeeded
UPDATE webhook_deliveries
SET retryable = NOT (coalesce(error, '') LIKE '%%(not retried)'
                     OR (status_code IS NOT NULL AND status_code NOT IN (408, 425, 429) AND status_code < 500))
WHERE NOT success;
