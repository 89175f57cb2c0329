// riffle's web view: polls the JSON API (docs/API.md) every second and
// draws the job graph (SVG), watermarks with the "why not fired" answer,
// checkpoint history and the recommender box. Plain JavaScript, no
// library.
"use strict";

const POLL_MS = 1000;
const SVG = "http://www.w3.org/2000/svg";
const $ = (id) => document.getElementById(id);

let ended = false;
let lastSeen = null;

function text(el, s) { el.textContent = s; return el; }

function fmtRate(r) {
  if (r >= 1e6) return (r / 1e6).toFixed(2) + "M";
  if (r >= 1e3) return (r / 1e3).toFixed(1) + "k";
  return r.toFixed(0);
}

// shortTime keeps the time of day of an RFC 3339 time ("none", "end" as is).
function shortTime(s) {
  const m = /T([0-9:.]+)Z$/.exec(s);
  return m ? m[1] : s;
}

function fmtBytes(b) {
  if (!b) return "";
  const u = ["B", "KiB", "MiB", "GiB"];
  let i = 0;
  while (b >= 1024 && i < u.length - 1) { b /= 1024; i++; }
  return b.toFixed(i ? 1 : 0) + " " + u[i];
}

async function getJSON(path) {
  const r = await fetch(path, { cache: "no-store" });
  let body = null;
  try { body = await r.json(); } catch (e) { body = null; }
  if (!r.ok) {
    const err = new Error((body && body.error) || (path + ": " + r.status));
    err.status = r.status;
    throw err;
  }
  return body;
}

function row(tbody, cells) {
  const tr = document.createElement("tr");
  for (const c of cells) {
    const td = document.createElement("td");
    text(td, c == null ? "" : String(c));
    tr.appendChild(td);
  }
  tbody.appendChild(tr);
  return tr;
}

function showEnded(msg) {
  ended = true;
  const b = $("banner");
  b.classList.remove("hidden");
  text(b, msg);
  const s = $("job-state");
  s.className = "badge ended";
  text(s, "ended");
  for (const id of ["savepoint-btn", "stop-btn", "rec-go"]) $(id).disabled = true;
}

function renderJob(j) {
  text($("job-name"), j.job || "");
  const s = $("job-state");
  if (j.ended) {
    showEnded("The job has ended" + (j.error ? " with an error: " + j.error : "") +
      ". What is shown below is its last state.");
    return;
  }
  s.className = "badge " + (j.running ? "running" : "");
  text(s, j.running ? "running" : "starting");
  $("stop-btn").disabled = false;
  $("savepoint-btn").disabled = !j.checkpointed;
}

// layout places nodes in columns by depth (longest path from a source).
function layout(g) {
  const depth = {};
  const inputs = {};
  for (const e of g.edges || []) (inputs[e.to] = inputs[e.to] || []).push(e.from);
  for (const n of g.nodes) {
    let d = 0;
    for (const f of inputs[n.name] || []) d = Math.max(d, (depth[f] || 0) + 1);
    depth[n.name] = d;
  }
  const perCol = {};
  const pos = {};
  for (const n of g.nodes) {
    const c = depth[n.name];
    const r = perCol[c] = (perCol[c] || 0) + 1;
    pos[n.name] = { x: 10 + c * 270, y: 10 + (r - 1) * 90 };
  }
  return pos;
}

