// engram's local page. Captured text can contain anything, so content is only ever put in the
// page as text (textContent, createElement), never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k === "style") Object.assign(e.style, v); // CSSOM, which the page's CSP allows
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c ?? "")));
  return e;
}

async function api(path, options = {}) {
  const r = await fetch(path, { credentials: "same-origin", ...options });
  if (!r.ok) {
    let msg = r.statusText;
    try { msg = (await r.json()).error || msg; } catch (_) { /* not JSON */ }
    throw new Error(msg);
  }
  return r.json();
}

function when(iso) {
  const d = new Date(iso);
  return d.toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
}

function localInput(value) {
  // datetime-local gives local time without a zone; the API reads RFC 3339.
  return value ? new Date(value).toISOString() : "";
}

// ---- tabs ----
function show(tab) {
  for (const b of document.querySelectorAll("nav button")) b.setAttribute("aria-selected", String(b.dataset.tab === tab));
  for (const s of document.querySelectorAll(".tab")) s.hidden = s.id !== "tab-" + tab;
  if (tab === "timeline") loadTimeline();
  if (tab === "status") loadStatus();
  if (tab === "search") $("q").focus();
  if (tab === "ask") $("question").focus();
}
for (const b of document.querySelectorAll("nav button")) b.addEventListener("click", () => show(b.dataset.tab));

// ---- search ----
let results = [];
let selected = -1;
let lastQuery = "";

function snippetNode(pieces, fallback) {
  const span = el("div", { class: "hit-snippet" });
  if (!pieces) { span.textContent = fallback || ""; return span; }
  for (const p of pieces) span.append(p.marked ? el("mark", {}, p.text) : document.createTextNode(p.text));
  return span;
}

async function runSearch(ev) {
  if (ev) ev.preventDefault();
  const q = $("q").value.trim();
  lastQuery = q;
  const list = $("results");
  list.replaceChildren();
  if (!q) { $("search-info").textContent = ""; return; }
  const params = new URLSearchParams({ q, limit: "30" });
  const kind = $("kind").value;
  if (kind === "screen") params.set("content_type", "ocr");
  if (kind === "file") params.set("content_type", "file");
  if ($("app").value.trim()) params.set("app_name", $("app").value.trim());
  if ($("since").value) params.set("start_time", localInput($("since").value));
  if ($("until").value) params.set("end_time", localInput($("until").value));
  $("search-info").textContent = "searching…";
  try {
    const out = await api("/api/search?" + params);
    results = out.data;
    $("search-info").textContent = results.length ? `${out.pagination.total} found` : "no matches";
    results.forEach((r, i) => list.append(resultNode(r, i)));
    select(results.length ? 0 : -1);
  } catch (e) {
    $("search-info").replaceChildren(el("span", { class: "error" }, e.message));
  }
}

// The line the local model chose to say what a memory is about; not repeated when the
// snippet already shows it.
function captionNode(caption, shown) {
  if (!caption || (shown || "").replaceAll("**", "").includes(caption.replace(/…$/, ""))) return [];
  return [el("div", { class: "caption" }, caption)];
}

function resultNode(r, i) {
  const c = r.content;
  const isScreen = r.type === "OCR";
  const title = isScreen ? c.window_name || c.app_name : c.title || c.file_path;
  const source = isScreen ? `${c.app_name} · screen` : c.location ? `${c.file_path} · ${c.location}` : c.file_path;
  const li = el("li", { "data-id": c.id, onclick: () => { select(i); openMemory(c.id); } },
    ...(isScreen ? [thumbNode(c)] : []),
    el("div", {},
      el("div", { class: "hit-title" }, title),
      el("div", { class: "hit-source" }, `${source} — ${when(c.timestamp)}`),
      ...captionNode(c.caption, c.text),
      snippetNode(c.snippet, c.text)));
  return li;
}

// A result's thumbnail with the matched words boxed (boxes come in frame pixels).
function thumbNode(c) {
  const wrap = el("div", { class: "thumb" });
  const img = el("img", { src: `/api/frames/${c.id}?thumb=1`, alt: "" });
  wrap.append(img);
  img.addEventListener("load", () => {
    if (!c.frame_size) return;
    // object-fit: cover anchored top left: one scale for both axes.
    const s = Math.max(img.clientWidth / c.frame_size.width, img.clientHeight / c.frame_size.height);
    for (const b of c.matched_boxes || []) {
      wrap.append(el("div", { class: "box", style: { left: `${b.x * s - 2}px`, top: `${b.y * s - 2}px`, width: `${b.w * s + 4}px`, height: `${b.h * s + 4}px` } }));
    }
  });
  return wrap;
}

function select(i) {
  const items = $("results").children;
  if (selected >= 0 && items[selected]) items[selected].classList.remove("selected");
  selected = i;
  if (i >= 0 && items[i]) { items[i].classList.add("selected"); items[i].scrollIntoView({ block: "nearest" }); }
}

