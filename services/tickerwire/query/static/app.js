// tickerwire live page: plain ES module, no build step. Document text is only ever set through
// textContent (never innerHTML), so nothing a document says can run in the page.

const KEY_STORE = "tickerwire.apiKey";
const $ = (id) => document.getElementById(id);

// ---------- small DOM helper ----------
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// ---------- API key: asked once, kept for the browser session ----------
let keyPrompt = null;
function apiKey() {
  return sessionStorage.getItem(KEY_STORE) || "";
}
function askForKey() {
  if (keyPrompt) return keyPrompt;
  const dialog = $("key-dialog");
  keyPrompt = new Promise((resolve) => {
    const done = () => {
      dialog.removeEventListener("close", done);
      const value = $("key-input").value.trim();
      if (value) sessionStorage.setItem(KEY_STORE, value);
      keyPrompt = null;
      resolve(Boolean(value));
    };
    dialog.addEventListener("close", done);
    $("key-input").value = "";
    dialog.showModal();
    $("key-input").focus();
  });
  return keyPrompt;
}

async function api(path, options = {}, retry = true) {
  const headers = new Headers(options.headers || {});
  const key = apiKey();
  if (key) headers.set("X-API-Key", key);
  const response = await fetch(path, { ...options, headers });
  if (response.status === 401 && retry) {
    sessionStorage.removeItem(KEY_STORE);
    if (await askForKey()) return api(path, options, false);
  }
  return response;
}

async function errorText(response) {
  try {
    const body = await response.json();
    if (typeof body.detail === "string") return body.detail;
    if (Array.isArray(body.detail)) return body.detail.map((d) => d.msg).join("; ");
  } catch (_) { /* not JSON */ }
  return `${response.status} ${response.statusText}`;
}

// ---------- server-sent events over fetch (EventSource cannot POST or send headers) ----------
async function readSSE(response, onEvent, signal) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  while (!signal || !signal.aborted) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value.replace(/\r\n?/g, "\n");
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let event = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith(":")) continue; // comment (heartbeat)
        const sep = line.indexOf(":");
        const field = sep < 0 ? line : line.slice(0, sep);
        const val = sep < 0 ? "" : line.slice(sep + 1).replace(/^ /, "");
        if (field === "event") event = val;
        else if (field === "data") data.push(val);
      }
      if (data.length) {
        let parsed;
        try { parsed = JSON.parse(data.join("\n")); } catch (_) { parsed = data.join("\n"); }
        onEvent(event, parsed);
      }
    }
  }
}

// ---------- formatting ----------
function ago(iso) {
  if (!iso) return "—";
  const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (s < 60) return `${Math.round(s)} s`;
  if (s < 3600) return `${Math.round(s / 60)} min`;
  if (s < 86400) return `${(s / 3600).toFixed(1)} h`;
  return `${Math.round(s / 86400)} d`;
}
function day(iso) {
  return iso ? iso.slice(0, 10) : "";
}
function num(value, digits = 2) {
  if (typeof value !== "number") return "—";
  return value.toLocaleString(undefined, { maximumFractionDigits: digits });
}
function compact(value) {
  if (typeof value !== "number") return "—";
  return new Intl.NumberFormat(undefined, { notation: "compact", maximumFractionDigits: 1 }).format(value);
}

// ---------- filters ----------
function toIso(dateValue, endOfDay = false) {
  if (!dateValue) return undefined;
  const d = new Date(`${dateValue}T00:00:00Z`);
  if (endOfDay) d.setUTCDate(d.getUTCDate() + 1);
  return d.toISOString();
}
function readFilters() {
  const filters = {};
  const tickers = $("f-tickers").value.split(/[\s,]+/).map((t) => t.trim().toUpperCase()).filter(Boolean);
  if (tickers.length) filters.tickers = tickers;
  const types = [...document.querySelectorAll("#f-doctypes input:checked")].map((o) => o.value);
  if (types.length) filters.doc_types = types;
  const after = toIso($("f-after").value);
  if (after) filters.published_after = after;
  const before = toIso($("f-before").value, true);
  if (before) filters.published_before = before;
  const asOf = $("f-asof").value;
  if (asOf) filters.as_of = new Date(asOf).toISOString();
  return filters;
}

