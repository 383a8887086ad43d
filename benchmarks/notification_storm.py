"""Notification storm benchmark: 10 000 triggered alerts delivered to a local HTTP receiver.

  ours   notify_requests: one run per batch of 500, run_keys from the dedup keys (what sensors emit)
  naive  one run per notification (measured on a sample of the same storm, then extrapolated)

Both execute their runs in this process (execute_in_process), which favours the naive way: under
the daemon every run is a new process (seconds each). Each message goes through the whole policy
layer (dedup claim, controls, routing, signed POST, status row). Afterwards the receiver's log is
checked: every dedup key exactly once, no loss, all signatures valid. The first batch is then run a
second time (a crash-and-rerun) and must deliver nothing new.

    .venv/bin/python benchmarks/notification_storm.py [--alerts 10000] [--naive-sample 200]
"""

from __future__ import annotations

import argparse
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dagster as dg
from scratch import scratch_platform

from ops_platform.jobs.notifications import notify_job, notify_requests
from ops_platform.notifications import Notification, NotifierResource, Severity
from ops_platform.notifications.channels import SIGNATURE_HEADER, verify
from ops_platform.notifications.transports import ChannelsResource

SECRET = "storm-benchmark-secret"


class CountingReceiver:
    """A webhook endpoint on 127.0.0.1 that verifies signatures and counts dedup keys."""

    def __init__(self):
        self.keys: Counter[str] = Counter()
        self.bad_signatures = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if not verify(SECRET, body, self.headers.get(SIGNATURE_HEADER, "")):
                    receiver.bad_signatures += 1
                receiver.keys[self.headers["X-Ops-Dedup-Key"]] += 1
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"


def storm(prefix: str, count: int) -> list[Notification]:
    return [Notification(type="canvas_alert", severity=Severity.WARN, title=f"rule {i} crossed its threshold",
                         body="value 97.5 > 90 over 5 minutes", dedup_key=f"{prefix}:{i:06}") for i in range(count)]


def run_all(requests: list[dg.RunRequest], instance: dg.DagsterInstance, resources: dict) -> float:
    started = time.perf_counter()
    for request in requests:
        quiet = request.run_config | {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
        assert notify_job.execute_in_process(run_config=quiet, instance=instance, resources=resources).success
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--alerts", type=int, default=10_000)
    parser.add_argument("--naive-sample", type=int, default=200)
    args = parser.parse_args()
    receiver = CountingReceiver()
    routes = {severity: ["webhook"] for severity in ("SEV0", "SEV1", "WARN", "INFO")}
    with scratch_platform() as (_, postgres), dg.instance_for_test() as instance:
        channels = ChannelsResource(webhook_url=receiver.url, webhook_secret=SECRET)
        resources = {"notifier": NotifierResource(postgres=postgres, channels=channels, routes=routes, group_over=0)}

        ours = storm("ours", args.alerts)
        requests = notify_requests("storm", ours)
        ours_seconds = run_all(requests, instance, resources)
        rerun_seconds = run_all(requests[:1], instance, resources)

        sample = storm("naive", args.naive_sample)
        naive_requests = [r for m in sample for r in notify_requests("naive", [m])]
        naive_seconds = run_all(naive_requests, instance, resources)

    delivered = {k: n for k, n in receiver.keys.items() if k.startswith("ours:")}
    duplicates = sum(n - 1 for n in delivered.values())
    lost = args.alerts - len(delivered)
    ours_rate = args.alerts / ours_seconds
    naive_rate = args.naive_sample / naive_seconds
    print(f"storm of {args.alerts} alerts, signed webhook on 127.0.0.1, each through the full policy layer")
    print(f"  ours : {len(requests)} runs of ≤500 in {ours_seconds:.1f} s = {ours_rate:,.0f} notifications/s")
    print(f"         delivered {len(delivered)}, duplicates {duplicates}, lost {lost}, "
          f"bad signatures {receiver.bad_signatures}; rerun of batch 1: {rerun_seconds:.1f} s, nothing resent")
    print(f"  naive: one run per notification, {args.naive_sample} runs in {naive_seconds:.1f} s = "
          f"{naive_rate:,.1f} notifications/s → {args.alerts / naive_rate / 60:.1f} min for the storm (extrapolated)")
    print(f"  ratio: ours is {ours_rate / naive_rate:.0f}× the naive rate")
    assert duplicates == 0 and lost == 0 and receiver.bad_signatures == 0


if __name__ == "__main__":
    main()
