// console/console.js — the console's behaviour: navigation, the explain box, the queue table
// and its actions (POST with the session's CSRF token), the traffic charts drawn as SVG, the
// limits. Talks to this server's /api/ only; builds every element with textContent.
"use strict";

const SVG = "http://www.w3.org/2000/svg";

function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}

function csrfToken() {
  const m = document.cookie.match(/(?:^|;\s*)clearmta_csrf=([0-9a-f]+)/);
  return m ? m[1] : "";
}

async function api(path, options) {
  const res = await fetch(path, Object.assign({ credentials: "same-origin" }, options || {}));
  let body = null;
  try { body = await res.json(); } catch (e) { body = { error: res.statusText }; }
  return { ok: res.ok, status: res.status, body: body };
}

// ---- navigation ----

const pages = ["explain", "queue", "traffic", "limits"];

function show() {
  const name = pages.includes(location.hash.slice(1)) ? location.hash.slice(1) : "explain";
  for (const p of pages) {
    document.getElementById(p).classList.toggle("shown", p === name);
    document.getElementById("nav-" + p).classList.toggle("active", p === name);
  }
  if (name === "queue") loadQueue();
  if (name === "traffic") loadTraffic();
  if (name === "limits") loadLimits();
}

// ---- explain ----

function classOf(code) {
  const c = String(code || "")[0];
  return c === "2" ? "cls2" : c === "4" ? "cls4" : c === "5" ? "cls5" : "";
}

function codes(parent, code, enhanced) {
  if (code) parent.append(el("span", { class: "code " + classOf(code) }, code), " ");
  if (enhanced) parent.append(el("span", { class: "enhanced " + classOf(enhanced) }, enhanced), " ");
}

function fields(dl, rows) {
  for (const [name, value] of rows) {
    if (value === null || value === undefined || value === "") continue;
    dl.append(el("dt", {}, name), el("dd", {}, value));
  }
}

function retryWords(retry, when) {
  return (retry ? "Retry: yes — " : "Retry: no — ") + (when || (retry ? "later" : "do not retry unchanged"));
}

function explanationBlock(ex) {
  const b = el("div", { class: "block" });
  const head = el("p", { class: "head" });
  codes(head, ex.code, ex.enhanced);
  head.append(el("span", { class: "reason" }, (ex.reason || "") + (ex.summary ? ": " + ex.summary : "")));
  b.append(head);
  const dl = el("dl");
  fields(dl, [["Reply text", ex.text], ["Meaning", ex.meaning], ["Likely cause", ex.cause],
              ["What to do", ex.action], ["Administrator", ex.admin]]);
  b.append(dl, el("p", { class: "retry" }, retryWords(ex.retry, ex.retry_when)));
  for (const n of ex.notes || []) b.append(el("p", { class: "note" }, "Note: " + n));
  return b;
}

function bounceBlock(r) {
  const b = el("div", { class: "block" });
  const head = el("p", { class: "head" });
  head.append(el("strong", {}, r.recipient || "(no address)"), " ");
  codes(head, r.reply_code, r.status);
  head.append(el("span", { class: "reason" }, r.reason + (r.hardbounce ? " (hard bounce)" : "")));
  b.append(head);
  const dl = el("dl");
  fields(dl, [["Action", r.action], ["Reply", r.reply], ["Remote MTA", r.remote_mta],
              ["Meaning", r.meaning], ["Likely cause", r.cause], ["What to do", r.action_advice],
              ["Message", [r.message_id, r.subject].filter(Boolean).join(" ")]]);
  b.append(dl);
  if (r.class) b.append(el("p", { class: "retry" }, retryWords(r.retry, r.retry ? r.retry_when : "do not retry unchanged")));
  return b;
}

// A whole message has header lines and a blank line before its body.
function looksLikeMessage(text) {
  return /^[A-Za-z-]+:.*\r?\n/.test(text) && /\r?\n\r?\n/.test(text);
}