// ---------- document viewer ----------
async function openDocument(docId, highlightChunk) {
  const dialog = $("doc-dialog");
  $("doc-title").textContent = docId;
  $("doc-meta").textContent = "Loading…";
  $("doc-chunks").replaceChildren();
  if (!dialog.open) dialog.showModal();
  const response = await api(`/v1/documents/${encodeURIComponent(docId)}`);
  if (!response.ok) {
    $("doc-meta").textContent = response.status === 404 ? "This document is no longer in the index." : await errorText(response);
    return;
  }
  const doc = await response.json();
  $("doc-title").textContent = doc.title || doc.doc_id;
  const meta = [doc.doc_type, (doc.tickers || []).join(", "), day(doc.published_at), doc.source, `${doc.chunks.length} chunks`];
  $("doc-meta").replaceChildren(meta.filter(Boolean).join(" · "));
  if (doc.url) $("doc-meta").append(" · ", el("a", { href: doc.url, target: "_blank", rel: "noopener noreferrer" }, "original"));
  let target = null;
  for (const chunk of doc.chunks) {
    const p = el("p", { class: "chunk", id: `chunk-${chunk.chunk_id}` }, chunk.text);
    if (chunk.chunk_id === highlightChunk) { p.classList.add("cited"); target = p; }
    $("doc-chunks").append(p);
  }
  if (target) target.scrollIntoView({ block: "center" });
}

// ---------- ask ----------
let asking = null;
let lastQuestion = null;

function renderUnderstood(understood) {
  const box = $("understood");
  box.replaceChildren();
  const parts = [];
  if (understood) {
    for (const [label, key] of [["tickers", "tickers"], ["companies", "companies"], ["periods", "periods"]]) {
      const values = understood[key] || [];
      if (values.length) parts.push(`${label}: ${values.join(", ")}`);
    }
  }
  if (!parts.length) { box.hidden = true; return; }
  box.append(
    el("span", { class: "meta" }, `Understood${understood.applied_as ? ` (applied as ${understood.applied_as})` : ""}: `),
    ...parts.map((p) => el("span", { class: "chip" }, p)),
    el("button", {
      type: "button", class: "chip remove", id: "understood-remove",
      "aria-label": "Remove what was understood and ask again",
      onclick: () => lastQuestion && ask({ ...lastQuestion, understand: false }),
    }, "✕ remove"),
  );
  box.hidden = false;
}

function renderAnswerText(answer, citations) {
  const byN = new Map(citations.map((c) => [c.n, c]));
  const out = $("answer-text");
  out.replaceChildren();
  const re = /\[(\d+)\]/g;
  let last = 0;
  let m;
  while ((m = re.exec(answer)) !== null) {
    out.append(answer.slice(last, m.index));
    const c = byN.get(Number(m[1]));
    out.append(c
      ? el("button", { type: "button", class: "cite", title: c.title || c.doc_id, "aria-label": `Source ${m[1]}: ${c.title || c.doc_id}`, onclick: () => openDocument(c.doc_id, c.chunk_id) }, `[${m[1]}]`)
      : m[0]);
    last = re.lastIndex;
  }
  out.append(answer.slice(last));
}

// ---------- feedback (POST /v1/feedback; the learning loop) ----------
let answeredId = null;

async function sendFeedback(body, what) {
  if (!answeredId) return;
  const state = $("feedback-state");
  try {
    const response = await api("/v1/feedback", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ query_id: answeredId, ...body }),
    });
    if (!response.ok) throw new Error(await errorText(response));
    state.textContent = `Thanks: ${what}.`;
  } catch (err) {
    state.textContent = `Feedback failed: ${err.message}`;
  }
}

function showFeedback(queryId) {
  answeredId = queryId || null;
  $("feedback").hidden = !answeredId;
  $("feedback-state").textContent = "";
}

