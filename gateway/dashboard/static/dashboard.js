// The dashboard's script: fetch /dashboard/data?window=..., draw with Chart.js, refresh every N seconds.
(function () {
  "use strict";
  const body = document.body;
  const base = body.dataset.base;
  const refreshMs = Number(body.dataset.refresh || 30) * 1000;
  const palette = ["#1565c0", "#ef6c00", "#2e7d32", "#6a1b9a", "#00838f", "#ad1457", "#5d4037", "#546e7a"];
  const charts = {};
  let windowName = body.dataset.window;
  let timer = null;

  const $ = (id) => document.getElementById(id);
  const pct = (v) => (v === null || v === undefined ? "–" : (v * 100).toFixed(v < 0.01 && v > 0 ? 2 : 1) + "%");
  const num = (v) => (v === null || v === undefined ? "–" : Math.round(v).toLocaleString("en-US"));
  const usd = (v) => "$" + (v >= 100 ? v.toFixed(0) : v >= 1 ? v.toFixed(2) : v.toFixed(4));

  function label(bucket, unit) {
    if (unit === "day") return bucket.slice(5);
    return bucket.slice(11, 16);
  }

  function draw(id, config) {
    config.options = Object.assign({
      responsive: true, maintainAspectRatio: false, animation: false,
      interaction: { mode: "index", intersect: false },
      plugins: { legend: { position: "bottom", labels: { boxWidth: 12 } } },
    }, config.options || {});
    if (charts[id]) {
      charts[id].data = config.data;
      charts[id].options = config.options;
      charts[id].update("none");
    } else {
      charts[id] = new Chart($(id), config);
    }
  }

  function render(d) {
    const t = d.totals;
    $("kpi-requests").textContent = num(t.requests);
    $("kpi-cost").textContent = usd(t.cost_usd);
    $("kpi-today").textContent = usd(d.spent_today_usd);
    const share = d.threshold_usd_per_day > 0 ? d.spent_today_usd / d.threshold_usd_per_day : 0;
    $("kpi-today-bar").style.width = Math.min(100, share * 100) + "%";
    $("kpi-today-bar").classList.toggle("over", share >= 1);
    $("kpi-tokens").textContent = num(t.tokens);
    $("kpi-latency").textContent = num(t.p50_ms) + " / " + num(t.p95_ms);
    $("kpi-errors").textContent = pct(t.error_rate);
    $("kpi-fallback").textContent = pct(t.fallback_rate);
    $("kpi-limited").textContent = pct(t.rate_limited_rate);
    $("kpi-blocked").textContent = pct(t.guard_block_rate);
    $("kpi-cache").textContent = pct(t.cache_hit_rate);
    renderCircuits(d.circuits);
    $("empty").hidden = !d.empty;
    $("charts").hidden = d.empty;
    if (!d.empty) renderCharts(d);
    body.dataset.loadedWindow = d.window;
    $("status").textContent = "updated " + new Date().toLocaleTimeString();
  }

  function renderCircuits(circuits) {
    const list = $("circuits");
    list.replaceChildren();
    const names = Object.keys(circuits);
    if (!names.length) {
      const li = document.createElement("li");
      li.className = "muted";
      li.textContent = "no model called yet";
      list.append(li);
    }
    for (const name of names) {
      const li = document.createElement("li");
      li.className = circuits[name];
      li.textContent = name + ": " + circuits[name].replace("_", "-");
      list.append(li);
    }
  }

  function renderCharts(d) {
    const labels = d.buckets.map((b) => label(b, d.unit));
    document.querySelectorAll(".unit").forEach((el) => { el.textContent = d.unit; });
    const spend = Object.entries(d.spend_by_model).map(([model, values], i) => ({
      type: "bar", label: model, data: values, backgroundColor: palette[i % palette.length], stack: "spend",
    }));
    const daily = d.unit === "day";
    if (daily) {
      spend.push({ type: "line", label: "alert threshold", data: labels.map(() => d.threshold_usd_per_day),
        borderColor: "#c62828", borderDash: [6, 4], borderWidth: 2, pointRadius: 0, fill: false });
    }
    $("threshold-note").textContent = daily ? "" :
      "· the alert threshold ($" + d.threshold_usd_per_day + ") is per UTC day: see the 7d or 30d view";
    draw("chart-spend", { type: "bar", data: { labels, datasets: spend },
      options: { scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true } } } });
    draw("chart-latency", { type: "line", data: { labels, datasets: [
      { label: "p50", data: d.latency.p50_ms, borderColor: palette[0], spanGaps: true, pointRadius: 1 },
      { label: "p95", data: d.latency.p95_ms, borderColor: palette[1], spanGaps: true, pointRadius: 1 },
    ] }, options: { scales: { y: { beginAtZero: true } } } });
    const rateNames = [["error", "errors"], ["fallback", "fallbacks"], ["rate_limited", "rate-limited"],
      ["guard_block", "guard blocks"]];
    draw("chart-rates", { type: "line", data: { labels, datasets: rateNames.map(([k, name], i) => ({
      label: name, data: d.rates[k].map((v) => (v === null ? null : v * 100)),
      borderColor: palette[(i + 2) % palette.length], spanGaps: true, pointRadius: 1 })) },
    options: { scales: { y: { beginAtZero: true, ticks: { callback: (v) => v + "%" } } } } });
    const routes = Object.keys(d.tokens_by_route);
    draw("chart-tokens", { type: "bar", data: { labels: routes, datasets: [
      { label: "input", data: routes.map((r) => d.tokens_by_route[r].input), backgroundColor: palette[0] },
      { label: "output", data: routes.map((r) => d.tokens_by_route[r].output), backgroundColor: palette[1] },
    ] }, options: { indexAxis: "y", scales: { x: { stacked: true, beginAtZero: true }, y: { stacked: true } } } });
    draw("chart-cache", { type: "line", data: { labels, datasets: [
      { label: "cache hits", data: d.rates.cache_hit.map((v) => (v === null ? null : v * 100)),
        borderColor: palette[4], backgroundColor: "rgba(0,131,143,.15)", fill: true, spanGaps: true, pointRadius: 1 },
    ] }, options: { scales: { y: { beginAtZero: true, max: 100, ticks: { callback: (v) => v + "%" } } } } });
    draw("chart-keys", { type: "bar", data: { labels: d.top_keys.map((k) => k.key), datasets: [
      { label: "USD", data: d.top_keys.map((k) => k.cost_usd), backgroundColor: palette[3] },
    ] }, options: { indexAxis: "y", plugins: { legend: { display: false } }, scales: { x: { beginAtZero: true } } } });
  }

  async function load() {
    clearTimeout(timer);
    const want = windowName;
    try {
      const res = await fetch(base + "/data?window=" + encodeURIComponent(want),
        { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (!res.ok) throw new Error("HTTP " + res.status);
      const data = await res.json();
      if (want === windowName) render(data);
    } catch (err) {
      $("status").textContent = "could not refresh (" + err.message + "); retrying";
    }
    timer = setTimeout(load, refreshMs);
  }

  function choose(name) {
    windowName = name;
    body.dataset.window = name;
    document.querySelectorAll("#windows button").forEach((b) => {
      b.setAttribute("aria-pressed", String(b.dataset.window === name));
    });
    const link = $("json-link");
    link.href = base + "/data?window=" + name;
    link.textContent = link.getAttribute("href");
    history.replaceState(null, "", "?window=" + name);
    $("status").textContent = "loading…";
    load();
  }

  $("windows").addEventListener("click", (e) => {
    const b = e.target.closest("button[data-window]");
    if (b) choose(b.dataset.window);
  });
  load();
})();
