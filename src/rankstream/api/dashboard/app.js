// rankstream live dashboard: plain DOM and SVG, no framework, no build step, no network
// beyond this origin (the server's Content-Security-Policy enforces that too).
//
// Every 2 s while the tab is visible it asks the read API for every panel (each board's
// top k, its risers and its group leaders) plus /status and /metrics, and redraws. A failed
// round marks the page "reconnecting" and the next rounds keep trying; the first good one
// after that says "reconnected". The filters live in the hash (#window=1h&k=10&region=JP),
// the read token in sessionStorage. Tests read the rendered rows through their data-*
// attributes (data-entity, data-rank, data-value) and <body data-refreshes>.
"use strict";

const REFRESH_MS = 2000;
const SLOW_MS = 250; // a panel answering slower than this is asked for less often
const HISTORY = 90; // points kept per health series (3 minutes at 2 s)
const ROW_H = 34; // px per ranked row: rows move by transform when ranks change
const TOKEN_KEY = "rankstream.token";

const VIDEOS_BOARD = { name: "videos", entity: "video_id", measure: "count", scale: 0,
  scopes: ["category", "region"], filter: null, value_name: "views",
  windows: ["1h", "24h", "7d", "30d", "hour", "day", "month", "all"] };
const $ = (id) => document.getElementById(id);
const state = {
  boards: null, // the answer of /leaderboards
  filters: { window: "", k: 10, scopes: {} },
  previous: new Map(), // panel key -> Map(row key -> rank) of the last render
  seen: new Map(), // board/entity -> [[time, value], ...] observed by this page
  health: new Map(), // series name -> [values]
  sample: null, // the last /status + /metrics sample, for rates
  analytics: false, // whether /status says the analytics store is on
  onlyVideos: false, // /leaderboards answered 503: the videos board from /views/top-k alone
  slow: new Map(), // panel URL -> {next, every, answer} for panels answering slowly
  detail: null, // {board, entity} shown in the detail panel
  timer: 0,
  reconnectedAt: 0,
  round: 0, // increases when filters change, so a stale answer is dropped
  down: false,
  refreshes: 0,
};

// ------------------------------------------------------------------ HTTP

class HttpError extends Error {
  constructor(status, body) {
    super(`${status} ${body && body.error ? body.error : ""}`.trim());
    this.status = status;
    this.body = body;
  }
}

async function get(path, as = "json") {
  const headers = {};
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = `Bearer ${token}`;
  const response = await fetch(path, { headers, cache: "no-store" });
  if (!response.ok) {
    let body = null;
    try { body = await response.json(); } catch (_) { /* not JSON */ }
    throw new HttpError(response.status, body);
  }
  return as === "json" ? response.json() : response.text();
}

function query(params) {
  const q = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") q.set(key, String(value));
  }
  return q.toString();
}

// ------------------------------------------------------------------ filters and the URL

function readHash() {
  const params = new URLSearchParams(location.hash.slice(1));
  const scopes = {};
  for (const [key, value] of params) if (key !== "window" && key !== "k" && value) scopes[key] = value;
  const k = Number(params.get("k"));
  state.filters = {
    window: params.get("window") || "",
    k: Number.isInteger(k) && k >= 1 && k <= 100 ? k : 10,
    scopes,
  };
}

function writeHash() {
  const { window, k, scopes } = state.filters;
  history.replaceState(null, "", `#${query({ window, k, ...scopes })}`);
}

function allWindows() {
  const names = [];
  for (const board of state.boards) for (const w of board.windows) if (!names.includes(w)) names.push(w);
  return names;
}

function allScopes() {
  const names = [];
  for (const board of state.boards) for (const s of board.scopes) if (!names.includes(s)) names.push(s);
  return names;
}

function buildFilters() {
  const windows = allWindows();
  if (!windows.includes(state.filters.window)) {
    state.filters.window = windows.includes("1h") ? "1h" : windows[0];
  }
  const select = $("window");
  select.replaceChildren(...windows.map((w) => new Option(w, w, false, w === state.filters.window)));
  $("k").value = String(state.filters.k);
  if (![...$("k").options].some((o) => o.value === String(state.filters.k))) {
    $("k").add(new Option(String(state.filters.k), String(state.filters.k), true, true));
  }
  const scopes = $("scopes");
  scopes.replaceChildren();
  for (const field of allScopes()) {
    const label = document.createElement("label");
    label.textContent = `${field} `;
    const input = document.createElement("input");
    Object.assign(input, { name: field, id: `scope-${field}`, placeholder: "all", size: 10 });
    input.value = state.filters.scopes[field] || "";
    input.setAttribute("list", `values-${field}`);
    const list = document.createElement("datalist");
    list.id = `values-${field}`;
    label.append(input, list);
    scopes.append(label);
  }
  writeHash();
}

