// The GPUBROKER page: the offer list with its filters, TOPSIS weights, provider health, price
// history and live updates, all through the public API with the visitor's own credentials.
// No dependencies, no build step. Data is always written with textContent, never as HTML.
"use strict";

const API = "/api/v2";
const HOUR_MS = 3600 * 1000;
const form = document.getElementById("filters");
const statusLine = document.getElementById("status");
const tbody = document.querySelector("#offers tbody");
const healthList = document.getElementById("health");
const historyBox = document.getElementById("history");
const weights = document.getElementById("weights");
const liveMark = document.getElementById("live");
let live = null; // the running stream's AbortController
let reload = 0; // debounce timer for the weight sliders
const providers = new Map(); // name -> freshness

function apiKey() { return localStorage.getItem("gpubroker.apiKey") || ""; }

function headers(extra) {
  const h = Object.assign({ Accept: "application/json" }, extra || {});
  if (apiKey()) h["X-API-Key"] = apiKey();
  return h;
}

async function api(path, params) {
  const query = params ? "?" + params.toString() : "";
  const response = await fetch(API + path + query, { headers: headers() });
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const detail = body && Array.isArray(body.detail) && body.detail[0];
    const what = detail ? (detail.field ? detail.field + ": " : "") + detail.message : "HTTP " + response.status;
    const error = new Error(what);
    error.status = response.status;
    throw error;
  }
  return body;
}

function filters() {
  const params = new URLSearchParams();
  for (const [name, value] of new FormData(form)) {
    if (name.startsWith("w_") && form.elements.sort.value !== "topsis") continue;
    if (String(value).trim() !== "") params.set(name, String(value).trim());
  }
  return params;
}

function money(value) {
  if (value === null || value === undefined) return "–";
  return "$" + (value >= 1 ? value.toFixed(2) : value.toFixed(4).replace(/0+$/, ""));
}

function age(iso) {
  if (!iso) return "–";
  const seconds = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  for (const [unit, size] of [["d", 86400], ["h", 3600], ["m", 60]]) {
    if (seconds >= size) return Math.floor(seconds / size) + unit;
  }
  return seconds + "s";
}

function cells(offer) {
  const perGpu = offer.price_per_hour === null || !offer.gpu_count ? null : offer.price_per_hour / offer.gpu_count;
  return [
    [money(offer.price_per_hour), true], [money(perGpu), true], [offer.gpu_type || offer.gpu_name, false],
    [String(offer.gpu_count), true], [offer.gpu_memory_gb === null ? "–" : String(offer.gpu_memory_gb), true],
    [offer.vcpus === null ? "–" : String(offer.vcpus), true], [offer.ram_gb === null ? "–" : String(offer.ram_gb), true],
    [offer.region, false], [offer.availability_status, false], [offer.spot ? "spot" : "", false],
    [offer.provider, false], [age(offer.last_updated), true],
  ];
}

function row(offer) {
  const tr = document.createElement("tr");
  tr.dataset.id = offer.id;
  fill(tr, offer);
  return tr;
}

function fill(tr, offer) {
  tr.replaceChildren(...cells(offer).map(([text, numeric]) => {
    const td = document.createElement("td");
    td.textContent = text;
    if (numeric) td.className = "num";
    return td;
  }));
  tr.dataset.price = offer.price_per_hour === null ? "" : String(offer.price_per_hour);
  tr.classList.toggle("dim", offer.quarantined !== null || offer.availability_status === "unavailable");
}

function flash(tr, direction) {
  tr.classList.remove("flash", "up", "down");
  void tr.offsetWidth; // restart the animation
  tr.classList.add("flash");
  if (direction) tr.classList.add(direction);
}

function showHealth(list) {
  for (const p of list) providers.set(p.name, p);
  healthList.replaceChildren(...[...providers.values()].map((p) => {
    const li = document.createElement("li");
    li.className = p.status + (p.stale ? " stale" : "");
    li.dataset.provider = p.name;
    const source = p.source === "snapshot" ? ", snapshot" : "";
    li.textContent = p.name + ": " + p.status + (p.stale ? ", stale" : "") + source + ", data " + age(p.data_as_of) + " old";
    li.title = p.last_error || "";
    return li;
  }));
}

function say(text, error) {
  statusLine.textContent = text;
  statusLine.classList.toggle("error", Boolean(error));
}

async function load() {
  const params = filters();
  params.set("limit", "100");
  try {
    const page = await api("/providers", params);
    tbody.replaceChildren(...page.items.map(row));
    showHealth(page.providers);
    const shown = page.items.length < page.total ? page.items.length + " of " + page.total : String(page.total);
    say(shown + " offers" + (page.warnings.length ? "; " + page.warnings.length + " warnings" : "") + ".");
  } catch (error) {
    tbody.replaceChildren();
    say(error.message + (error.status === 401 ? " (add an API key above)" : ""), true);
    return;
  }
  history(params.get("gpu"));
  const watched = filters();
  for (const name of ["sort", "w_price", "w_performance", "w_memory", "w_availability"]) watched.delete(name);
  follow(watched); // the stream takes the list's filters, not its order
}

async function follow(params) {
  if (live) live.abort();
  liveMark.hidden = true;
  const controller = new AbortController();
  live = controller;
  let lastId = null;
  while (!controller.signal.aborted) {
    try {
      const extra = { Accept: "text/event-stream" };
      if (lastId) extra["Last-Event-ID"] = lastId;
      const response = await fetch(API + "/providers/stream?" + params, { headers: headers(extra), signal: controller.signal });
      if (!response.ok) return; // a plan without the stream: the table stays as loaded
      liveMark.hidden = false;
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const event = parse(block);
          if (event.id) lastId = event.id;
          if (event.data) apply(event.type, JSON.parse(event.data));
        }
      }
    } catch (error) {
      if (controller.signal.aborted) return;
    }
    liveMark.hidden = true;
    await new Promise((resolve) => setTimeout(resolve, 3000)); // then resume after lastId
  }
}