function renderCitations(citations) {
  const list = $("citations");
  list.replaceChildren(...citations.map((c) => el("li", { value: c.n },
    el("button", { type: "button", class: "link", onclick: () => openDocument(c.doc_id, c.chunk_id) }, c.title || c.doc_id),
    el("span", { class: "meta" }, ` · ${day(c.published_at)}`),
    el("button", { type: "button", class: "wrong-citation", title: "This citation is wrong", "aria-label": `Source ${c.n} is wrong`, onclick: () => sendFeedback({ rating: -1, wrong_citations: [c.n] }, `source ${c.n} marked wrong`) }, "this citation is wrong"),
    c.snippet ? el("div", { class: "snippet" }, c.snippet) : null,
  )));
  $("citations-title").hidden = citations.length === 0;
}

async function ask(request) {
  if (asking) asking.abort();
  const controller = new AbortController();
  asking = controller;
  lastQuestion = request;
  const answer = $("answer");
  answer.hidden = false;
  answer.setAttribute("aria-busy", "true");
  answer.classList.remove("refused", "failed");
  $("answer-text").textContent = "";
  answer.dataset.tokens = "0";
  $("answer-meta").textContent = "Searching…";
  $("citations").replaceChildren();
  $("citations-title").hidden = true;
  showFeedback(null);
  renderUnderstood(null);
  $("ask-button").disabled = true;
  let text = "";
  let finished = false;
  try {
    const response = await api("/v1/ask", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
      body: JSON.stringify(request),
      signal: controller.signal,
    });
    if (!response.ok) throw new Error(await errorText(response));
    await readSSE(response, (event, data) => {
      if (event === "meta") {
        renderUnderstood(data.understood);
        $("answer-meta").textContent = "Answering…";
      } else if (event === "token") {
        text += data.text;
        $("answer-text").textContent = text;
        answer.dataset.tokens = String(Number(answer.dataset.tokens || 0) + 1); // streamed pieces
      } else if (event === "final") {
        finished = true;
        renderAnswerText(data.answer, data.citations || []);
        renderCitations(data.citations || []);
        renderUnderstood(data.understood);
        showFeedback(data.query_id);
        if (!data.grounded) answer.classList.add("refused");
        const t = data.timings || {};
        $("answer-meta").textContent = [
          data.grounded ? "grounded" : "not grounded",
          t.total_ms !== undefined ? `${Math.round(t.total_ms)} ms` : null,
          data.watermark && data.watermark.indexed_at ? `index as of ${ago(data.watermark.indexed_at)} ago` : null,
        ].filter(Boolean).join(" · ");
      } else if (event === "error") {
        finished = true;
        throw new Error(data.detail || "the answer failed");
      }
    }, controller.signal);
    if (!finished && !controller.signal.aborted) throw new Error("the answer stream ended early");
  } catch (err) {
    if (controller.signal.aborted) return;
    answer.classList.add("failed");
    $("answer-meta").textContent = `Error: ${err.message}`;
  } finally {
    if (asking === controller) {
      asking = null;
      answer.setAttribute("aria-busy", "false");
      $("ask-button").disabled = false;
    }
  }
}

// ---------- freshness strip ----------
async function pollStatus() {
  try {
    const response = await api("/v1/status");
    if (!response.ok) throw new Error(await errorText(response));
    const s = await response.json();
    const w = s.watermark || {};
    $("fresh-watermark").textContent = `watermark: ${w.indexed_at ? `${ago(w.indexed_at)} ago` : "empty index"}`;
    $("fresh-watermark").title = `newest indexed ${w.indexed_at || "—"}; newest published ${w.published_at || "—"}`;
    $("fresh-docs").textContent = `documents: ${s.documents ?? "—"} · chunks: ${s.points}`;
    const lags = Object.entries(s.lag || {}).map(([stage, records]) =>
      el("span", { class: `pill lag ${records ? "behind" : ""}`, title: `consumer lag of the ${stage} stage, in records` },
        `${stage} lag ${records === null ? "—" : records}`));
    if (s.lag_error) lags.push(el("span", { class: "pill behind", title: s.lag_error }, "lag unavailable"));
    $("fresh-lag").replaceChildren(...lags);
  } catch (err) {
    $("fresh-watermark").textContent = `status: ${err.message}`;
  }
}