function filtersChanged() {
  const scopes = {};
  for (const input of $("scopes").querySelectorAll("input")) {
    if (input.value.trim()) scopes[input.name] = input.value.trim();
  }
  state.filters = { window: $("window").value, k: Number($("k").value), scopes };
  writeHash();
  state.previous.clear(); // a new view: nothing in it is "new" or "moved"
  state.round += 1;
  refreshNow();
}

// ------------------------------------------------------------------ panels

const durations = { m: 1, h: 60, d: 1440 };
function minutes(window) {
  const match = /^(\d+)([mhd])$/.exec(window);
  return match ? Number(match[1]) * durations[match[2]] : null; // null: calendar or all
}

function boardWindow(board) {
  return board.windows.includes(state.filters.window) ? state.filters.window : board.windows[0];
}

function boardScopes(board) {
  const scopes = {};
  for (const s of board.scopes) if (state.filters.scopes[s]) scopes[s] = state.filters.scopes[s];
  return scopes;
}

/** The panels of one board: its top k; its risers (shortest sliding window over the next
 * longer one) when it has two sliding windows; its group leaders by its first scope. */
function panelsOf(board) {
  const window = boardWindow(board);
  const k = state.filters.k;
  const scopes = boardScopes(board);
  const panels = [];
  const top = board.name === "videos"
    ? `/views/top-k?${query({ window, k, ...scopes })}`
    : `/leaderboards/${board.name}/top-k?${query({ window, k, ...scopes })}`;
  const moved = window === state.filters.window ? "" : ` (board has no ${state.filters.window})`;
  panels.push({ key: `${board.name}:top`, board, kind: "top", url: top,
    title: `${board.name}`, caption: `top ${board.entity} by ${board.measure} · ${window}${moved}` });
  const sliding = board.windows.filter((w) => minutes(w) !== null).sort((a, b) => minutes(a) - minutes(b));
  if (sliding.length >= 2 && !state.onlyVideos) {
    const [short, long] = sliding;
    panels.push({ key: `${board.name}:rising`, board, kind: "rising",
      url: `/leaderboards/${board.name}/rising?${query({ short, long, k, ...scopes })}`,
      title: `${board.name} · hot streakers`, caption: `rate over ${short} ÷ rate over ${long}` });
  }
  if (board.scopes.length && !state.onlyVideos) {
    const by = board.scopes[0];
    panels.push({ key: `${board.name}:leaders`, board, kind: "leaders",
      url: `/leaderboards/${board.name}/leaders?${query({ by, window, k })}`,
      title: `${board.name} · leaders by ${by}`, caption: `each ${by}'s top ${board.entity} · ${window}` });
  }
  return panels;
}

function formatValue(board, value) {
  const n = Number(value);
  return n.toLocaleString("en-US", { minimumFractionDigits: board.scale, maximumFractionDigits: board.scale });
}

/** One answer as rows: {key, entity, rank, value (raw), bar, label, sub}. */
function rowsOf(panel, answer) {
  const board = panel.board;
  if (panel.kind === "rising") {
    return answer.items.map((i) => ({ key: i.entity, entity: i.entity, rank: i.rank, value: i.ratio,
      bar: i.ratio, label: i.entity, shown: `×${i.ratio.toFixed(2)}`,
      sub: `${formatValue(board, i.short_value)} in ${answer.short.window}, ${formatValue(board, i.long_value)} in ${answer.long.window}` }));
  }
  if (panel.kind === "leaders") {
    return answer.items.map((i) => ({ key: i.group, entity: i.entity, rank: i.rank, value: i.value,
      bar: Number(i.value), label: `${i.group}: ${i.entity}`, shown: formatValue(board, i.value),
      sub: `${(i.share * 100).toFixed(1)} % of ${formatValue(board, i.total)}`, group: i.group }));
  }
  if (board.name === "videos" && panel.url.startsWith("/views/")) {
    return answer.items.map((i) => ({ key: i.video_id, entity: i.video_id, rank: i.rank, value: i.views,
      bar: i.views, label: i.title || i.video_id, shown: formatValue(board, i.views),
      sub: i.channel ? `${i.channel} · ${i.video_id}` : i.video_id }));
  }
  return answer.items.map((i) => ({ key: i.entity, entity: i.entity, rank: i.rank, value: i.value,
    bar: Number(i.value), label: i.entity, shown: formatValue(board, i.value), sub: "" }));
}