function renderGraph(g) {
  const svg = $("graph");
  while (svg.firstChild) svg.removeChild(svg.firstChild);
  const pos = layout(g);
  const W = 200, H = 70;
  let maxX = 0, maxY = 0;
  for (const p of Object.values(pos)) { maxX = Math.max(maxX, p.x + W); maxY = Math.max(maxY, p.y + H); }
  svg.setAttribute("viewBox", "0 0 " + (maxX + 10) + " " + (maxY + 10));
  svg.style.height = (maxY + 10) + "px";
  for (const e of g.edges || []) {
    const a = pos[e.from], b = pos[e.to];
    if (!a || !b) continue;
    const x1 = a.x + W, y1 = a.y + H / 2, x2 = b.x, y2 = b.y + H / 2;
    const path = document.createElementNS(SVG, "path");
    path.setAttribute("class", "edge");
    path.setAttribute("d", `M${x1},${y1} C${(x1 + x2) / 2},${y1} ${(x1 + x2) / 2},${y2} ${x2},${y2}`);
    svg.appendChild(path);
    const lbl = document.createElementNS(SVG, "text");
    lbl.setAttribute("class", "edge-label");
    lbl.setAttribute("x", x1 + 4);
    lbl.setAttribute("y", y1 - 6);
    text(lbl, e.exchange + (e.keys && e.keys.length ? "(" + e.keys.join(",") + ")" : ""));
    svg.appendChild(lbl);
  }
  let total = 0, rate = 0;
  for (const n of g.nodes) {
    const p = pos[n.name];
    const grp = document.createElementNS(SVG, "g");
    grp.setAttribute("class", "node " + n.state);
    grp.setAttribute("data-node", n.name);
    grp.setAttribute("data-state", n.state);
    grp.setAttribute("transform", `translate(${p.x},${p.y})`);
    const rect = document.createElementNS(SVG, "rect");
    rect.setAttribute("width", W);
    rect.setAttribute("height", H);
    rect.setAttribute("fill", n.state === "busy" ? "#2e7d32" : n.state === "backpressured" ? "#d84315" : "#9e9e9e");
    grp.appendChild(rect);
    const lines = [
      n.name + " ×" + n.parallelism,
      fmtRate(n.kind === "source" ? n.rows_out_per_s : n.rows_in_per_s) + " rows/s · " + n.state,
      "wm " + shortTime(n.watermark.text),
    ];
    // The share of the subtasks' time busy, backpressured and idle over
    // the rate window (the runtime's counters), as a stacked bar.
    let bx = 8;
    for (const [share, cls] of [[n.busy_ratio, "busy"], [n.backpressure_ratio, "backpressured"], [n.idle_ratio, "idle"]]) {
      const w = (W - 16) * (share || 0);
      if (w <= 0) continue;
      const seg = document.createElementNS(SVG, "rect");
      seg.setAttribute("class", "share " + cls);
      seg.setAttribute("x", bx);
      seg.setAttribute("y", H - 9);
      seg.setAttribute("width", w);
      seg.setAttribute("height", 5);
      grp.appendChild(seg);
      bx += w;
    }
    lines.forEach((s, i) => {
      const t = document.createElementNS(SVG, "text");
      t.setAttribute("x", 8);
      t.setAttribute("y", 17 + i * 17);
      if (i === 1) t.setAttribute("class", "rate");
      text(t, s);
      grp.appendChild(t);
    });
    const title = document.createElementNS(SVG, "title");
    const pct = (r) => ((r || 0) * 100).toFixed(0) + "%";
    text(title, n.subtasks.map((s) => `${n.name}/${s.subtask}: ${s.state} (busy ${pct(s.busy_ratio)}, ` +
      `backpressured ${pct(s.backpressure_ratio)}, idle ${pct(s.idle_ratio)}; ` +
      `${s.busy_seconds.toFixed(1)}/${s.backpressure_seconds.toFixed(1)}/${s.idle_seconds.toFixed(1)} s), ` +
      `${s.rows_in} in, ${s.rows_out} out, ${fmtRate(s.rows_in_per_s)}/s, queue ${pct(s.output_queue_fill)}`).join("\n"));
    grp.appendChild(title);
    svg.appendChild(grp);
    if (n.kind === "source") { total += n.rows_out; rate += n.rows_out_per_s; }
  }
  text($("rows-total"), String(total));
  text($("rows-rate"), fmtRate(rate));
}

