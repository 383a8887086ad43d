-- Providers' delivery-status webhooks applied to what we sent (issue 12): Resend's email.* events on the
-- email_deliveries row of that provider id, Twilio's MessageStatus callbacks on the SMS they describe.

-- What the provider last said happened to the email after we handed it over (email.delivered, email.bounced,
-- …: the part after "email."), when it said so, and its reason (a bounce's message).
ALTER TABLE email_deliveries ADD COLUMN delivery_status text,
                             ADD COLUMN delivery_status_at timestamptz,
                             ADD COLUMN delivery_detail text;
CREATE INDEX email_deliveries_provider_id ON email_deliveries (provider_id) WHERE provider_id IS NOT NULL;

-- One row per SMS Twilio accepted (its Message SID, from the send's answer), one per recipient number;
-- `status` follows the status callbacks (queued → sent → delivered | undelivered | failed).
CREATE TABLE sms_deliveries (
    message_sid      text PRIMARY KEY,
    notification_id  bigint NOT NULL,
    to_number        text NOT NULL,
    status           text NOT NULL,
    error_code       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sms_deliveries_notification ON sms_deliveries (notification_id);
CREATE TRIGGER sms_deliveries_touch BEFORE UPDATE ON sms_deliveries
    FOR EACH ROW EXECUTE FUNCTION ops_touch_updated_at();