function card(panel) {
  let article = document.querySelector(`[data-panel="${CSS.escape(panel.key)}"]`);
  if (!article) {
    article = document.createElement("article");
    article.className = "card";
    article.dataset.panel = panel.key;
    article.dataset.kind = panel.kind;
    article.dataset.board = panel.board.name;
    article.innerHTML = "<h3></h3><p class=caption></p><ol class=rows></ol><p class=empty hidden>nothing yet</p>";
    $("boards").append(article);
  }
  article.querySelector("h3").textContent = panel.title;
  const slow = state.slow.get(panel.url);
  article.querySelector(".caption").textContent = slow
    ? `${panel.caption} · slow to compute: every ${Math.round(slow.every / 1000)} s`
    : panel.caption;
  article.dataset.url = panel.url;
  return article;
}

/** A panel whose answer failed (the others still show): says why, keeps no rows. */
function failed(panel, error) {
  const article = card(panel);
  article.querySelector(".rows").replaceChildren();
  article.querySelector(".rows").style.height = "0px";
  const empty = article.querySelector(".empty");
  empty.hidden = false;
  empty.textContent = `unavailable: ${error.message || error}`;
  state.previous.delete(panel.key);
}

function render(panel, answer) {
  const article = card(panel);
  const rows = rowsOf(panel, answer);
  const before = state.previous.get(panel.key);
  const ranks = new Map(rows.map((r) => [r.key, r.rank]));
  state.previous.set(panel.key, ranks);
  const list = article.querySelector(".rows");
  const max = Math.max(...rows.map((r) => r.bar), 0) || 1;
  const existing = new Map([...list.children].map((li) => [li.dataset.key, li]));
  rows.forEach((row, index) => {
    let li = existing.get(row.key);
    existing.delete(row.key);
    if (!li) {
      li = document.createElement("li");
      li.dataset.key = row.key;
      li.innerHTML = "<button type=button class=row><span class=rank></span><span class=move></span>" +
        "<span class=bar><span class=fill></span><span class=name></span><span class=sub></span></span>" +
        "<span class=value></span></button>";
      li.querySelector("button").addEventListener("click", () => openDetail(panel.board, li.dataset.entity));
      li.style.transform = `translateY(${index * ROW_H}px)`;
      list.append(li);
    }
    Object.assign(li.dataset, { entity: row.entity, rank: String(row.rank), value: String(row.value) });
    li.querySelector(".rank").textContent = String(row.rank);
    const move = li.querySelector(".move");
    const old = before ? before.get(row.key) : undefined;
    move.className = "move";
    if (before && old === undefined) { move.textContent = "new"; move.classList.add("new"); }
    else if (old !== undefined && old > row.rank) { move.textContent = `▲${old - row.rank}`; move.classList.add("up"); }
    else if (old !== undefined && old < row.rank) { move.textContent = `▼${row.rank - old}`; move.classList.add("down"); }
    else move.textContent = "";
    li.classList.toggle("is-new", Boolean(before) && old === undefined);
    li.querySelector(".fill").style.width = `${Math.max(2, (100 * row.bar) / max)}%`;
    li.querySelector(".name").textContent = row.label;
    li.querySelector(".sub").textContent = row.sub;
    li.querySelector(".value").textContent = row.shown;
    li.querySelector("button").setAttribute("aria-label",
      `rank ${row.rank}: ${row.label}, ${row.shown}${move.textContent ? ` (${move.textContent})` : ""}`);
    li.style.transform = `translateY(${index * ROW_H}px)`;
    if (panel.kind !== "rising") remember(panel.board, row.entity, Number(row.value));
  });
  for (const li of existing.values()) li.remove();
  list.style.height = `${rows.length * ROW_H}px`;
  const empty = article.querySelector(".empty");
  empty.hidden = rows.length > 0;
  empty.textContent = "nothing in this window yet";
  if (panel.kind === "leaders") {
    const list2 = $(`values-${answer.by}`);
    if (list2) list2.replaceChildren(...rows.map((r) => new Option(r.group)));
  }
}