$("search-form").addEventListener("submit", runSearch);
document.addEventListener("keydown", (e) => {
  if ($("detail").open) return;
  const typing = ["INPUT", "TEXTAREA", "SELECT"].includes(document.activeElement.tagName);
  if (e.key === "/" && !typing) { e.preventDefault(); show("search"); return; }
  if ($("tab-search").hidden) return;
  if (e.key === "ArrowDown" || (e.key === "j" && !typing)) { e.preventDefault(); select(Math.min(selected + 1, results.length - 1)); }
  else if (e.key === "ArrowUp" || (e.key === "k" && !typing)) { e.preventDefault(); select(Math.max(selected - 1, 0)); }
  else if (e.key === "Enter" && selected >= 0 && document.activeElement !== $("q")) { openMemory(results[selected].content.id); }
});
$("q").addEventListener("keydown", (e) => {
  // Enter in the box searches; a second Enter on the same query opens the selected result.
  if (e.key === "Enter" && $("q").value.trim() === lastQuery && selected >= 0) { e.preventDefault(); openMemory(results[selected].content.id); }
});

// ---- one memory ----
function frameNode(m, highlight) {
  const box = el("div", { class: "frame" });
  const img = el("img", { src: m.frame.url, alt: "screen" });
  box.append(img);
  const terms = (highlight || "").toLowerCase().split(/\s+/).map((t) => t.replace(/[^\p{L}\p{N}]/gu, "")).filter(Boolean);
  const words = (m.frame.words || []).filter((w) => {
    const t = w.text.toLowerCase().replace(/[^\p{L}\p{N}]/gu, "");
    return t && terms.some((q) => q === t || (/\p{Script=Han}/u.test(t) && (q.includes(t) || t.includes(q))));
  });
  img.addEventListener("load", () => {
    const sx = img.clientWidth / m.frame.width, sy = img.clientHeight / m.frame.height;
    for (const w of words) {
      box.append(el("div", { class: "box", style: { left: `${w.box.x * sx - 3}px`, top: `${w.box.y * sy - 3}px`, width: `${w.box.w * sx + 6}px`, height: `${w.box.h * sy + 6}px` } }));
    }
  });
  return box;
}

async function openMemory(id, highlight = lastQuery) {
  try {
    const m = await api(`/api/memories/${id}`);
    $("detail-title").textContent = m.title || m.source;
    $("detail-meta").textContent = `${m.kind} · ${m.app || m.source} · ${when(m.time)} · engram show ${m.id}`;
    $("detail-caption").textContent = m.caption || "";
    $("detail-caption").hidden = !m.caption;
    $("detail-frame").replaceChildren(...(m.frame ? [frameNode(m, highlight)] : []));
    $("detail-text").textContent = m.text;
    if (!$("detail").open) $("detail").showModal();
  } catch (e) {
    alert(e.message);
  }
}

// ---- timeline ----
let frames = [];

async function loadTimeline() {
  const dayInput = $("tl-day");
  if (!dayInput.value) dayInput.value = new Date().toISOString().slice(0, 10);
  const start = new Date(dayInput.value + "T00:00");
  const end = new Date(start.getTime() + 86400000);
  const params = new URLSearchParams({ start_time: start.toISOString(), end_time: end.toISOString(), limit: "2000" });
  try {
    const out = await api("/api/timeline?" + params);
    frames = out.frames.slice().reverse(); // oldest first, so the scrubber moves forward in time
  } catch (e) {
    $("tl-label").replaceChildren(el("span", { class: "error" }, e.message));
    return;
  }
  const hours = $("tl-hours");
  hours.replaceChildren();
  $("scrubber").max = String(Math.max(frames.length - 1, 0));
  $("scrubber").value = String(Math.max(frames.length - 1, 0));
  $("tl-label").textContent = frames.length ? `${frames.length} frame${frames.length === 1 ? "" : "s"}` : "no screen memories on this day";
  const byHour = new Map();
  frames.forEach((f, i) => {
    const h = new Date(f.time).getHours();
    if (!byHour.has(h)) byHour.set(h, []);
    byHour.get(h).push([f, i]);
  });
  for (const [h, list] of byHour) {
    const thumbs = el("div", { class: "thumbs" });
    for (const [f, i] of list) {
      thumbs.append(el("img", { src: `/api/frames/${f.id}?thumb=1`, alt: f.title || "", title: `${f.app} — ${f.title || ""}${f.caption ? `\n${f.caption}` : ""}`, "data-i": i, onclick: () => scrubTo(i) }));
    }
    hours.append(el("div", { class: "hour" }, el("h4", {}, `${String(h).padStart(2, "0")}:00`), thumbs));
  }
  scrubTo(frames.length - 1);
}