// ---------- live feed ----------
function feedItem(event, data) {
  const when = new Date(data.indexed_at || Date.now()).toLocaleTimeString();
  if (event === "deleted") {
    return el("li", { class: "deleted", "data-doc-id": data.doc_id },
      el("span", { class: "doc-id" }, data.doc_id),
      el("div", { class: "meta" }, el("span", { class: "badge" }, "deleted"), ` ${when}`));
  }
  const tickers = (data.tickers || []).join(", ");
  return el("li", { "data-doc-id": data.doc_id },
    el("button", { type: "button", class: "link", onclick: () => openDocument(data.doc_id) }, data.title || data.doc_id),
    el("div", { class: "meta" },
      el("span", { class: "badge" }, (data.doc_type || "doc").replace("_", " ")),
      ` ${tickers ? `${tickers} · ` : ""}${data.chunks} chunk${data.chunks === 1 ? "" : "s"} · ${when}`),
  );
}

async function followEvents() {
  let delay = 1000;
  for (;;) {
    try {
      const response = await api("/v1/events", { headers: { Accept: "text/event-stream" } });
      if (!response.ok) throw new Error(await errorText(response));
      $("feed-state").classList.add("on");
      $("feed-state").title = "connected";
      delay = 1000;
      await readSSE(response, (event, data) => {
        if (event !== "indexed" && event !== "deleted") return;
        $("feed-empty").hidden = true;
        const feed = $("feed");
        feed.prepend(feedItem(event, data));
        while (feed.children.length > 50) feed.lastElementChild.remove();
        if (data.doc_type === "market_stats") loadMovers();
      });
    } catch (err) {
      $("feed-state").title = `disconnected: ${err.message}`;
    }
    $("feed-state").classList.remove("on");
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 30000);
  }
}

// ---------- top movers ----------
async function loadMovers() {
  const params = new URLSearchParams({ metric: $("m-metric").value, direction: $("m-direction").value, limit: "8" });
  const body = $("movers");
  try {
    const response = await api(`/v1/market/movers?${params}`);
    if (!response.ok) throw new Error(await errorText(response));
    const data = await response.json();
    if (!data.movers.length) {
      body.replaceChildren(el("tr", {}, el("td", { colspan: 4, class: "meta" }, "No market statistics yet.")));
      return;
    }
    body.replaceChildren(...data.movers.map((m) => el("tr", {},
      el("th", { scope: "row" }, el("button", { type: "button", class: "link", title: m.title || m.doc_id, onclick: () => openDocument(m.doc_id) }, (m.tickers || []).join(", ") || m.doc_id)),
      el("td", {}, num(m.price)),
      el("td", { class: typeof m.change_pct === "number" ? (m.change_pct < 0 ? "down" : "up") : "" }, typeof m.change_pct === "number" ? `${m.change_pct > 0 ? "+" : ""}${num(m.change_pct)}%` : "—"),
      el("td", {}, compact(m.volume)),
    )));
  } catch (err) {
    body.replaceChildren(el("tr", {}, el("td", { colspan: 4, class: "meta" }, `Movers: ${err.message}`)));
  }
}

// ---------- wiring ----------
function startFeedback() {
  $("thumb-up").addEventListener("click", () => sendFeedback({ rating: 1 }, "rated up"));
  $("thumb-down").addEventListener("click", () => sendFeedback({ rating: -1 }, "rated down"));
}

function start() {
  $("ask-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const question = $("question").value.trim();
    if (question) ask({ question, k: 8, filters: readFilters(), understand: true });
  });
  $("question").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); $("ask-form").requestSubmit(); }
  });
  $("movers-form").addEventListener("change", loadMovers);
  $("key-button").addEventListener("click", askForKey);
  startFeedback();
  pollStatus();
  setInterval(pollStatus, 5000);
  loadMovers();
  followEvents();
}

start();
