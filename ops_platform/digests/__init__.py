"""Canvas digests (seed 000): each digest row's own cron says when it is due; its `include` says what it holds."""
