"""The dashboard (``GET /``) in headless Chromium against a real fleet: amqtt, meters A, B, C (classic, 60x), bridge.

Chromium runs the page with ``?selftest=K``: each panel closes its stream once it has replayed the last hour and seen
K live windows, so ``--dump-dom`` returns (see ``tests.support.chromium``). Two runs:
1. live: the page receives windows as they are finalised; cards take their level's colour, charts get ink;
2. frozen: the meters are stopped, so history and quick statistics no longer change, and the test fetches the page's
   last window itself from ``/stream_data``: same level, same values; the screenshot shows the same colours.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import urllib.request
from pathlib import Path

import pytest
from PIL import Image

from config.settings import DEFAULT_GRACE_S, parse_time_of_day
from config.wire import parse_ts
from tests.conftest import require_chromium
from tests.support.chromium import Element, console_messages, parse_dom, render
from tests.support.dashboard import HOUSEHOLDS, WINDOW, page_url, wait_for_history
from tests.support.procs import Proc, start_bridge, start_broker, start_meters
from tests.support.sse import SSEClient

pytestmark = [pytest.mark.integration, pytest.mark.chromium]

SPEED = 60.0
START_AT = "05:57:00"  # household A's geyser switches on at 06:00: its Overall more than doubles
START_S = parse_time_of_day(START_AT)
READY_AT_S = 6 * 3600 + 3 * 60  # the live run starts once A's history reaches 06:03:00
LIVE_INTERVAL_S = 5
FROZEN_INTERVAL_S = 15  # not asked for before the freeze: its statistics are computed once, from the final history
RGB = {"Green": (76, 175, 80), "Yellow": (255, 235, 59), "Red": (244, 67, 54)}
GRACE_S = DEFAULT_GRACE_S  # the bridge's FLEET_GRACE_S: a window is final once its meter is this far past its end
CARD_MIN_PIXELS = 30_000  # a card is 250 px wide and over 200 px high; the legend chips are about 1,200 px each


def _get_json(port: int, path: str) -> dict[str, object]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Accept": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        body = json.loads(response.read())
    assert isinstance(body, dict)
    return body


def _wait_offline(bridge: Proc, households: tuple[str, ...], timeout_s: float = 20.0) -> dict[str, dict[str, object]]:
    """Poll the page's own endpoint until every meter is offline (its last reading is in); waits on the bridge."""
    for _ in range(int(timeout_s / 0.1)):
        rows = _get_json(bridge.port or 0, "/dashboard/households")["households"]
        assert isinstance(rows, list)
        by_id = {str(row["household"]): row for row in rows}
        if all(by_id[h]["status"] == "offline" for h in households):
            return by_id
        with contextlib.suppress(subprocess.TimeoutExpired):  # waiting on the bridge process: returns if it dies
            bridge.popen.wait(timeout=0.1)
        assert bridge.alive(), bridge.log()[-3000:]
    raise AssertionError(f"meters {households} not offline within {timeout_s} s")


def _server_window(port: int, household: str, interval_s: int, window_end: str) -> dict[str, object]:
    """The window ending at ``window_end`` as the bridge streams it now (resume right after the window before)."""
    end = parse_ts(window_end)
    client = SSEClient(
        port, f"/stream_data?household={household}&interval={interval_s}&last_event_id={end - interval_s}&pace=none"
    )
    try:
        event = client.next_data_event()
    finally:
        client.close()
    assert event.id == str(end)
    return event.json()


def _panels(dom: Element) -> dict[str, Element]:
    html = dom.find("html")
    assert html.attrs.get("data-selftest") == "done", html.attrs
    assert html.attrs.get("data-panels") == str(len(HOUSEHOLDS))
    panels = {panel.attrs["data-household"]: panel for panel in dom.find("main").find_all("article", cls="panel")}
    assert list(panels) == list(HOUSEHOLDS)
    return panels