async function explain() {
  const input = document.getElementById("explain-input").value;
  const out = document.getElementById("explain-result");
  out.replaceChildren();
  if (!input.trim()) return;
  let r;
  if (looksLikeMessage(input)) {
    r = await api("/api/explain", { method: "POST", body: input,
                                    headers: { "Content-Type": "message/rfc822" } });
  } else {
    r = await api("/api/explain?" + new URLSearchParams({ q: input.trim() }).toString());
  }
  if (!r.ok || r.body.error) {
    out.append(el("div", { class: "block error" }, (r.body && r.body.error) || "error " + r.status));
    return;
  }
  if (Array.isArray(r.body.recipients)) {
    out.append(el("p", {}, r.body.kind + ": " + r.body.recipients.length + " recipient(s)"));
    for (const rc of r.body.recipients) out.append(bounceBlock(rc));
  } else {
    out.append(explanationBlock(r.body));
  }
}

// ---- queue ----

function when(t) {
  if (!t) return "";
  const s = Math.round(t - Date.now() / 1000);
  return s <= 0 ? "now" : s < 120 ? "in " + s + " s" : "in " + Math.round(s / 60) + " min";
}

async function action(id, what) {
  const status = document.getElementById("queue-status");
  let path = "/api/queue/" + encodeURIComponent(id) + "/" + what;
  if (what === "delete") {
    const bounce = confirm("Send the sender a failure notice? (Cancel deletes silently)");
    path += "?mode=" + (bounce ? "bounce" : "silent");
  }
  const r = await api(path, { method: "POST", headers: { "X-CSRF-Token": csrfToken() } });
  status.textContent = r.ok ? id + ": " + r.body.result : id + ": " + (r.body.error || r.status);
  loadQueue();
}

function actionButtons(m) {
  const td = el("td", { class: "actions" });
  for (const what of [m.held ? "release" : "hold", "flush", "delete"]) {
    const b = el("button", { type: "button", "data-action": what, "data-id": m.id }, what);
    b.addEventListener("click", () => action(m.id, what));
    td.append(b);
  }
  return td;
}

async function loadQueue() {
  const r = await api("/api/queue");
  const body = document.querySelector("#queue-table tbody");
  const summary = document.getElementById("queue-summary");
  if (!r.ok) { summary.textContent = r.body.error || "error " + r.status; return; }
  const rows = [];
  for (const m of r.body.messages) {
    m.recipients.forEach((rc, i) => {
      const tr = el("tr", { "data-id": m.id, "data-held": m.held ? "yes" : "no" });
      tr.append(el("td", { class: "id" }, i === 0 ? m.id + (m.held ? " (held)" : "") : ""));
      tr.append(el("td", { class: "address" }, rc.address));
      tr.append(el("td", { class: "state" }, rc.state));
      tr.append(el("td", {}, rc.attempts));
      tr.append(el("td", {}, when(rc.next_try)));
      const reply = el("td", { class: "reply" }, rc.last_reply || "");
      if (rc.explanation) reply.append(el("div", { class: "why" }, rc.reason + ": " + rc.explanation));
      tr.append(reply);
      tr.append(i === 0 ? actionButtons(m) : el("td"));
      rows.push(tr);
    });
  }
  body.replaceChildren(...rows);
  summary.textContent = r.body.count + " message(s) in the queue";
}

// ---- traffic ----

function drawChart(svg, minutes, side) {
  const W = 600, H = 160, left = 30, bottom = 20, top = 8;
  const max = Math.max(1, ...minutes.map(m => m[side][0] + m[side][1] + m[side][2]));
  const bw = (W - left) / minutes.length;
  const nodes = [];
  const axis = document.createElementNS(SVG, "line");
  for (const [k, v] of Object.entries({ x1: left, y1: H - bottom, x2: W, y2: H - bottom, class: "axis" }))
    axis.setAttribute(k, v);
  nodes.push(axis);
  for (const [y, label] of [[H - bottom, "0"], [top + 10, String(max)]]) {
    const t = document.createElementNS(SVG, "text");
    t.setAttribute("x", 2); t.setAttribute("y", y); t.textContent = label;
    nodes.push(t);
  }
  minutes.forEach((m, i) => {
    let y = H - bottom;
    [0, 1, 2].forEach(c => {
      const n = m[side][c];
      if (!n) return;
      const h = n / max * (H - bottom - top);
      y -= h;
      const r = document.createElementNS(SVG, "rect");
      r.setAttribute("x", (left + i * bw + 1).toFixed(1));
      r.setAttribute("y", y.toFixed(1));
      r.setAttribute("width", Math.max(1, bw - 2).toFixed(1));
      r.setAttribute("height", h.toFixed(1));
      r.setAttribute("class", "c" + ["2", "4", "5"][c]);
      const title = document.createElementNS(SVG, "title");
      title.textContent = new Date(m.t * 1000).toLocaleTimeString() + ": " + n + " " + ["2xx", "4xx", "5xx"][c];
      r.append(title);
      nodes.push(r);
    });
  });
  svg.replaceChildren(...nodes);
  svg.setAttribute("data-drawn", String(minutes.length));
}

