-- The status a campaign had at a past moment comes from its campaign.status.changed events.
CREATE INDEX events_outbox_campaign_status ON events_outbox (((payload ->> 'campaign_id')::bigint), id)
    WHERE name = 'campaign.status.changed';

-- Status of campaign `campaign` at time `at`: the last change before `at`; before its first change,
-- that change's `from`; with no changes at all, its current status.
CREATE FUNCTION campaign_status_at(campaign bigint, current_status text, at timestamptz) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT coalesce(
        (SELECT payload ->> 'to' FROM events_outbox
          WHERE name = 'campaign.status.changed' AND (payload ->> 'campaign_id')::bigint = campaign AND created_at < at
          ORDER BY id DESC LIMIT 1),
        (SELECT payload ->> 'from' FROM events_outbox
          WHERE name = 'campaign.status.changed' AND (payload ->> 'campaign_id')::bigint = campaign
          ORDER BY id LIMIT 1),
        current_status)
$$;
