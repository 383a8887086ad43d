"""Seed 004 FinOps cost aggregation: per tenant and day in ClickHouse, from real Postgres usage and bill rows."""

from datetime import UTC, datetime
from decimal import Decimal

import dagster as dg
from helpers import sql

from ops_platform.assets.finops import cost_daily


def test_cost_per_tenant_and_day_with_its_budget_and_a_rerun_replaces_the_day(postgres, warehouse, instance):
    day = datetime(2026, 6, 1, tzinfo=UTC)
    sql(postgres, "INSERT INTO ai_usage (tenant, model, input_tokens, output_tokens, cost_usd, occurred_at) VALUES "
                  "('acme', 'm', 100, 50, 0.25, :a), ('acme', 'm', 10, 5, 0.50, :b), "
                  "('acme', 'm', 1, 1, 9.00, :next_day), ('globex', 'm', 7, 3, 1.00, :a)",
        a=day.replace(hour=1), b=day.replace(hour=23, minute=59), next_day=day.replace(day=2))
    sql(postgres, "INSERT INTO infra_costs (day, tenant, service, cost_usd) VALUES "
                  "('2026-06-01', 'acme', 'compute', 3.5), ('2026-06-01', 'acme', 'storage', 0.5), "
                  "('2026-06-01', 'initech', 'compute', 2), ('2026-05-31', 'acme', 'compute', 100)")
    sql(postgres, "INSERT INTO ai_budgets (scope, period, limit_usd, spent_usd, period_start) VALUES "
                  "('acme', 'daily', 20, 0, '2026-06-02')")
    sql(postgres, "INSERT INTO ai_budget_history (budget_id, period_start, limit_usd, spent_usd) VALUES (1, '2026-06-01', 15, 0.75)")
    resources = {"postgres": postgres, "warehouse": warehouse}
    dg.materialize([cost_daily], partition_key="2026-06-01", resources=resources, instance=instance)

    def rows():
        with warehouse.client() as ch:
            return ch.query("SELECT tenant, ai_cost_usd, ai_calls, ai_tokens, infra_cost_usd, total_cost_usd, "
                            "ai_daily_limit_usd FROM cost_daily WHERE cost_date = '2026-06-01' ORDER BY tenant").result_rows

    assert rows() == [
        ("acme", Decimal("0.75"), 2, 165, Decimal("4"), Decimal("4.75"), Decimal("15")),  # the day's budget from history
        ("globex", Decimal("1"), 1, 10, Decimal("0"), Decimal("1"), None),
        ("initech", Decimal("0"), 0, 0, Decimal("2"), Decimal("2"), None),  # infrastructure only
    ]
    sql(postgres, "DELETE FROM infra_costs WHERE tenant = 'initech'")
    dg.materialize([cost_daily], partition_key="2026-06-01", resources=resources, instance=instance)
    assert [r[0] for r in rows()] == ["acme", "globex"]  # the day replaced, not appended to