function remember(board, entity, value) {
  const key = `${board.name}/${boardWindow(board)}/${entity}`;
  const points = state.seen.get(key) || [];
  points.push([Date.now(), value]);
  if (points.length > HISTORY) points.shift();
  state.seen.set(key, points);
}

// ------------------------------------------------------------------ detail: metadata and trend

const GRAINS = { "10m": ["minute", 10], "1h": ["minute", 60], hour: ["minute", 60], "24h": ["hour", 24],
  day: ["hour", 24], "7d": ["hour", 168], "30d": ["day", 30], month: ["day", 31], all: ["day", 30] };
const GRAIN_MS = { minute: 60e3, hour: 3600e3, day: 86400e3 };

async function openDetail(board, entity) {
  state.detail = { board, entity };
  const panel = $("detail");
  panel.hidden = false;
  $("detail-title").textContent = `${entity}`;
  $("detail-meta").replaceChildren();
  $("detail-chart").replaceChildren();
  $("detail-note").textContent = "loading…";
  panel.focus();
  const meta = [["board", board.name], ["window", boardWindow(board)]];
  if (board.name !== "videos") {
    showMeta(meta);
    showSeen(board, entity, `Values of ${entity} seen by this page (no per-entity history API for this board).`);
    return;
  }
  try {
    const video = await get(`/videos/${encodeURIComponent(entity)}`);
    for (const key of ["title", "channel", "category", "duration_s"]) if (video[key] != null) meta.push([key, video[key]]);
  } catch (error) {
    meta.push(["metadata", error.status === 404 ? "none registered" : `unavailable (${error.message})`]);
  }
  showMeta(meta);
  if (!state.analytics) {
    showSeen(board, entity, "The analytics store is off on this server, so there is no trend: these are the values this page has seen.");
    return;
  }
  const [grain, count] = GRAINS[boardWindow(board)] || ["hour", 24];
  const step = GRAIN_MS[grain];
  const to = Math.ceil(Date.now() / step) * step;
  try {
    const trend = await get(`/analytics/videos/${encodeURIComponent(entity)}/trend?${query({ from: to - count * step, to, grain })}`);
    if (state.detail?.entity !== entity) return;
    $("detail-note").textContent = `Views per ${grain} (analytics store, loaded through ${clock(trend.loaded_through)})`;
    $("detail-chart").replaceChildren(barChart(trend.buckets.map((b) => [b.start, b.views]), "trend"));
  } catch (error) {
    showSeen(board, entity, `No trend from the analytics store (${error.message}): these are the values this page has seen.`);
  }
}

function showMeta(pairs) {
  $("detail-meta").replaceChildren(...pairs.flatMap(([k, v]) => {
    const dt = document.createElement("dt"); dt.textContent = k;
    const dd = document.createElement("dd"); dd.textContent = String(v);
    return [dt, dd];
  }));
}

function showSeen(board, entity, note) {
  $("detail-note").textContent = note;
  const points = state.seen.get(`${board.name}/${boardWindow(board)}/${entity}`) || [];
  $("detail-chart").replaceChildren(points.length ? barChart(points, "seen") : document.createTextNode("not seen yet"));
}

function svg(tag, attributes) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attributes)) node.setAttribute(k, String(v));
  return node;
}

function barChart(points, kind) {
  const width = 320, height = 120;
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "data-kind": kind, "data-points": points.length,
    "aria-label": `${kind === "trend" ? "trend" : "values seen"}: ${points.length} points, last ${points.length ? points[points.length - 1][1] : 0}` });
  const max = Math.max(...points.map((p) => p[1]), 1);
  const w = width / Math.max(points.length, 1);
  points.forEach(([at, value], i) => {
    const h = Math.max(1, (height - 14) * value / max);
    const bar = svg("rect", { x: i * w + 0.5, y: height - h, width: Math.max(1, w - 1), height: h, class: "chart-bar" });
    const title = svg("title", {}); title.textContent = `${clock(at)}: ${value}`;
    bar.append(title);
    chart.append(bar);
  });
  const label = svg("text", { x: 2, y: 11, class: "chart-label" });
  label.textContent = `max ${max.toLocaleString("en-US")}`;
  chart.append(label);
  return chart;
}

// ------------------------------------------------------------------ pipeline health

function prometheus(text) {
  const values = [];
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const match = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (match) values.push({ name: match[1], labels: match[2] || "", value: Number(match[3]) });
  }
  return values;
}

