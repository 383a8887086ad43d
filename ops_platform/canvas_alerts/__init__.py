"""Canvas alerts (seed 000): metric registry and set-wise rule evaluation."""
