"""The job framework of seed 003, written once: controls, audit, retries, dead letters."""
