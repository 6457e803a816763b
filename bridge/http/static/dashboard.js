/* Live dashboard of the smart-meter fleet bridge: one panel per household (a card like the Android widget and a chart
 * of the last hour), fed by GET /stream_data (Server-Sent Events). Plain JavaScript, no library, nothing from another
 * origin. Data from the server reaches the DOM only through textContent, attributes and the canvas, never as HTML.
 *
 * Query parameters: household (repeatable), interval (whole seconds); selftest=K closes each stream once it has
 * replayed the last hour and received K live windows, then marks <html data-selftest="done"> (for headless tests).
 */
"use strict";

(() => {
  const SERIES = [
    { key: "Overall", colour: "#1f1f1f", width: 2.25, dash: [], fill: "rgba(31, 31, 31, 0.07)" },
    { key: "Geyser", colour: "#c75000", width: 1.75, dash: [7, 4], fill: null },
    { key: "AC", colour: "#0069a8", width: 1.75, dash: [], fill: null },
  ];
  const LEVELS = ["Green", "Yellow", "Red"];
  const MAX_INTERVAL_S = 86400;
  const RETRY_MIN_MS = 3000;
  const RETRY_MAX_MS = 30000;
  const X_TICK_STEPS_S = [60, 300, 600, 900, 1800, 3600, 7200, 21600];

  const params = new URLSearchParams(window.location.search);
  const selftest = parseWhole(params.get("selftest"), 0, 1000);
  const root = document.documentElement;

  let config = null; // GET dashboard/households
  let panels = [];
  let restarts = 0; // a newer restart() supersedes an older one still waiting for the server
  let selection = { households: [], interval: 5 };
  let timeFormat = null;
  let tickFormat = null;
  let zone = "UTC"; // the zone times are shown in: the bridge's FLEET_TZ if this browser knows it

  function parseWhole(text, min, max) {
    if (text === null || !/^\s*\d{1,6}\s*$/.test(text)) return null;
    const value = Number(text);
    return value >= min && value <= max ? value : null;
  }

  function formatKw(value) {
    return value === null ? "no value" : `${value.toFixed(3)} kW`;
  }

  function makeFormats(tz) {
    const options = { hour: "2-digit", minute: "2-digit", hourCycle: "h23" };
    try {
      timeFormat = new Intl.DateTimeFormat("en-GB", { ...options, second: "2-digit", timeZone: tz });
      tickFormat = new Intl.DateTimeFormat("en-GB", { ...options, timeZone: tz });
      zone = tz;
    } catch (err) {  // a zone this browser does not know: show UTC and say so
      timeFormat = new Intl.DateTimeFormat("en-GB", { ...options, second: "2-digit", timeZone: "UTC" });
      tickFormat = new Intl.DateTimeFormat("en-GB", { ...options, timeZone: "UTC" });
      zone = "UTC";
    }
  }

  /* One window event, checked: anything malformed is dropped rather than drawn. */
  function parseWindow(text) {
    let doc;
    try {
      doc = JSON.parse(text);
    } catch (err) {
      return null;
    }
    if (doc === null || typeof doc !== "object") return null;
    const start = Date.parse(doc.window_start) / 1000;
    const end = Date.parse(doc.window_end) / 1000;
    if (!Number.isFinite(start) || !Number.isFinite(end) || end <= start) return null;
    const win = { start, end, endText: String(doc.window_end), level: LEVELS.includes(doc.level) ? doc.level : null };
    for (const { key } of SERIES) {
      const value = doc[key];
      if (value !== null && !(typeof value === "number" && Number.isFinite(value))) return null;
      win[key] = value;
    }
    return win;
  }

  function niceStep(rough) {
    const power = 10 ** Math.floor(Math.log10(rough));
    const fraction = rough / power;
    const nice = fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 2.5 ? 2.5 : fraction <= 5 ? 5 : 10;
    return nice * power;
  }

  class Panel {
    constructor(info, interval, index) {
      this.household = info.household;
      this.interval = interval;
      this.info = info;
      this.points = [];
      this.last = null;
      this.lastId = null;
      this.received = 0;
      this.live = 0;
      this.caughtUp = false;
      this.done = false;
      this.source = null;
      this.retryMs = RETRY_MIN_MS;
      this.retryTimer = null;
      this.frame = null;
      this.stopped = false;

      const node = document.getElementById("panel-template").content.firstElementChild.cloneNode(true);
      const title = node.querySelector(".panel-title");
      title.id = `panel-title-${index}`;
      title.textContent = `Household ${this.household}`;
      if (info.description) {
        const note = document.createElement("span");
        note.className = "panel-description";
        note.textContent = info.description;
        title.append(" ", note);
      }
      node.setAttribute("aria-labelledby", title.id);
      node.dataset.household = this.household;
      this.node = node;
      this.status = node.querySelector(".panel-status");
      this.card = node.querySelector(".card");
      this.card.dataset.household = this.household;
      this.card.dataset.eventsReceived = "0";
      this.card.querySelector(".card-house").textContent = `House ${this.household}`;
      this.time = node.querySelector(".card-time time");
      this.cells = {};
      for (const cell of node.querySelectorAll("dd[data-channel]")) this.cells[cell.dataset.channel] = cell;
      this.levelText = node.querySelector(".card-level");
      this.canvas = node.querySelector(".chart-canvas");
      this.canvas.dataset.points = "0";
      node.querySelector(".legend-note").textContent = `kW \u00b7 last hour \u00b7 ${zone}`;
      this.resize = new ResizeObserver(() => this.schedule());
      this.resize.observe(this.canvas);
      this.setCard(null);
    }

    url(lastEventId) {
      const query = new URLSearchParams({ household: this.household, interval: String(this.interval) });
      if (lastEventId) {
        query.set("last_event_id", lastEventId);  // a reconnect we make ourselves: resume after the last window
      } else if (this.info.start_index !== null) {
        query.set("start_index", String(this.info.start_index));  // an hour ago on this meter's clock
      }
      query.set("pace", "none");  // replay the history at once
      return `stream_data?${query}`;
    }

    open() {
      if (this.stopped) return;
      const source = new EventSource(this.url(this.last === null ? null : this.lastId));
      this.source = source;
      this.say(this.last === null ? "Connecting\u2026" : "Reconnecting\u2026");
      source.onopen = () => {
        this.retryMs = RETRY_MIN_MS;
        this.say(this.caughtUp ? this.liveText() : "Replaying the last hour\u2026");
      };
      source.onmessage = (event) => this.receive(event);
      // The bridge no longer holds the windows we asked for (older than its history): it goes on from the oldest.
      source.addEventListener("reset", () => this.say("Older windows are no longer held; continuing\u2026"));
      // A window already drawn, corrected by readings that arrived late (no id: the resume point stays).
      source.addEventListener("revision", (event) => this.revise(event));
      source.onerror = () => {
        if (this.stopped || this.source !== source) return;
        if (source.readyState === EventSource.CONNECTING) {
          // The browser reconnects by itself, sending Last-Event-ID: the stream resumes with no gap.
          this.say("Connection lost; reconnecting\u2026");
          return;
        }
        // Closed for good (an HTTP error, or not an event stream): retry ourselves, with backoff.
        source.close();
        const seconds = Math.round(this.retryMs / 1000);
        this.say(`Disconnected; retrying in ${seconds} s`);
        this.retryTimer = window.setTimeout(() => this.open(), this.retryMs);
        this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
      };
    }

    stop() {
      this.stopped = true;
      if (this.source !== null) this.source.close();
      window.clearTimeout(this.retryTimer);
      if (this.frame !== null) window.cancelAnimationFrame(this.frame);
      this.resize.disconnect();
      this.node.remove();
    }

    receive(event) {
      const win = parseWindow(event.data);
      if (win === null || (this.last !== null && win.end <= this.last.end)) return;  // malformed, or seen already
      this.points.push(win);
      const from = win.end - config.span_s;
      let drop = 0;
      while (drop < this.points.length && this.points[drop].end <= from) drop += 1;
      if (drop > 0) this.points.splice(0, drop);
      this.last = win;
      this.lastId = event.lastEventId;
      this.received += 1;
      const now = this.info.now_s;  // the meter's time when the page asked: later windows are live ones
      if (now === null || win.end > now) this.live += 1;
      // Caught up once the window that was newest when we asked has arrived (the next one was not final yet).
      if (!this.caughtUp && (now === null || win.end + this.interval > now - config.grace_s)) this.caughtUp = true;
      if (this.caughtUp) this.say(this.liveText());
      if (selftest !== null && this.caughtUp && this.live >= selftest) {
        // Headless Chromium dumps the DOM as soon as the last stream is closed, without another frame: render first.
        this.done = true;
        if (this.frame !== null) window.cancelAnimationFrame(this.frame);
        this.render();
        this.source.close();
        return;
      }
      this.schedule();
    }

    revise(event) {
      const win = parseWindow(event.data);
      if (win === null) return;
      const index = this.points.findIndex((p) => p.end === win.end && p.start === win.start);
      if (index < 0) return;  // not on the chart (older than its span, or never received)
      this.points[index] = win;
      if (this.last !== null && this.last.end === win.end) this.last = win;
      this.schedule();
    }

    liveText() {
      return `Live \u00b7 ${this.interval} s windows`;
    }

    say(text) {
      this.status.textContent = text;
    }

    schedule() {
      if (this.frame === null) this.frame = window.requestAnimationFrame(() => this.render());
    }

    render() {
      this.frame = null;
      this.setCard(this.last);
      this.draw();
      if (this.done) this.node.dataset.selftest = "done";
      checkSelftest();
    }

    setCard(win) {
      const card = this.card;
      for (const level of LEVELS) card.classList.toggle(`level-${level.toLowerCase()}`, win !== null && win.level === level);
      card.classList.toggle("level-unknown", win === null || win.level === null);
      if (win === null) {
        this.time.textContent = "waiting for data";
        this.levelText.textContent = "";
        return;
      }
      this.time.textContent = timeFormat.format(new Date(win.end * 1000));
      this.time.dateTime = win.endText;
      this.time.title = `window ${timeFormat.format(new Date(win.start * 1000))}\u2013${this.time.textContent} (${zone})`;
      for (const { key } of SERIES) this.cells[key].textContent = formatKw(win[key]);
      this.levelText.textContent = `Level: ${win.level === null ? "unknown" : win.level}`;
      card.dataset.level = win.level === null ? "" : win.level;
      card.dataset.windowEnd = win.endText;
      card.dataset.eventsReceived = String(this.received);
      card.dataset.background = window.getComputedStyle(card).backgroundColor;
    }

    draw() {
      const canvas = this.canvas;
      const box = canvas.getBoundingClientRect();
      if (box.width < 10 || box.height < 10) return;
      const ratio = window.devicePixelRatio || 1;
      const width = Math.round(box.width * ratio);
      const height = Math.round(box.height * ratio);
      if (canvas.width !== width || canvas.height !== height) {
        canvas.width = width;
        canvas.height = height;
      }
      const ctx = canvas.getContext("2d", { willReadFrequently: selftest !== null });  // the self-test reads pixels
      ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
      ctx.clearRect(0, 0, box.width, box.height);
      const plot = { left: 48, right: box.width - 12, top: 10, bottom: box.height - 26 };
      const now = this.info.now_s === null ? Date.now() / 1000 : this.info.now_s;  // the meter's clock, if known
      const end = this.last === null ? now : this.last.end;
      const start = end - config.span_s;
      const visible = this.points.filter((p) => p.end > start);
      let max = 0;
      for (const p of visible) for (const { key } of SERIES) if (p[key] !== null) max = Math.max(max, p[key]);
      const rough = Math.max(max * 1.05, 0.5);  // at least half a kW of scale: a quiet house does not fill the plot
      const step = niceStep(rough / 4);
      const top = step * Math.ceil(rough / step);
      const x = (t) => plot.left + ((t - start) / (end - start)) * (plot.right - plot.left);
      const y = (v) => plot.bottom - (Math.max(v, 0) / top) * (plot.bottom - plot.top);

      ctx.font = "12px system-ui, sans-serif";
      ctx.lineWidth = 1;
      ctx.strokeStyle = "#d9d9d9";
      ctx.fillStyle = "#444";
      ctx.textAlign = "right";
      ctx.textBaseline = "middle";
      for (let v = 0; v <= top + step / 2; v += step) {
        const py = Math.round(y(v)) + 0.5;
        ctx.beginPath();
        ctx.moveTo(plot.left, py);
        ctx.lineTo(plot.right, py);
        ctx.stroke();
        ctx.fillText(String(Number(v.toFixed(2))), plot.left - 6, py);
      }
      ctx.textAlign = "center";
      ctx.textBaseline = "top";
      const tick = X_TICK_STEPS_S.find((s) => config.span_s / s <= 6) || X_TICK_STEPS_S[X_TICK_STEPS_S.length - 1];
      for (let t = Math.ceil(start / tick) * tick; t <= end; t += tick) {
        const px = Math.round(x(t)) + 0.5;
        ctx.beginPath();
        ctx.moveTo(px, plot.top);
        ctx.lineTo(px, plot.bottom);
        ctx.stroke();
        ctx.fillText(tickFormat.format(new Date(t * 1000)), px, plot.bottom + 6);
      }
      ctx.strokeStyle = "#888";
      ctx.beginPath();
      ctx.moveTo(plot.left + 0.5, plot.top);
      ctx.lineTo(plot.left + 0.5, plot.bottom + 0.5);
      ctx.lineTo(plot.right, plot.bottom + 0.5);
      ctx.stroke();

      let drawn = 0;
      for (const p of visible) if (SERIES.some(({ key }) => p[key] !== null)) drawn += 1;
      ctx.save();
      ctx.beginPath();
      ctx.rect(plot.left, plot.top - 2, plot.right - plot.left, plot.bottom - plot.top + 4);
      ctx.clip();
      ctx.lineJoin = "round";
      for (const series of SERIES) this.drawSeries(ctx, series, visible, start, x, y, plot.bottom);
      ctx.restore();
      if (drawn === 0) {
        ctx.fillStyle = "#555";
        ctx.textAlign = "center";
        ctx.textBaseline = "middle";
        ctx.fillText("waiting for data\u2026", (plot.left + plot.right) / 2, (plot.top + plot.bottom) / 2);
      }
      canvas.dataset.points = String(drawn);
      if (this.done) canvas.dataset.ink = inkCounts(ctx, canvas).join(",");  // self-test: once, at the end
      const span = `${tickFormat.format(new Date(start * 1000))} to ${tickFormat.format(new Date(end * 1000))} ${zone}`;
      const latest = this.last === null ? "no data yet" : `latest Overall ${formatKw(this.last.Overall)}`;
      canvas.setAttribute(
        "aria-label",
        `Household ${this.household}: AC, Geyser and Overall power in kW, ${this.interval} s windows, ${span}; ${latest}.`,
      );
    }

    /* Each window is a step: its mean holds over [start, end); a window with no value breaks the line. */
    drawSeries(ctx, series, visible, start, x, y, baseline) {
      const runs = [];
      let run = null;
      for (const p of visible) {
        const value = p[series.key];
        if (value === null) {
          run = null;
          continue;
        }
        if (run === null || run.end !== p.start) {
          run = { points: [], end: null };
          runs.push(run);
        }
        run.points.push([x(Math.max(p.start, start)), y(value)], [x(p.end), y(value)]);
        run.end = p.end;
      }
      if (series.fill !== null) {
        ctx.fillStyle = series.fill;
        for (const r of runs) {
          ctx.beginPath();
          ctx.moveTo(r.points[0][0], baseline);
          for (const [px, py] of r.points) ctx.lineTo(px, py);
          ctx.lineTo(r.points[r.points.length - 1][0], baseline);
          ctx.closePath();
          ctx.fill();
        }
      }
      ctx.strokeStyle = series.colour;
      ctx.lineWidth = series.width;
      ctx.setLineDash(series.dash);
      ctx.beginPath();
      for (const r of runs) {
        ctx.moveTo(r.points[0][0], r.points[0][1]);
        for (const [px, py] of r.points.slice(1)) ctx.lineTo(px, py);
      }
      ctx.stroke();
      ctx.setLineDash([]);
    }
  }

  /* Self-test only: how many pixels of the canvas have each series' colour (Overall, Geyser, AC), i.e. were drawn. */
  function inkCounts(ctx, canvas) {
    const pixels = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
    const targets = SERIES.map(({ colour }) => [1, 3, 5].map((i) => parseInt(colour.slice(i, i + 2), 16)));
    const counts = targets.map(() => 0);
    for (let i = 0; i < pixels.length; i += 4) {
      if (pixels[i + 3] < 250) continue;
      targets.forEach(([r, g, b], k) => {
        if (Math.abs(pixels[i] - r) + Math.abs(pixels[i + 1] - g) + Math.abs(pixels[i + 2] - b) < 24) counts[k] += 1;
      });
    }
    return counts;
  }

  function checkSelftest() {
    if (selftest === null || root.dataset.selftest === "done") return;
    if (panels.every((panel) => panel.done && panel.frame === null)) root.dataset.selftest = "done";
  }

  /* --- pickers and the URL ------------------------------------------------------------------------------------- */

  function readSelection() {
    const known = config.households.map((h) => h.household);
    const wanted = params.getAll("household").map((h) => h.toLowerCase());
    let households = known.filter((h) => wanted.includes(h.toLowerCase()));
    if (households.length === 0) households = known.slice(0, config.max_panels);
    const interval = parseWhole(params.get("interval"), 1, MAX_INTERVAL_S);
    return { households: households.slice(0, config.max_panels), interval: interval === null ? 5 : interval };
  }

  function writeUrl() {
    const query = new URLSearchParams();
    for (const h of selection.households) query.append("household", h);
    query.set("interval", String(selection.interval));
    for (const keep of ["format", "selftest"]) if (params.has(keep)) query.set(keep, params.get(keep));
    window.history.replaceState(null, "", `?${query}`);
  }

  function buildPickers() {
    const box = document.getElementById("household-options");
    box.replaceChildren();
    for (const info of config.households) {
      const label = document.createElement("label");
      label.className = "option";
      const input = document.createElement("input");
      input.type = "checkbox";
      input.name = "household";
      input.value = info.household;
      input.checked = selection.households.includes(info.household);
      input.addEventListener("change", onHouseholdsChanged);
      label.append(input, ` ${info.household}`);
      box.append(label);
    }
    limitHouseholds();
    const preset = document.getElementById("interval-preset");
    const custom = document.getElementById("interval-custom");
    const isPreset = config.interval_presets.includes(selection.interval);
    preset.value = isPreset ? String(selection.interval) : "other";
    custom.value = String(selection.interval);
    document.getElementById("interval-custom-group").hidden = isPreset;
    preset.addEventListener("change", onPresetChanged);
    custom.addEventListener("change", onCustomChanged);
    document.getElementById("controls").addEventListener("submit", (event) => {
      event.preventDefault();
      onCustomChanged();
    });
  }

  function limitHouseholds() {
    const boxes = [...document.querySelectorAll("#household-options input")];
    const full = boxes.filter((b) => b.checked).length >= config.max_panels;
    for (const b of boxes) b.disabled = full && !b.checked;
    const hint = document.getElementById("household-hint");
    hint.hidden = !full || boxes.length <= config.max_panels;
    hint.textContent = `At most ${config.max_panels} at once (each keeps a connection open).`;
  }

  function onHouseholdsChanged() {
    const checked = [...document.querySelectorAll("#household-options input:checked")].map((b) => b.value);
    limitHouseholds();
    selection = { ...selection, households: checked };
    restart();
  }

  function onPresetChanged() {
    const preset = document.getElementById("interval-preset");
    const group = document.getElementById("interval-custom-group");
    if (preset.value === "other") {
      group.hidden = false;
      document.getElementById("interval-custom").focus();
      return;
    }
    group.hidden = true;
    chooseInterval(Number(preset.value));
  }

  function onCustomChanged() {
    const custom = document.getElementById("interval-custom");
    const error = document.getElementById("interval-error");
    const value = parseWhole(custom.value, 1, MAX_INTERVAL_S);
    custom.setAttribute("aria-invalid", String(value === null));
    error.hidden = value !== null;
    error.textContent = value === null ? `The interval is a whole number of seconds, 1 to ${MAX_INTERVAL_S}.` : "";
    if (value !== null) chooseInterval(value);
  }

  function chooseInterval(interval) {
    if (interval === selection.interval) return;
    selection = { ...selection, interval };
    restart();
  }

  /* --- lifecycle ------------------------------------------------------------------------------------------------ */

  async function loadConfig() {
    const response = await fetch("dashboard/households", { headers: { Accept: "application/json" }, cache: "no-store" });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    return response.json();
  }

  async function restart() {
    const generation = ++restarts;
    writeUrl();
    for (const panel of panels) panel.stop();
    panels = [];
    root.dataset.selftest = selftest === null ? "off" : "running";
    let fresh;
    try {
      fresh = await loadConfig();  // fresh clocks: "an hour ago" moves on
    } catch (err) {
      pageStatus(`Cannot reach the bridge (${err.message}); reload to try again.`);
      return;
    }
    if (generation !== restarts) return;  // the user changed the selection again meanwhile
    config = { ...config, ...fresh };
    pageStatus(selection.households.length === 0 ? "Pick a household to watch." : "");
    const container = document.getElementById("panels");
    const byId = new Map(config.households.map((info) => [info.household, info]));
    selection.households.forEach((household, index) => {
      const info = byId.get(household);
      if (info === undefined) return;
      const panel = new Panel(info, selection.interval, index);
      container.append(panel.node);
      panels.push(panel);
      panel.draw();
      panel.open();
    });
    root.dataset.panels = String(panels.length);
    checkSelftest();
  }

  function pageStatus(text) {
    document.getElementById("page-status").textContent = text;
  }

  async function start() {
    root.dataset.selftest = selftest === null ? "off" : "running";
    let retryMs = RETRY_MIN_MS;
    for (;;) {
      try {
        config = await loadConfig();
        break;
      } catch (err) {
        pageStatus(`Cannot reach the bridge (${err.message}); retrying in ${Math.round(retryMs / 1000)} s.`);
        await new Promise((resolve) => window.setTimeout(resolve, retryMs));
        retryMs = Math.min(retryMs * 2, RETRY_MAX_MS);
      }
    }
    makeFormats(config.tz);
    selection = readSelection();
    buildPickers();
    await restart();
  }

  start();
})();