function renderWatermarks(w) {
  const why = $("why");
  while (why.firstChild) why.removeChild(why.firstChild);
  if (!w.windows || w.windows.length === 0) {
    text(why.appendChild(document.createElement("li")), "no window step").className = "muted";
  }
  for (const win of w.windows || []) {
    const li = document.createElement("li");
    li.setAttribute("data-node", win.node);
    const b = document.createElement("b");
    text(b, win.node + ": ");
    li.appendChild(b);
    li.appendChild(document.createTextNode(win.answer));
    if (win.split) {
      li.appendChild(document.createTextNode(" "));
      const h = document.createElement("span");
      h.className = "holder";
      text(h, "[held by " + win.split.split + "]");
      li.appendChild(h);
    }
    why.appendChild(li);
  }
  const sb = $("splits").tBodies[0];
  while (sb.firstChild) sb.removeChild(sb.firstChild);
  for (const s of w.sources || []) {
    row(sb, [s.split, s.node + "/" + s.subtask, s.max_event_time ? s.max_event_time.text : "", s.watermark.text,
      s.idle ? "idle" : "", s.quiet_seconds != null ? s.quiet_seconds.toFixed(1) + " s" : "", s.lag != null ? s.lag : ""]);
  }
  const ib = $("inputs").tBodies[0];
  while (ib.firstChild) ib.removeChild(ib.firstChild);
  for (const o of (w.operators || []).slice(0, 200)) {
    row(ib, [o.node + "/" + o.subtask, o.input, o.from + (o.slowest_subtask >= 0 ? "/" + o.slowest_subtask : "") +
      " (" + o.channels + ")", o.watermark.text,
      o.ended ? "ended" : o.idle ? "idle" : "active"]);
  }
}

function renderCheckpoints(c) {
  const sum = $("ck-summary");
  if (!c.checkpointed) {
    text(sum, "no checkpoints (run with --checkpoint-dir)");
    return;
  }
  text(sum, `${c.completed} completed, ${c.failed} failed, ${c.abandoned} abandoned, every ${c.interval} into ${c.dir}` +
    `; ${c.savepoints_taken} savepoints`);
  const tb = $("checkpoints").tBodies[0];
  while (tb.firstChild) tb.removeChild(tb.firstChild);
  for (const h of c.history.slice().reverse()) {
    row(tb, [h.id + (h.savepoint ? " (savepoint)" : ""), h.status, h.started.replace("T", " ").slice(0, 19),
      h.duration_ms.toFixed(0) + " ms", h.alignment_ms.toFixed(0) + " ms", fmtBytes(h.bytes), h.error || ""]);
  }
}

// PREQ_SERIES are the curve's lines: field, label, color.
const PREQ_SERIES = [
  ["hr", "HR", "#1565c0"], ["recent_hr", "HR (window)", "#64b5f6"],
  ["ndcg", "NDCG", "#2e7d32"], ["recent_ndcg", "NDCG (window)", "#81c784"],
];

// renderPrequential draws the live prequential figures over time (the
// API's sampled curve) as lines, with a legend.
function renderPrequential(r) {
  const sum = $("preq-summary");
  const svg = $("preq-chart");
  while (svg.firstChild) svg.removeChild(svg.firstChild);
  const p = r.stats && r.stats.prequential;
  if (!p) {
    text(sum, "no live prequential metric (update: prequential: in the recommend step)");
    svg.style.display = "none";
    return;
  }
  sum.className = "";
  text(sum, `HR@${p.k} ${p.hr.toFixed(3)}, NDCG@${p.k} ${p.ndcg.toFixed(3)} over ${p.model.events} scored events` +
    (p.window ? `; the last ${p.recent.events}: HR ${p.recent_hr.toFixed(3)}, NDCG ${p.recent_ndcg.toFixed(3)}` : "") +
    `; popularity HR ${(p.popularity.events ? p.popularity.hr_sum / p.popularity.events : 0).toFixed(3)}`);
  const pts = r.prequential_curve || [];
  if (pts.length === 0) { svg.style.display = "none"; return; }
  svg.style.display = "block";
  const W = 460, H = 160, L = 40, B = 20, T = 8, R = 110;
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  const t0 = Date.parse(pts[0].at), t1 = Math.max(Date.parse(pts[pts.length - 1].at), t0 + 1);
  let ymax = 0.05;
  for (const q of pts) for (const [f] of PREQ_SERIES) ymax = Math.max(ymax, q[f] || 0);
  ymax *= 1.1;
  const x = (q) => L + (W - L - R) * (Date.parse(q.at) - t0) / (t1 - t0);
  const y = (v) => H - B - (H - B - T) * v / ymax;
  const el = (name, attrs, s) => {
    const e = document.createElementNS(SVG, name);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (s != null) text(e, s);
    svg.appendChild(e);
    return e;
  };
  el("line", { x1: L, y1: H - B, x2: W - R, y2: H - B, class: "axis" });
  el("line", { x1: L, y1: T, x2: L, y2: H - B, class: "axis" });
  el("text", { x: L - 4, y: T + 8, "text-anchor": "end", class: "tick" }, ymax.toFixed(2));
  el("text", { x: L - 4, y: H - B, "text-anchor": "end", class: "tick" }, "0");
  const hms = (s) => shortTime(s).slice(0, 8);
  el("text", { x: L, y: H - 4, class: "tick" }, hms(pts[0].at));
  el("text", { x: W - R, y: H - 4, "text-anchor": "end", class: "tick" }, hms(pts[pts.length - 1].at));
  PREQ_SERIES.forEach(([f, label, color], i) => {
    if (f.startsWith("recent") && !p.window) return;
    const d = pts.map((q, j) => (j ? "L" : "M") + x(q).toFixed(1) + "," + y(q[f] || 0).toFixed(1)).join(" ");
    el("path", { d: d, class: "preq-line", "data-series": f, stroke: color });
    if (pts.length <= 60) {
      for (const q of pts) el("circle", { cx: x(q).toFixed(1), cy: y(q[f] || 0).toFixed(1), r: 2, fill: color });
    }
    el("text", { x: W - R + 8, y: T + 12 + i * 16, fill: color, class: "preq-legend" }, label);
  });
}