function parse(block) {
  const event = { type: "message", data: "", id: null };
  for (const line of block.split("\n")) {
    if (line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "data") event.data += (event.data ? "\n" : "") + value;
    else if (field === "event") event.type = value;
    else if (field === "id") event.id = value;
  }
  return event;
}

function apply(type, data) {
  if (type === "health_status") {
    showHealth([data]);
    return;
  }
  const existing = tbody.querySelector('tr[data-id="' + CSS.escape(data.offer_id || "") + '"]');
  if (type === "offer_removed") {
    if (existing) existing.remove();
    return;
  }
  if (!data.offer) return;
  if (existing) {
    const before = existing.dataset.price === "" ? null : Number(existing.dataset.price);
    fill(existing, data.offer);
    const after = data.offer.price_per_hour;
    flash(existing, before !== null && after !== null && after !== before ? (after > before ? "up" : "down") : null);
  } else if (type === "offer_added") {
    const tr = row(data.offer);
    tbody.prepend(tr);
    flash(tr, null);
  }
}

async function history(gpu) {
  if (!gpu) return;
  const params = new URLSearchParams({ gpu, bucket: "hour", since: new Date(Date.now() - 7 * 24 * HOUR_MS).toISOString() });
  try {
    chart(await api("/analytics/price-history", params), gpu);
  } catch (error) {
    const p = document.createElement("p");
    p.textContent = "Price history: " + error.message;
    historyBox.replaceChildren(p);
  }
}

const SVG = "http://www.w3.org/2000/svg";
const COLOURS = ["#0b5cad", "#cf222e", "#1a7f37", "#9a6700", "#8250df", "#bf3989", "#1b7c83", "#57606a"];

function svg(name, attributes) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
  return node;
}

function chart(answer, gpu) {
  const series = answer.series.filter((s) => s.points.length);
  if (!series.length) {
    const p = document.createElement("p");
    p.textContent = "No prices observed for " + gpu + " in the last 7 days.";
    historyBox.replaceChildren(p);
    return;
  }
  const points = series.flatMap((s) => s.points);
  const times = points.map((p) => Date.parse(p.at));
  const t0 = Math.min(...times), t1 = Math.max(...times, t0 + HOUR_MS);
  const low = Math.min(...points.map((p) => p.min)), high = Math.max(...points.map((p) => p.min), low * 1.01 + 0.01);
  const [w, h, pad] = [600, 220, 40];
  const x = (t) => pad + ((t - t0) / (t1 - t0)) * (w - pad - 10);
  const y = (v) => h - 20 - ((v - low) / (high - low)) * (h - 40);
  const root = svg("svg", { viewBox: "0 0 " + w + " " + h, role: "img", "aria-labelledby": "history-desc" });
  const desc = svg("title", { id: "history-desc" });
  desc.textContent = "Lowest hourly price of " + gpu + " per provider, " + new Date(t0).toISOString().slice(0, 16) + " to " + new Date(t1).toISOString().slice(0, 16) + " UTC";
  root.append(desc);
  for (const [value, label] of [[low, money(low)], [high, money(high)]]) {
    root.append(svg("line", { x1: pad, x2: w - 10, y1: y(value), y2: y(value), stroke: "#d5dae0" }));
    const text = svg("text", { x: 2, y: y(value) + 4, "font-size": 11, fill: "#59636e" });
    text.textContent = label;
    root.append(text);
  }
  const legend = document.createElement("ul");
  legend.className = "legend";
  series.forEach((s, i) => {
    const colour = COLOURS[i % COLOURS.length];
    const coords = s.points.map((p) => x(Date.parse(p.at)).toFixed(1) + "," + y(p.min).toFixed(1));
    if (coords.length === 1) root.append(svg("circle", { cx: coords[0].split(",")[0], cy: coords[0].split(",")[1], r: 3, fill: colour }));
    else root.append(svg("polyline", { points: coords.join(" "), fill: "none", stroke: colour, "stroke-width": 2 }));
    const item = document.createElement("li");
    const swatch = document.createElement("span");
    swatch.textContent = "■ ";
    swatch.setAttribute("aria-hidden", "true");
    swatch.className = "swatch-" + (i % COLOURS.length);
    item.append(swatch, s.provider + " from " + money(Math.min(...s.points.map((p) => p.min))));
    legend.append(item);
  });
  historyBox.replaceChildren(root, legend);
}

async function gpuNames() {
  try {
    const catalogue = await api("/gpus");
    document.getElementById("gpu-names").replaceChildren(...catalogue.items.map((g) => {
      const option = document.createElement("option");
      option.value = g.name;
      return option;
    }));
  } catch (error) { /* the datalist is only a help */ }
}

form.addEventListener("submit", (event) => { event.preventDefault(); load(); });
form.elements.sort.addEventListener("change", () => { weights.hidden = form.elements.sort.value !== "topsis"; });
weights.addEventListener("input", (event) => {
  const output = event.target.parentElement.querySelector("output");
  if (output) output.textContent = event.target.value;
  clearTimeout(reload);
  reload = setTimeout(load, 150); // re-rank as a slider moves
});
document.getElementById("key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  localStorage.setItem("gpubroker.apiKey", document.getElementById("api-key").value.trim());
  load();
});
document.getElementById("forget-key").addEventListener("click", () => {
  localStorage.removeItem("gpubroker.apiKey");
  document.getElementById("api-key").value = "";
  load();
});
weights.hidden = form.elements.sort.value !== "topsis";
load();
gpuNames();