def _check_panel(household: str, panel: Element, interval_s: int) -> Element:
    """Heading, card and chart of one panel as the page left them; returns the card."""
    title = panel.find("h2")
    assert title.text.startswith(f"Household {household}")
    assert panel.attrs["aria-labelledby"] == title.attrs["id"]
    card = panel.find(cls="card")
    assert card.attrs["aria-live"] == "polite"
    assert int(card.attrs["data-events-received"]) >= 2
    level = card.attrs["data-level"]
    assert level in RGB, card.attrs
    assert card.attrs["data-background"] == "rgb({}, {}, {})".format(*RGB[level])
    assert f"level-{level.lower()}" in card.attrs["class"].split()
    text = " ".join(card.text.split())
    assert text.startswith(f"House {household} ")
    assert f"Level: {level}" in text
    canvas = panel.find("canvas")
    points = int(canvas.attrs["data-points"])
    assert 2 <= points <= 3600 // interval_s + 1, canvas.attrs
    overall_ink, geyser_ink, ac_ink = (int(n) for n in canvas.attrs["data-ink"].split(","))
    assert overall_ink > 50, canvas.attrs  # the Overall line is on the canvas, not only in a counter
    assert ac_ink + geyser_ink > 50, canvas.attrs
    assert f"{interval_s} s windows" in canvas.attrs["aria-label"]
    return card


def _card_values(card: Element) -> dict[str, str]:
    return {cell.attrs["data-channel"]: cell.text.strip() for cell in card.find_all("dd")}


def _expected_text(value: object) -> str:
    return "no value" if value is None else f"{value:.3f} kW"


def _count_colours(path: Path) -> dict[str, int]:
    """Pixels of each level colour in the screenshot."""
    with Image.open(path) as image:
        colours = image.convert("RGB").getcolors(maxcolors=1 << 24) or []
    counts = dict.fromkeys(RGB, 0)
    for count, rgb in colours:
        for level, wanted in RGB.items():
            if rgb == wanted:
                counts[level] += count
    return counts


def test_dashboard_live_in_headless_chromium(tmp_path: Path) -> None:
    """Cards and charts follow the SSE stream, live and after the fact, and agree with the bridge window by window."""
    require_chromium()
    logs = tmp_path / "logs"
    env = {"FLEET_DATA_DIR": str(tmp_path / "data"), "FLEET_SPEED": str(SPEED)}
    broker = start_broker("amqtt", logs)
    bridge = meters = None
    try:
        bridge = start_bridge(broker.port or 0, logs, env=env)
        port = bridge.port or 0
        meters = start_meters(broker.port or 0, list(HOUSEHOLDS), logs, speed=SPEED, start_at=START_AT)
        wait_for_history(port, "A", START_S, READY_AT_S)

        live = render(page_url(port, HOUSEHOLDS, LIVE_INTERVAL_S, selftest=1), window=WINDOW)
        for household, panel in _panels(parse_dom(live.dom)).items():
            card = _check_panel(household, panel, LIVE_INTERVAL_S)
            assert parse_ts(card.attrs["data-window-end"]) % 86_400 >= READY_AT_S
        assert console_messages(live.stderr) == []  # no uncaught error, no CSP violation

        assert meters.stop() == 0, meters.log()[-3000:]  # from here on nothing changes: history, statistics, colours
        rows = _wait_offline(bridge, HOUSEHOLDS)
        shot = tmp_path / "dashboard.png"
        frozen = render(page_url(port, HOUSEHOLDS, FROZEN_INTERVAL_S, selftest=0), screenshot=shot, window=WINDOW)
        print(f"\ndashboard screenshot: {shot}")
        assert console_messages(frozen.stderr) == []
        levels = []
        for household, panel in _panels(parse_dom(frozen.dom)).items():
            card = _check_panel(household, panel, FROZEN_INTERVAL_S)
            window_end = card.attrs["data-window-end"]
            now_s = rows[household]["now_s"]
            assert isinstance(now_s, int)
            assert parse_ts(window_end) + FROZEN_INTERVAL_S > now_s - GRACE_S  # the newest final window: caught up
            server = _server_window(port, household, FROZEN_INTERVAL_S, window_end)
            assert server["window_end"] == window_end
            assert card.attrs["data-level"] == server["level"], (household, server)
            assert _card_values(card) == {key: _expected_text(server[key]) for key in ("Overall", "AC", "Geyser")}
            levels.append(str(server["level"]))

        counts = _count_colours(shot)
        for level in RGB:
            cards = levels.count(level)
            if cards:
                assert counts[level] >= cards * CARD_MIN_PIXELS, (level, counts, levels)
            else:
                assert counts[level] < CARD_MIN_PIXELS // 2, (level, counts, levels)
    finally:
        stopped = [(proc, proc.stop()) for proc in (meters, bridge, broker) if proc is not None]
        for proc, code in stopped:
            assert code == 0, f"{proc.name} exited with {code}:\n{proc.log()[-3000:]}"
