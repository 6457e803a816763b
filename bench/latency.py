"""How long after a window ends does its SSE event reach a client? Real processes at real time (speed 1).

Baseline in the same run: how long after its second ends a raw reading reaches a plain MQTT subscriber (the meter
publishes a reading when its second has ended). The SSE figure adds the bridge's grace (FLEET_GRACE_S): a window is
final once the meter's stream has reached its end plus the grace (default: the bridge's, 0 s).

    python -m bench.latency [--broker amqtt|mosquitto] [--windows 12] [--interval 5] [--grace 0]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path

from config.settings import DEFAULT_GRACE_S
from config.wire import decode_reading, parse_ts
from tests.support.mqtt import Collector
from tests.support.procs import running, start_bridge, start_broker, start_meters
from tests.support.sse import SSEClient


def _summary(name: str, values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return (
        f"{name}: n={len(values)} median={statistics.median(values) * 1000:.0f} ms "
        f"p95={p95 * 1000:.0f} ms max={max(values) * 1000:.0f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--broker", choices=["amqtt", "mosquitto"], default="amqtt")
    parser.add_argument("--windows", type=int, default=12)
    parser.add_argument("--interval", type=int, default=5)
    parser.add_argument("--grace", type=int, default=DEFAULT_GRACE_S)
    args = parser.parse_args()
    logs = Path(tempfile.mkdtemp(prefix="bench-latency-"))
    broker = start_broker(args.broker, logs)
    bridge = start_bridge(broker.port or 0, logs, env={"FLEET_GRACE_S": str(args.grace)})
    meters = start_meters(broker.port or 0, ["A"], logs, speed=1.0)
    raw: list[float] = []
    with running(broker, bridge, meters):
        collector = Collector(broker.port or 0, ["meters/A/reading"])
        stop = threading.Event()

        def drain() -> None:
            while not stop.is_set():
                try:
                    msg = collector.wait_for(lambda m: True, timeout=0.5)
                except TimeoutError:
                    continue
                raw.append(time.time() - (decode_reading(msg.topic, msg.payload).ts + 1))

        thread = threading.Thread(target=drain, daemon=True)
        thread.start()
        client = SSEClient(
            bridge.port or 0, f"/stream_data?household=A&interval={args.interval}", timeout=args.interval * 4 + 10
        )
        sse: list[float] = []
        client.next_data_event()  # the newest finished window, sent at once: not a live measurement
        for _ in range(args.windows):
            event = client.next_data_event()
            sse.append(time.time() - parse_ts(str(event.json()["window_end"])))
        client.close()
        stop.set()
        thread.join(timeout=2)
        collector.close()
    print(f"broker={args.broker} interval={args.interval}s grace={args.grace}s speed=1")
    print(_summary("raw reading, end of second -> MQTT subscriber (baseline)", raw))
    print(_summary("window end -> SSE event at client", sse))
    print(
        f"SSE minus grace: median {(statistics.median(sse) - args.grace) * 1000:.0f} ms; "
        f"ratio to the baseline median: {(statistics.median(sse) - args.grace) / statistics.median(raw):.1f}x"
    )


if __name__ == "__main__":
    main()
