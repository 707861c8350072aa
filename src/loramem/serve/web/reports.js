// The datasheet (capacity per rank, with its plot) and the committed studies, rendered as pages.
import { api, blobUrl, el, errorBox, num } from "./api.js";

const SVG = "http://www.w3.org/2000/svg";
const COLORS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#4b5563"];

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

// Read-back recall against PhoneBook tokens written (log2 axis), one line per rank, tau dashed.
export function capacityPlot(sheet) {
  const W = 560, H = 300, L = 48, R = 96, T = 16, B = 40;
  const probes = sheet.probes || [];
  const xs = probes.map((p) => Math.log2(p.tokens));
  const [x0, x1] = [Math.min(...xs), Math.max(...xs) === Math.min(...xs) ? Math.min(...xs) + 1 : Math.max(...xs)];
  const X = (t) => L + ((Math.log2(t) - x0) / (x1 - x0)) * (W - L - R);
  const Y = (r) => T + (1 - r / 1.05) * (H - T - B);
  const plot = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "plot", id: "capacity-plot", role: "img" },
    svg("title", {}, "read-back recall by tokens written, per rank"));
  for (const r of [0, 0.25, 0.5, 0.75, 1]) {
    plot.append(svg("line", { x1: L, x2: W - R, y1: Y(r), y2: Y(r), class: "grid" }),
      svg("text", { x: L - 6, y: Y(r) + 4, "text-anchor": "end" }, r.toFixed(2)));
  }
  for (let e = Math.ceil(x0); e <= Math.floor(x1); e += 1) {
    plot.append(svg("text", { x: X(2 ** e), y: H - B + 16, "text-anchor": "middle" }, num(2 ** e)));
  }
  plot.append(svg("line", { x1: L, x2: W - R, y1: Y(sheet.tau), y2: Y(sheet.tau), class: "tau" }),
    svg("text", { x: L + (W - L - R) / 2, y: H - 6, "text-anchor": "middle" }, "PhoneBook tokens written"));
  const ranks = [...new Set(probes.map((p) => p.rank))].sort((a, b) => a - b);
  ranks.forEach((rank, i) => {
    const ps = probes.filter((p) => p.rank === rank).sort((a, b) => a.tokens - b.tokens);
    const color = COLORS[i % COLORS.length];
    plot.append(svg("polyline", { points: ps.map((p) => `${X(p.tokens)},${Y(p.recall)}`).join(" "), stroke: color,
      fill: "none", "stroke-width": 2 }));
    for (const p of ps) plot.append(svg("circle", { cx: X(p.tokens), cy: Y(p.recall), r: 3.5, fill: color }));
    plot.append(svg("text", { x: W - R + 10, y: T + 14 + 16 * i, fill: color }, `rank ${rank}`));
  });
  return plot;
}

function rankTable(sheet) {
  const head = ["rank", "parameters", "t_max (entries)", "t_max (tokens)", "tokens / param", "bits / param", "saturates at"];
  return el("table", { class: "data datasheet" }, el("thead", {}, el("tr", {}, head.map((h) => el("th", {}, h)))),
    el("tbody", {}, sheet.ranks.map((r) => el("tr", { "data-rank": r.rank },
      el("td", { class: "num" }, r.rank), el("td", { class: "num" }, num(r.parameters)),
      el("td", { class: "num" }, r.t_max_entries), el("td", { class: "num" }, num(r.t_max_tokens)),
      el("td", { class: "num" }, r.efficiency_tokens_per_param.toExponential(2)),
      el("td", { class: "num" }, r.bits_per_param.toExponential(2)),
      el("td", {}, r.saturation_entries ?? "not reached")))));
}

function image(path, alt) {
  const img = el("img", { alt, class: "report-plot" });
  blobUrl(`/v1/loramem/studies/${path}`).then((url) => { img.src = url; })
    .catch((err) => img.replaceWith(errorBox(err, `plot ${path}: `)));
  return img;
}

