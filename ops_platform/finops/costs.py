"""Cost aggregation (seed 004 "Cost Aggregation", POST /v1/analytics/finops/aggregate): per tenant and day,
AI spend (ai_usage), infrastructure spend (infra_costs) and the tenant's daily AI budget of that day.

Set-wise in one statement over the days of the window: AI usage grouped by UTC day and tenant, full-joined
with the infrastructure bill lines, so a tenant with only one of the two still has its row. The budget
is the daily `ai_budgets` row whose period is that day, or the `ai_budget_history` row kept when that
day's period was reset; NULL when the tenant has no daily budget.
"""

from ops_platform.framework.asset_pages import columns

COST_SQL = """
WITH ai AS (
    SELECT (occurred_at AT TIME ZONE 'UTC')::date AS d, tenant, sum(cost_usd) AS cost, count(*) AS calls,
           sum(input_tokens + output_tokens) AS tokens
    FROM ai_usage WHERE occurred_at >= %(lo)s AND occurred_at < %(hi)s GROUP BY 1, 2
), infra AS (
    SELECT day AS d, tenant, sum(cost_usd) AS cost
    FROM infra_costs WHERE day >= %(lo)s::date AND day < %(hi)s::date GROUP BY 1, 2
)
SELECT d, tenant, coalesce(ai.cost, 0), coalesce(ai.calls, 0), coalesce(ai.tokens, 0), coalesce(infra.cost, 0),
       coalesce(ai.cost, 0) + coalesce(infra.cost, 0),
       (SELECT coalesce(h.limit_usd, CASE WHEN b.period_start = d THEN b.limit_usd END)
        FROM ai_budgets b LEFT JOIN ai_budget_history h ON h.budget_id = b.id AND h.period_start = d
        WHERE b.scope = tenant AND b.period = 'daily')
FROM ai FULL JOIN infra USING (d, tenant)
ORDER BY d, tenant
"""
COST_SCHEMA = columns(
    ("cost_date", "Date"), ("tenant", "LowCardinality(String)"), ("ai_cost_usd", "Decimal(14, 6)"),
    ("ai_calls", "Int64"), ("ai_tokens", "Int64"), ("infra_cost_usd", "Decimal(14, 4)"),
    ("total_cost_usd", "Decimal(16, 6)"), ("ai_daily_limit_usd", "Nullable(Decimal(12, 2))"))
COST_COLUMNS = [c.name for c in COST_SCHEMA.columns]
