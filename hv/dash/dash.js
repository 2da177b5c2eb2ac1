// The pxhvd dashboard: polls /api/status every second and draws it. Every
// number shown comes from that JSON (sched/stats.c computes them; pxctl top
// shows the same); this file only formats. Text goes in with textContent,
// never as HTML.
"use strict";

const MiB = 1048576;

function color(id) { return "hsl(" + ((id * 137.508) % 360).toFixed(1) + ",62%,52%)"; }
function pct(v) { return v.toFixed(1) + "%"; }
function mib(b) { return (b / MiB).toFixed(1); }
function latency(us) {
  if (us >= 1e6) return (us / 1e6).toFixed(2) + " s";
  if (us >= 1e3) return (us / 1e3).toFixed(2) + " ms";
  return us.toFixed(0) + " µs";
}

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

// A cell with a bar of value/whole (capped at full), an optional target
// mark, and the text after it. key names the JSON field (tests read it).
function barCell(key, value, whole, target, text) {
  const td = el("td", "l"), bar = el("span", "bar"), fill = el("i");
  const f = whole > 0 ? Math.min(1, value / whole) : 0;
  fill.style.width = (100 * f).toFixed(1) + "%";
  bar.appendChild(fill);
  if (f >= 1 && target === null) bar.classList.add("full");
  if (target !== null) {
    const m = el("b");
    m.style.left = Math.min(100, target).toFixed(1) + "%";
    bar.appendChild(m);
  }
  td.appendChild(bar);
  td.appendChild(el("span", "v", text));
  td.dataset.key = key;
  return td;
}

function cell(key, text, cls) {
  const td = el("td", cls, text);
  td.dataset.key = key;
  return td;
}

function deviceRow(d, nvms) {
  const tr = el("tr");
  tr.dataset.device = d.index;
  tr.appendChild(cell("index", String(d.index), "l"));
  tr.appendChild(cell("name", d.name, "l"));
  tr.appendChild(barCell("memory_used_bytes", d.memory_used_bytes, d.memory_bytes, null,
                         mib(d.memory_used_bytes) + " / " + mib(d.memory_bytes) + " MiB"));
  tr.appendChild(cell("share_used", pct(d.share_used)));
  tr.appendChild(cell("busy_10s", pct(d.busy_10s)));
  tr.appendChild(cell("busy_60s", pct(d.busy_60s)));
  tr.appendChild(cell("vms", String(nvms)));
  return tr;
}

function vmRow(v) {
  const tr = el("tr");
  tr.dataset.vm = v.id;
  const id = cell("id", "", "l");
  const sw = el("span", "sw");
  sw.style.background = color(v.id);
  id.appendChild(sw);
  id.appendChild(document.createTextNode(String(v.id)));
  tr.appendChild(id);
  tr.appendChild(cell("name", v.name, "l"));
  tr.appendChild(cell("device", String(v.device)));
  tr.appendChild(barCell("mem_used_bytes", v.mem_used_bytes, v.mem_quota_bytes, null,
                         mib(v.mem_used_bytes) + " / " + mib(v.mem_quota_bytes) + " MiB"));
  tr.appendChild(cell("share", pct(v.share)));
  tr.appendChild(barCell("achieved_10s", v.achieved_10s, 100, v.share, pct(v.achieved_10s)));
  tr.appendChild(cell("achieved_60s", pct(v.achieved_60s)));
  tr.appendChild(cell("queued", String(v.queued)));
  tr.appendChild(cell("latency_p99_us", latency(v.latency_p99_us)));
  tr.appendChild(cell("launches_done", String(v.launches_done)));
  tr.appendChild(cell("launches_failed", String(v.launches_failed)));
  return tr;
}

function fillBody(table, rows) {
  const body = document.querySelector(table + " tbody");
  body.replaceChildren(...rows);
}

// One device's last 60 s: a stacked area per VM (its ms of device time in
// each second), so the top edge is the device's busy fraction.
function drawChart(canvas, dev, vms) {
  const dpr = window.devicePixelRatio || 1, w = canvas.clientWidth, h = canvas.clientHeight;
  canvas.width = w * dpr;
  canvas.height = h * dpr;
  const g = canvas.getContext("2d");
  g.scale(dpr, dpr);
  const left = 34, bottom = 14, pw = w - left - 4, ph = h - bottom - 4;
  const n = dev.busy_ms_history.length;
  g.font = "10px system-ui, sans-serif";
  g.fillStyle = "#57606a";
  g.strokeStyle = "#e4e7eb";
  for (const p of [0, 50, 100]) {
    const y = 4 + ph * (1 - p / 100);
    g.beginPath(); g.moveTo(left, y); g.lineTo(left + pw, y); g.stroke();
    g.fillText(p + "%", 2, y + 3);
  }
  g.fillText("-" + n + " s", left, h - 2);
  g.fillText("now", left + pw - 18, h - 2);
  const x = i => left + (n > 1 ? pw * i / (n - 1) : 0);
  const y = ms => 4 + ph * (1 - Math.min(1000, ms) / 1000);
  const base = new Array(n).fill(0);
  for (const v of vms) {
    const top = base.map((b, i) => b + v.gpu_ms_history[i]);
    g.beginPath();
    for (let i = 0; i < n; i++) g.lineTo(x(i), y(top[i]));
    for (let i = n - 1; i >= 0; i--) g.lineTo(x(i), y(base[i]));
    g.closePath();
    g.fillStyle = color(v.id);
    g.fill();
    for (let i = 0; i < n; i++) base[i] = top[i];
  }
}

function charts(st) {
  const box = document.getElementById("charts");
  while (box.children.length > st.devices.length) box.lastChild.remove();
  st.devices.forEach((d, i) => {
    let c = box.children[i];
    if (!c) {
      c = el("div", "chart");
      c.appendChild(el("div", "t"));
      c.appendChild(el("canvas"));
      box.appendChild(c);
    }
    c.firstChild.textContent = "device " + d.index + ": " + d.name + " (busy " + pct(d.busy_10s) + " over 10 s)";
    drawChart(c.lastChild, d, st.vms.filter(v => v.device === d.index));
  });
}

function show(st) {
  document.getElementById("meta").textContent =
    "policy " + st.policy + ", slice " + st.slice_us + " µs, up " + st.uptime_s.toFixed(0) + " s, " +
    st.vms.length + " VMs, updated " + new Date().toLocaleTimeString();
  document.getElementById("err").textContent = "";
  fillBody("#devs", st.devices.map(d => deviceRow(d, st.vms.filter(v => v.device === d.index).length)));
  fillBody("#vms", st.vms.map(vmRow));
  charts(st);
}

async function tick() {
  try {
    const r = await fetch("api/status", {cache: "no-store"});
    if (!r.ok) throw new Error("HTTP " + r.status);
    show(await r.json());
  } catch (e) {
    document.getElementById("err").textContent = "pxhvd is not answering (" + e.message + "); retrying";
  }
}

tick();
setInterval(tick, 1000);
