-- Inbound provider webhooks (seed 004 "Webhooks received", issue 12): each accepted event is written into
-- the events outbox once. `provider_key` is "<provider>:<the provider's own event id>" (Svix message id,
-- Twilio MessageSid:status, Benevity/Goodera event id, Workday nonce, Kintell message id); a retry or a
-- replay inside the signature's time window finds it and writes nothing. NULL for our own events.
ALTER TABLE events_outbox ADD COLUMN provider_key text;
CREATE UNIQUE INDEX events_outbox_provider_key ON events_outbox (provider_key) WHERE provider_key IS NOT NULL;