const sum = (metrics, name) => metrics.filter((m) => m.name === name).reduce((a, m) => a + m.value, 0);
const one = (metrics, name) => { const m = metrics.find((x) => x.name === name); return m ? m.value : null; };

const SERIES = [
  ["in", "events/s in", (v) => v.toFixed(0)],
  ["rejected", "rejected/s", (v) => v.toFixed(1)],
  ["apply_lag", "apply lag (events)", (v) => v.toFixed(0)],
  ["watermark", "watermark delay (s)", (v) => v.toFixed(1)],
  ["checkpoint", "checkpoint age (s)", (v) => v.toFixed(0)],
  ["queue", "queue depth (requests)", (v) => v.toFixed(0)],
  ["latency", "top-k latency, mean (ms)", (v) => v.toFixed(2)],
];

function health(status, metrics) {
  const now = Date.now();
  const sample = { at: now, accepted: status.events_accepted, rejected: status.events_rejected,
    qsum: sum(metrics, "rankstream_query_seconds_sum"), qcount: sum(metrics, "rankstream_query_seconds_count") };
  const last = state.sample;
  state.sample = sample;
  state.analytics = status.analytics != null;
  const values = {
    apply_lag: one(metrics, "rankstream_apply_lag_events") ??
      (status.events_applied != null ? status.events_accepted - status.events_applied : null),
    watermark: status.watermark ? Math.max(0, (now - status.watermark) / 1000) : null,
    checkpoint: one(metrics, "rankstream_checkpoint_age_seconds"),
    queue: status.queue_depth,
  };
  if (last && now > last.at) {
    const seconds = (now - last.at) / 1000;
    values.in = Math.max(0, (sample.accepted - last.accepted) / seconds);
    values.rejected = Math.max(0, (sample.rejected - last.rejected) / seconds);
    const count = sample.qcount - last.qcount;
    values.latency = count > 0 ? (1000 * (sample.qsum - last.qsum)) / count : null;
  }
  for (const [name] of SERIES) push(name, values[name]);
  for (const p of status.partitions || []) push(`partition ${p.partition} lag`, p.lag);
  drawHealth(status);
}

function push(name, value) {
  if (value === null || value === undefined || Number.isNaN(value)) return;
  const series = state.health.get(name) || [];
  series.push(value);
  if (series.length > HISTORY) series.shift();
  state.health.set(name, series);
}

function spark(name, label, format) {
  const series = state.health.get(name) || [];
  const figure = document.createElement("figure");
  figure.className = "spark";
  figure.dataset.series = name;
  const caption = document.createElement("figcaption");
  const last = series.length ? format(series[series.length - 1]) : "–";
  caption.innerHTML = "<span></span><strong></strong>";
  caption.firstChild.textContent = label;
  caption.lastChild.textContent = last;
  const width = 160, height = 36;
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": `${label}: ${last}` });
  if (series.length > 1) {
    const max = Math.max(...series) || 1;
    const min = Math.min(...series, 0);
    const slots = Math.max(series.length, 30); // the newest point at the right edge
    const x = (i) => (i * width) / (slots - 1);
    const y = (v) => height - 2 - ((height - 4) * (v - min)) / (max - min || 1);
    const offset = slots - series.length;
    chart.append(svg("polyline", { class: "spark-line", fill: "none",
      points: series.map((v, i) => `${x(i + offset).toFixed(1)},${y(v).toFixed(1)}`).join(" ") }));
  }
  figure.append(caption, chart);
  return figure;
}

function drawHealth(status) {
  const figures = SERIES.map(([name, label, format]) => spark(name, label, format));
  for (const p of status.partitions || []) {
    figures.push(spark(`partition ${p.partition} lag`, `partition ${p.partition} lag (${p.worker || "no worker"})`, (v) => v.toFixed(0)));
  }
  $("health").replaceChildren(...figures);
}

// ------------------------------------------------------------------ the refresh loop

function clock(ms) {
  return ms ? new Date(ms).toLocaleTimeString("en-GB", { hour12: false }) : "–";
}

function connection(kind, text) {
  const pill = $("connection");
  pill.className = `pill ${kind}`;
  pill.textContent = text;
  document.body.dataset.state = kind;
}