function renderRecommender(r) {
  renderPrequential(r);
  const sum = $("rec-summary");
  if (!r.serving) {
    text(sum, "this job does not serve recommendations");
    $("rec-go").disabled = true;
    return;
  }
  $("rec-go").disabled = ended;
  text(sum, `model version ${r.model_version}, ${r.updates} updates (${r.updates_per_s.toFixed(1)}/s), ` +
    `${r.users} users, ${r.items} items, ${r.interactions} interactions`);
}

async function lookup() {
  const user = $("rec-user").value.trim();
  const out = $("rec-result");
  while (out.firstChild) out.removeChild(out.firstChild);
  if (!user) return;
  try {
    const r = await getJSON("/recommend?k=10&user=" + encodeURIComponent(user));
    for (const it of r.recommendations) {
      const li = document.createElement("li");
      li.className = "rec-item";
      text(li, `item ${it.item_id} (score ${it.score.toFixed(3)})`);
      out.appendChild(li);
    }
    if (r.recommendations.length === 0) text(out.appendChild(document.createElement("li")), "no items");
  } catch (e) {
    const li = out.appendChild(document.createElement("li"));
    li.className = "error";
    text(li, e.message);
  }
}

async function action(path, body) {
  const res = $("action-result");
  text(res, "…");
  const headers = { "Content-Type": "application/json" };
  const tok = $("token").value;
  if (tok) headers["Authorization"] = "Bearer " + tok;
  try {
    const r = await fetch(path, { method: "POST", headers, body: JSON.stringify(body) });
    const j = await r.json();
    text(res, r.ok ? (j.path ? "done: " + j.path : "done") : "failed: " + j.error);
  } catch (e) {
    text(res, "failed: " + e.message);
  }
}

async function poll() {
  try {
    const j = await getJSON("/api/job");
    lastSeen = new Date();
    renderJob(j);
    const views = [
      ["/api/graph", renderGraph],
      ["/api/watermarks", renderWatermarks],
      ["/api/checkpoints", renderCheckpoints],
      ["/api/recommender", renderRecommender],
    ];
    for (const [path, render] of views) {
      try {
        render(await getJSON(path));
      } catch (e) {
        if (e.status !== 503) throw e; // 503: not started yet
      }
    }
  } catch (e) {
    if (e instanceof TypeError) { // the endpoint is gone: the process ended
      showEnded("The job has ended: its admin endpoint no longer answers" +
        (lastSeen ? " (last answer at " + lastSeen.toLocaleTimeString() + ")" : "") +
        ". What is shown below is its last state.");
      return;
    }
    text($("action-result"), "error: " + e.message);
  }
  if (!ended) setTimeout(poll, POLL_MS);
}

$("rec-go").addEventListener("click", lookup);
$("savepoint-btn").addEventListener("click", () => action("/api/savepoint", { dir: $("savepoint-dir").value.trim() }));
$("stop-btn").addEventListener("click", () => {
  if (window.confirm("Stop the job?")) action("/api/stop", {});
});
poll();
