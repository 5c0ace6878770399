// gaitedge live view: plain JavaScript and canvas, served by the runtime (no build step).
// The server pushes JSON over server-sent events: a "snapshot" (the whole recent picture) on
// connect and after a resync, then "update"s (what is new) at a bounded rate.
"use strict";

const WINDOW_S = 10; // seconds of signal on screen
const AXIS_COLOURS = ["#d62728", "#2ca02c", "#1f77b4"];
const PALETTE = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#b07aa1", "#9c755f",
  "#76b7b2", "#edc948", "#ff9da7", "#bab0ac"];

const state = { session: {}, devices: new Map(), alerts: new Map(), review: null };

function deviceView(name) {
  let dev = state.devices.get(name);
  if (dev) return dev;
  const node = document.getElementById("device-template").content.firstElementChild.cloneNode(true);
  node.dataset.device = name;
  node.querySelector(".name").textContent = name;
  document.getElementById("devices").appendChild(node);
  dev = { name, node, t: [], imu: [[], [], [], [], [], []], status: null, link: "live" };
  state.devices.set(name, dev);
  return dev;
}

function appendSamples(dev, samples, replace) {
  if (replace) { dev.t = []; dev.imu = [[], [], [], [], [], []]; }
  const t = samples.t;
  if (!t.length) return;
  if (dev.t.length && t[0] < dev.t[dev.t.length - 1]) { // a new stream under this name
    dev.t = []; dev.imu = [[], [], [], [], [], []];
  }
  dev.t.push(...t);
  samples.imu.forEach((axis, i) => dev.imu[i].push(...axis));
  const keepFrom = dev.t[dev.t.length - 1] - (state.session.history_s || 12);
  let cut = 0;
  while (cut < dev.t.length && dev.t[cut] < keepFrom) cut++;
  if (cut) { dev.t.splice(0, cut); dev.imu.forEach((a) => a.splice(0, cut)); }
}

function fmt(x, digits) { return x == null ? "–" : Number(x).toFixed(digits); }

function renderDevice(dev) {
  const s = dev.status || {};
  const link = dev.node.querySelector(".link");
  link.dataset.state = dev.link;
  let health = s.rate_hz != null ? ` · ${fmt(s.rate_hz, 1)} Hz` : "";
  if (s.lost_frames != null) health += ` · lost frames ${s.lost_frames}`;
  if (s.reconnects != null) health += ` · reconnects ${s.reconnects}`;
  const word = { live: "live", dropped: "link dropped", ended: "ended" }[dev.link] || dev.link;
  link.textContent = word + health;
  const act = dev.node.querySelector(".activity");
  act.dataset.label = s.activity || "";
  const calibrating = (s.mounting || "").startsWith("calibrating");
  act.querySelector(".label").textContent = s.activity || (calibrating ? "calibrating…" : "–");
  act.querySelector(".p").textContent = s.activity ? `p=${fmt(s.p, 2)}` : "";
  // A device may run another model than the session's (no gyroscope: the accelerometer-only one).
  const how = [s.mounting ? `mounting: ${s.mounting}` : "", s.model ? `model: ${s.model}` : ""];
  dev.node.querySelector(".mounting").textContent = how.filter(Boolean).join(" · ");
  dev.node.querySelector(".clock").textContent = s.t_s != null ? `t=${fmt(s.t_s, 1)} s · windows ${s.windows}` : "";
  if (state.review && state.review.device === dev.name) return; // the chart shows the jump
  drawSignal(dev.node, dev.t, dev.imu, dev.t.length ? dev.t[dev.t.length - 1] - WINDOW_S : 0, WINDOW_S, null);
}

function drawSignal(node, t, imu, t0, span, marker) {
  drawPanel(node.querySelector(".chart.acc"), t, imu.slice(0, 3), t0, span, "acc m/s²", marker);
  drawPanel(node.querySelector(".chart.gyro"), t, imu.slice(3, 6), t0, span, "gyro rad/s", marker);
}