async function refresh() {
  const round = state.round;
  if (state.onlyVideos && state.refreshes % 30 === 29) state.boards = null; // boards yet?
  if (!state.boards) {
    try {
      state.boards = (await get("/leaderboards")).boards;
      state.onlyVideos = false;
    } catch (error) {
      // A process that serves no boards (503) still serves /views/top-k: show that alone.
      if (!(error instanceof HttpError) || error.status !== 503) throw error;
      state.boards = [VIDEOS_BOARD];
      state.onlyVideos = true;
    }
    buildFilters();
  }
  const panels = state.boards.flatMap(panelsOf);
  const [answers, status, metrics] = await Promise.all([
    Promise.allSettled(panels.map(answerOf)),
    get("/status"),
    get("/metrics", "text"),
  ]);
  if (round !== state.round) return; // the filters changed meanwhile: this answer is stale
  const refused = answers.find((a) => a.status === "rejected" && a.reason.status === 401);
  if (refused) throw refused.reason;
  const keep = new Set(panels.map((p) => p.key));
  for (const article of document.querySelectorAll("[data-panel]")) if (!keep.has(article.dataset.panel)) article.remove();
  panels.forEach((panel, i) => {
    if (answers[i].status === "fulfilled") render(panel, answers[i].value);
    else failed(panel, answers[i].reason);
  });
  health(status, prometheus(metrics));
  state.refreshes += 1;
  document.body.dataset.refreshes = String(state.refreshes);
}

/** A panel's answer: asked for now, or the last one while the panel is slowed down. A panel
 * whose answer took more than SLOW_MS (risers over a large board while it ingests cost the
 * server hundreds of ms each) is asked for again only after 20x that time (at most a
 * minute), so open dashboards cannot take the server over; its caption says so. */
async function answerOf(panel) {
  const slow = state.slow.get(panel.url);
  if (slow && Date.now() < slow.next) return slow.answer;
  const started = performance.now();
  const answer = await get(panel.url);
  const took = performance.now() - started;
  if (took > SLOW_MS) {
    const every = Math.min(60000, Math.max(REFRESH_MS, 20 * took));
    state.slow.set(panel.url, { next: Date.now() + every, every, answer });
  } else state.slow.delete(panel.url);
  return answer;
}

async function tick() {
  clearTimeout(state.timer);
  if (document.hidden) { connection("paused", "paused while this tab is hidden"); return; }
  try {
    await refresh();
    if (state.down) { state.down = false; state.reconnectedAt = Date.now(); }
    if (state.reconnectedAt && Date.now() - state.reconnectedAt < 10000) {
      connection("reconnected", `reconnected at ${clock(state.reconnectedAt)} · live`);
    } else {
      connection("live", `live · updated ${clock(Date.now())}`);
    }
  } catch (error) {
    if (error instanceof HttpError && (error.status === 401 || error.status === 403)) {
      connection("auth", "this server needs a read token");
      showToken(true);
      return; // waits for a token to be given
    }
    state.down = true;
    state.boards = null; // asked again on reconnecting: a restarted server may declare others
    connection("down", error instanceof HttpError
      ? `server answered ${error.message} · retrying…`
      : "server unreachable · reconnecting…");
  }
  if (!document.hidden) state.timer = setTimeout(tick, REFRESH_MS);
}

function refreshNow() {
  clearTimeout(state.timer);
  tick();
}

function showToken(open) {
  $("token-form").hidden = !open;
  $("token-toggle").setAttribute("aria-expanded", String(open));
  if (open) $("token").focus();
}

function start() {
  readHash();
  $("filters").addEventListener("change", filtersChanged);
  $("filters").addEventListener("submit", (event) => { event.preventDefault(); filtersChanged(); });
  $("token-toggle").addEventListener("click", () => showToken($("token-form").hidden));
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const token = $("token").value.trim();
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    $("token").value = "";
    showToken(false);
    refreshNow();
  });
  $("token-clear").addEventListener("click", () => { sessionStorage.removeItem(TOKEN_KEY); $("token").value = ""; });
  $("detail-close").addEventListener("click", () => { $("detail").hidden = true; state.detail = null; });
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && !$("detail").hidden) { $("detail").hidden = true; state.detail = null; }
  });
  document.addEventListener("visibilitychange", () => { if (!document.hidden) refreshNow(); else tick(); });
  window.addEventListener("hashchange", () => {
    readHash();
    if (state.boards) buildFilters();
    state.previous.clear();
    state.round += 1;
    refreshNow();
  });
  tick();
}

start();