export async function datasheetView() {
  const d = await api("/v1/loramem/datasheet");
  const own = d.measured
    ? el("div", { class: "card", id: "own-datasheet" }, el("h2", {}, `${d.model}: measured`),
      el("p", { class: "muted" }, `capacity at read-back recall ≥ ${d.measured.tau}; kept at ${d.saved_path}`),
      rankTable(d.measured), capacityPlot(d.measured))
    : el("div", { class: "card", id: "own-datasheet" }, el("h2", {}, `${d.model}: not measured yet`),
      el("p", {}, "No datasheet was measured for this base model (fingerprint ", el("code", {}, d.fingerprint),
        "); ", el("code", {}, "loramem datasheet --quick"), " measures one. Until then ",
        el("code", {}, "write --rank auto"), " picks ranks from these built-in capacities:"),
      el("table", { class: "data narrow" }, el("thead", {}, el("tr", {}, el("th", {}, "rank"), el("th", {}, "entries stored"))),
        el("tbody", {}, Object.entries(d.defaults).map(([r, n]) => el("tr", {}, el("td", { class: "num" }, r),
          el("td", { class: "num" }, n))))));
  const committed = d.committed.map((c) => el("div", { class: "card committed", "data-path": c.path },
    el("h2", {}, `${c.model} — benchmarks/${c.path}`), rankTable(c.sheet),
    el("div", { class: "plots" }, capacityPlot(c.sheet), c.plot ? image(c.plot, `capacity by rank, ${c.model}`) : null),
    c.report ? el("p", {}, el("a", { href: `#/study/${c.report}` }, "the datasheet report")) : null));
  return el("section", { id: "datasheet-page" }, el("h1", {}, "Datasheet"), own,
    d.message ? el("div", { class: "notice" }, d.message) : el("h2", {}, "Committed datasheets"), committed);
}

export async function studiesView() {
  const s = await api("/v1/loramem/studies");
  if (s.message) return el("section", { id: "studies-page" }, el("h1", {}, "Studies"), el("div", { class: "notice" }, s.message));
  const groups = {};
  for (const r of s.data) (groups[r.folder || "(top)"] ||= []).push(r);
  return el("section", { id: "studies-page" }, el("h1", {}, "Studies"),
    el("p", { class: "muted" }, `The benchmark reports committed in ${s.root}.`),
    Object.entries(groups).map(([folder, reports]) => el("div", { class: "card" }, el("h2", {}, folder),
      el("ul", {}, reports.map((r) => el("li", {}, el("a", { href: `#/study/${r.path}` }, r.title),
        el("small", { class: "muted" }, ` ${r.path}`)))))));
}

// A relative link or image in a report, resolved against the report's folder ('' when it leaves the root).
function resolve(base, ref) {
  const parts = base.split("/").slice(0, -1);
  for (const p of ref.split("#")[0].split("/")) {
    if (p === "..") { if (!parts.length) return ""; parts.pop(); } else if (p && p !== ".") parts.push(p);
  }
  return parts.join("/");
}

export async function studyView(path) {
  if (/\.png$/i.test(path)) return el("section", { id: "study-page" }, el("h1", {}, path), image(path, path));
  const s = await api(`/v1/loramem/studies/${path}`);
  const body = el("article", { class: "report", id: "report" });
  body.innerHTML = s.html; // rendered by the server with raw HTML off (see serve/reports.py)
  for (const img of body.querySelectorAll("img")) {
    const src = img.getAttribute("src") || "";
    img.removeAttribute("src");
    if (/^[a-z]+:/i.test(src)) { img.replaceWith(el("span", { class: "muted" }, `[image ${src} not loaded: offline]`)); continue; }
    img.replaceWith(image(resolve(s.path, src), img.alt));
  }
  for (const a of body.querySelectorAll("a[href]")) {
    const href = a.getAttribute("href");
    if (href.startsWith("#")) { a.removeAttribute("href"); continue; }
    if (/^https?:/i.test(href)) { a.rel = "noreferrer"; a.target = "_blank"; continue; }
    const target = resolve(s.path, href);
    if (target && /\.(md|png)$/i.test(target)) a.href = `#/study/${target}`;
    else { a.removeAttribute("href"); a.title = `${href} (not served)`; }
  }
  return el("section", { id: "study-page" }, el("p", {}, el("a", { href: "#/studies" }, "← all studies"),
    el("small", { class: "muted" }, ` benchmarks/${s.path}`)), body);
}