function scrubTo(i) {
  const cur = $("tl-current");
  if (i < 0 || !frames[i]) { cur.replaceChildren(); return; }
  $("scrubber").value = String(i);
  const f = frames[i];
  cur.replaceChildren(
    el("p", {}, el("strong", {}, f.title || f.app), ` — ${f.app}, ${when(f.time)}`),
    ...captionNode(f.caption, ""),
    el("img", { src: `/api/frames/${f.id}`, alt: f.title || "frame", onclick: () => openMemory(f.id, "") }));
  for (const t of document.querySelectorAll(".thumbs img")) t.classList.toggle("current", t.dataset.i === String(i));
}

$("scrubber").addEventListener("input", (e) => scrubTo(Number(e.target.value)));
$("tl-day").addEventListener("change", loadTimeline);

// ---- ask ----
async function runAsk(ev) {
  ev.preventDefault();
  const question = $("question").value.trim();
  if (!question) return;
  $("answer").textContent = "";
  $("quote").hidden = true;
  $("when").hidden = true;
  $("citations").replaceChildren();
  try {
    const r = await fetch("/api/ask", { method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ question }) });
    if (!r.ok) throw new Error((await r.json()).error);
    const reader = r.body.getReader();
    const decoder = new TextDecoder();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buf.indexOf("\n\n")) >= 0) {
        handleEvent(buf.slice(0, cut));
        buf = buf.slice(cut + 2);
      }
    }
  } catch (e) {
    $("answer").replaceChildren(el("span", { class: "error" }, e.message));
  }
}

function handleEvent(block) {
  let event = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (line.startsWith("event:")) event = line.slice(6).trim();
    else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
  }
  const text = data.join("\n");
  if (event === "text") $("answer").append(text);
  else if (event === "answer") {
    const a = JSON.parse(text);
    $("answer").textContent = a.answer;
    if (a.quote && a.quote !== a.answer) { $("quote").textContent = `“${a.quote.trim()}”`; $("quote").hidden = false; }
    if (a.when) {
      const span = `${when(a.when.since)} to ${when(a.when.until)}`;
      $("when").textContent = a.when.applied
        ? `From memories made ${a.when.phrase} (${span}).`
        : `Nothing made ${a.when.phrase} (${span}) answers this, so all your memories were searched.`;
      $("when").hidden = false;
    }
    for (const c of a.citations) {
      $("citations").append(el("li", {}, el("a", { onclick: () => openMemory(c.id, "") }, `[${c.n}] ${c.title || c.source}`), ` — ${c.source}, ${when(c.time)}`));
    }
  } else if (event === "error") {
    $("answer").replaceChildren(el("span", { class: "error" }, JSON.parse(text).error));
  }
}
$("ask-form").addEventListener("submit", runAsk);

// ---- status ----
function captureText(s) {
  if (s.paused_until === 0) return ["paused", "capture paused"];
  if (s.paused_until) return ["paused", `paused until ${new Date(s.paused_until * 1000).toLocaleTimeString()}`];
  if (!s.daemon) return ["", "daemon not running"];
  return [s.daemon.capture === "on" ? "on" : "", `capture ${s.daemon.capture}`];
}

async function loadStatus() {
  try {
    const s = await api("/api/status");
    const st = s.status;
    const [cls, text] = captureText(s);
    $("capture-state").className = "pill " + cls;
    $("capture-state").textContent = text;
    const mb = (b) => `${(b / 1048576).toFixed(1)} MB`;
    const rows = [
      ["memories", `${st.items} (${st.files} files, ${st.screens} screens, ${st.docs} documents)`],
      ["screenshots", `${st.frames}, ${mb(st.frame_bytes)}`],
      ["disk", `${mb(st.database_bytes)} database, ${mb(st.index_bytes)} index`],
      ["index", `${st.indexed_chunks} chunks, generation ${st.index_generation} of ${st.generation}`],
      ["daemon", s.daemon ? `running (pid ${s.daemon.pid}), ${s.daemon.frames_stored} frames stored, ${s.daemon.frames_unchanged} unchanged skipped, ${s.daemon.frames_excluded} excluded` : "not running"],
      ["capture", text],
    ];
    $("status-list").replaceChildren(...rows.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
    const ex = s.exclusions;
    $("exclusions").replaceChildren(
      el("dt", {}, "apps"), el("dd", {}, ex.apps.join(", ")),
      el("dt", {}, "private windows"), el("dd", {}, ex.private_window_markers.join(", ")),
      el("dt", {}, "window titles"), el("dd", {}, ex.titles.length ? ex.titles.join(", ") : "(none)"),
      el("dt", {}, "paths"), el("dd", {}, ex.paths.join(", ")));
  } catch (e) {
    $("status-list").replaceChildren(el("dd", { class: "error" }, e.message));
  }
}

for (const b of document.querySelectorAll("[data-pause]")) {
  b.addEventListener("click", async () => {
    const body = b.dataset.pause === "forever" ? {} : { minutes: Number(b.dataset.pause) };
    await api("/api/pause", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    loadStatus();
  });
}
document.querySelector("[data-resume]").addEventListener("click", async () => {
  await api("/api/pause", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ resume: true }) });
  loadStatus();
});

loadStatus();