async function loadTraffic() {
  const r = await api("/api/traffic");
  if (!r.ok) return;
  drawChart(document.getElementById("chart-in"), r.body.minutes, "in");
  drawChart(document.getElementById("chart-out"), r.body.minutes, "out");
  const ul = document.getElementById("top-replies");
  const items = r.body.top.map(t => {
    const li = el("li");
    li.append(el("strong", {}, t.destination + ": "));
    codes(li, t.code, t.enhanced);
    li.append("— " + (t.explanation || t.reason) + " (" + t.count + " in the last hour)");
    return li;
  });
  if (!items.length) items.push(el("li", {}, "no remote replies in the last hour"));
  ul.replaceChildren(...items);
}

// ---- limits ----

function usageBar(read) {
  const div = el("div", { class: "usage" });
  const pct = read.limit ? Math.min(100, 100 * read.count / read.limit) : 0;
  div.append(el("p", {}, read.metric + ": " + read.count + (read.limit ? " of " + read.limit : "") +
                " per " + read.window + " s (" + read.status + ")"));
  const bar = el("div", { class: "bar" + (pct >= 100 ? " over" : pct >= 80 ? " near" : "") });
  const fill = el("span");
  fill.style.width = pct.toFixed(1) + "%";
  bar.append(fill);
  div.append(bar);
  return div;
}

async function loadLimits() {
  const r = await api("/api/limits");
  const out = document.getElementById("limits-overview");
  if (!r.ok) { out.textContent = r.body.error || "error " + r.status; return; }
  const o = r.body;
  const dl = el("dl");
  fields(dl, [["Counters", o.backend + (o.server ? " " + o.server : "") + ", fail " + o.fail],
              ["Default plan", o.default_plan || "none"],
              ["Messages per session", o.max_messages_per_session || "no limit"],
              ["Sessions per minute per IP", o.max_sessions_per_minute_per_ip || "no limit"],
              ["Commands per second", o.max_commands_per_second || "no limit"],
              ["Greylisting", o.greylisting.on ? "on, delay " + o.greylisting.delay + " s" : "off"]]);
  const plans = o.plans.map(p => el("li", {}, p.name + ": " + p.limits.map(l => l.limit + " " + l.metric + " per " + l.window + " s").join(", ")));
  out.replaceChildren(dl, el("h3", {}, "Plans"), plans.length ? el("ul") : el("p", {}, "no plans"));
  if (plans.length) out.lastChild.replaceChildren(...plans);
}

async function limitsUsage(ev) {
  ev.preventDefault();
  const subject = document.getElementById("limits-subject").value.trim();
  const out = document.getElementById("limits-usage");
  if (!subject) return;
  const r = await api("/api/limits?" + new URLSearchParams({ subject: subject }).toString());
  if (!r.ok) { out.replaceChildren(el("p", {}, r.body.error || "error " + r.status)); return; }
  const o = r.body;
  const nodes = [el("p", {}, (o.user ? "account " + o.user : "address " + o.ip) +
                        (o.plan ? ", plan " + o.plan.name : ""))];
  for (const read of o.counters || []) nodes.push(usageBar(read));
  if (o.sessions_last_minute) nodes.push(usageBar(o.sessions_last_minute));
  out.replaceChildren(...nodes);
}

// ---- start ----

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("explain-submit").addEventListener("click", explain);
  document.getElementById("limits-form").addEventListener("submit", limitsUsage);
  window.addEventListener("hashchange", show);
  show();
  document.getElementById("queue-refresh").addEventListener("click", loadQueue);
  // The charts refresh themselves (cheap: a minute ring in memory); the queue on demand only,
  // since listing it reads every queue file.
  setInterval(() => {
    if (document.getElementById("traffic").classList.contains("shown")) loadTraffic();
  }, 10000);
});