function drawPanel(canvas, t, series, t0, span, title, marker) {
  const w = (canvas.width = canvas.clientWidth || 600);
  const h = canvas.height;
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, w, h);
  let lo = Infinity, hi = -Infinity;
  for (const s of series) for (const v of s) { if (v < lo) lo = v; if (v > hi) hi = v; }
  if (!isFinite(lo)) { lo = -1; hi = 1; }
  const pad = (hi - lo) * 0.08 + 1e-3;
  lo -= pad; hi += pad;
  const x = (tt) => ((tt - t0) / span) * w;
  const y = (v) => h - ((v - lo) / (hi - lo)) * h;
  ctx.strokeStyle = "#ccc"; ctx.beginPath(); ctx.moveTo(0, y(0)); ctx.lineTo(w, y(0)); ctx.stroke();
  series.forEach((s, i) => {
    ctx.strokeStyle = AXIS_COLOURS[i]; ctx.lineWidth = 1.2; ctx.beginPath();
    let started = false;
    for (let k = 0; k < t.length; k++) {
      if (t[k] < t0) continue;
      if (!started) { ctx.moveTo(x(t[k]), y(s[k])); started = true; } else ctx.lineTo(x(t[k]), y(s[k]));
    }
    ctx.stroke();
  });
  if (marker != null) { ctx.strokeStyle = "#000"; ctx.beginPath(); ctx.moveTo(x(marker), 0); ctx.lineTo(x(marker), h); ctx.stroke(); }
  ctx.fillStyle = "#333"; ctx.font = "12px sans-serif";
  ctx.fillText(`${title}  (x red, y green, z blue; ${fmt(lo, 1)}…${fmt(hi, 1)})`, 6, 14);
  ctx.fillText(`${fmt(t0, 1)} s`, 4, h - 4);
  ctx.fillText(`${fmt(t0 + span, 1)} s`, w - 52, h - 4);
}

function alertKey(a) { return `${a.device}|${a.type}|${a.t}|${a.label}`; }

function addAlert(a) {
  const key = alertKey(a);
  if (state.alerts.has(key)) return;
  const li = document.createElement("li");
  li.className = "alert";
  li.dataset.type = a.type;
  li.dataset.label = a.label;
  li.dataset.device = a.device;
  li.dataset.t = a.t;
  li.dataset.shownMs = Date.now(); // when the browser showed it (latency tests read this)
  // Activity not from the device's calibrated model: the cold-start model's, or held back.
  const how = a.mounting === "cold start" || a.mounting === "uncalibrated" ? `, ${a.mounting}` : "";
  if (how) li.dataset.mounting = a.mounting;
  li.textContent = a.type === "fall"
    ? `${fmt(a.t, 2)} s [${a.device}] FALL p=${fmt(a.p, 2)} (impact at ${fmt(a.t_event, 2)} s${a.confirmed_by ? ", " + a.confirmed_by.join("+") : ""})`
    : `${fmt(a.t, 2)} s [${a.device}] activity: ${a.label} since ${fmt(a.t_event, 2)} s (p=${fmt(a.p, 2)}${how})`;
  const list = document.getElementById("alerts");
  list.insertBefore(li, list.firstChild);
  state.alerts.set(key, a);
}

function colour(label) {
  const i = (state.session.activity_classes || []).indexOf(label);
  return PALETTE[(i < 0 ? 9 : i) % PALETTE.length];
}

// The replay's timeline: the whole recording, the activity the alerts decided so far, falls.
function timelineSpans(device) {
  const acts = [...state.alerts.values()].filter((a) => a.type === "activity" && a.device === device)
    .sort((a, b) => a.t_event - b.t_event);
  const dev = state.devices.get(device);
  const now = dev && dev.status ? dev.status.t_s : 0;
  const end = dev && dev.link === "ended" ? state.session.duration_s : now;
  return acts.map((a, i) => ({ label: a.label, p: a.p, start: a.t_event, end: i + 1 < acts.length ? acts[i + 1].t_event : end }));
}

function drawTimeline() {
  const duration = state.session.duration_s;
  if (duration == null) return;
  const device = (state.session.devices || [])[0];
  const canvas = document.getElementById("timeline");
  const w = (canvas.width = canvas.clientWidth || 800);
  const h = canvas.height;
  const ctx = canvas.getContext("2d");
  const x = (t) => (t / duration) * w;
  ctx.fillStyle = "#e9ebef"; ctx.fillRect(0, 0, w, h);
  for (const s of timelineSpans(device)) { ctx.fillStyle = colour(s.label); ctx.fillRect(x(s.start), 8, Math.max(1, x(s.end) - x(s.start)), h - 16); }
  ctx.fillStyle = "#c00000";
  for (const a of state.alerts.values()) if (a.type === "fall") ctx.fillRect(x(a.t_event) - 1.5, 0, 3, h);
  const dev = state.devices.get(device);
  if (dev && dev.status) { ctx.fillStyle = "#000"; ctx.fillRect(x(dev.status.t_s) - 1, 0, 2, h); }
  if (state.review) { ctx.strokeStyle = "#000"; ctx.setLineDash([3, 3]); ctx.beginPath(); ctx.moveTo(x(state.review.t), 0); ctx.lineTo(x(state.review.t), h); ctx.stroke(); ctx.setLineDash([]); }
  const legend = document.getElementById("legend");
  if (!legend.childElementCount) {
    for (const c of state.session.activity_classes || []) {
      const span = document.createElement("span");
      span.innerHTML = `<i style="background:${colour(c)}"></i>`;
      span.append(c);
      legend.appendChild(span);
    }
  }
}

async function jump(t) {
  const device = (state.session.devices || [])[0];
  const t0 = Math.max(0, t - WINDOW_S / 2);
  const reply = await fetch(`/api/signal?device=${encodeURIComponent(device)}&t0=${t0}&t1=${t0 + WINDOW_S}`);
  if (!reply.ok) return;
  const sig = await reply.json();
  state.review = { device, t };
  const span = timelineSpans(device).find((s) => s.start <= t && t < s.end);
  document.getElementById("review-info").textContent =
    `· at ${fmt(t, 1)} s: ${span ? `${span.label} (p=${fmt(span.p, 2)})` : "no activity decided"}`;
  document.getElementById("live").hidden = false;
  const dev = deviceView(device);
  drawSignal(dev.node, sig.t, sig.imu, t0, WINDOW_S, t);
  drawTimeline();
}

function handle(msg) {
  if (msg.kind === "snapshot") {
    state.session = msg.session;
    const s = state.session;
    document.getElementById("session").textContent = `${s.command} · ${s.model} · ${(s.devices || []).join(", ")}`;
    document.getElementById("review").hidden = s.duration_s == null;
  }
  // Alerts first: a message's alerts come once, and a fault drawing a device must not lose them.
  msg.alerts.forEach(addAlert);
  for (const [name, d] of Object.entries(msg.devices)) {
    guarded(() => {
      const dev = deviceView(name);
      appendSamples(dev, d.samples, msg.kind === "snapshot");
      if (d.status) dev.status = d.status;
      dev.link = d.link;
    });
  }
  state.devices.forEach((dev) => guarded(() => renderDevice(dev)));
  guarded(drawTimeline);
}

function guarded(draw) {
  try { draw(); } catch (err) { console.error(err); }
}

function connect() {
  const conn = document.getElementById("connection");
  const source = new EventSource("/events");
  source.onopen = () => { conn.dataset.state = "open"; conn.textContent = "connected"; };
  source.onerror = () => { conn.dataset.state = "lost"; conn.textContent = "server unreachable: retrying"; };
  source.onmessage = (event) => handle(JSON.parse(event.data));
}

document.getElementById("timeline").addEventListener("click", (event) => {
  const rect = event.target.getBoundingClientRect();
  jump(((event.clientX - rect.left) / rect.width) * state.session.duration_s);
});
document.getElementById("live").addEventListener("click", () => {
  state.review = null;
  document.getElementById("live").hidden = true;
  document.getElementById("review-info").textContent = "";
  state.devices.forEach(renderDevice);
  drawTimeline();
});
connect();
