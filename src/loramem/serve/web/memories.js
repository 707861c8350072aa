// The memories table (sortable, filterable) and one memory's page (settings, sources, versions, supervision, delete).
import { confirmDialog } from "./app.js";
import { api, bytes, el, errorBox, kinds, num, pct } from "./api.js";

const COLUMNS = [
  ["name", "Name", (m) => m.name],
  ["collection", "Collection", (m) => m.collection],
  ["base_model", "Base model", (m) => m.base_model],
  ["rank", "Rank", (m) => m.rank, num],
  ["parameters", "Parameters", (m) => m.parameters, num],
  ["examples", "Examples by kind", (m) => m.examples, (v, m) => `${num(v)} (${kinds(m.examples_by_kind)})`],
  ["recall", "Read-back recall", (m) => m.recall, pct],
  ["created", "Created", (m) => m.created],
  ["size_bytes", "Size on disk", (m) => m.size_bytes, bytes],
];

export async function memoriesView() {
  const { data } = await api("/v1/loramem/memories");
  const sort = { key: "name", dir: 1 };
  const filter = el("input", { id: "filter", type: "search", placeholder: "filter: name, collection, model, kind…" });
  const count = el("span", { class: "muted", id: "memory-count" });
  const body = el("tbody");
  const head = el("tr");
  const table = el("table", { id: "memories", class: "data" }, el("thead", {}, head), body);

  function draw() {
    const words = filter.value.toLowerCase().split(/\s+/).filter(Boolean);
    const [, , get] = COLUMNS.find((c) => c[0] === sort.key);
    const rows = data
      .filter((m) => {
        const text = [m.name, m.collection, m.base_model, kinds(m.examples_by_kind)].join(" ").toLowerCase();
        return words.every((w) => text.includes(w));
      })
      .sort((a, b) => (get(a) > get(b) ? 1 : get(a) < get(b) ? -1 : 0) * sort.dir);
    head.replaceChildren(...COLUMNS.map(([k, label]) => el("th", {
      class: k === sort.key ? (sort.dir > 0 ? "sorted asc" : "sorted desc") : "", "data-key": k,
      onclick: () => { sort.dir = sort.key === k ? -sort.dir : 1; sort.key = k; draw(); },
    }, label)));
    body.replaceChildren(...rows.map((m) => el("tr", { "data-name": m.name },
      COLUMNS.map(([k, , get2, fmt], i) => el("td", { class: typeof get2(m) === "number" ? "num" : "", "data-key": k },
        i === 0 ? el("a", { href: `#/memory/${encodeURIComponent(m.name)}` }, m.name)
          : fmt ? fmt(get2(m), m) : get2(m))))));
    count.textContent = `${rows.length} of ${data.length} memories`;
  }
  filter.addEventListener("input", draw);
  draw();
  const empty = data.length ? null : el("p", { class: "muted" }, "The store holds no memories yet: ",
    el("a", { href: "#/write" }, "write one by upload"), ".");
  return el("section", {}, el("h1", {}, "Memories"), flash(), el("div", { class: "toolbar" }, filter, count), empty, table);
}

function pairs(obj) {
  return el("dl", { class: "pairs" }, Object.entries(obj).flatMap(([k, v]) => [
    el("dt", {}, k), el("dd", { "data-key": k }, typeof v === "object" && v !== null ? JSON.stringify(v) : String(v ?? "")),
  ]));
}

function supervisionCard(name) {
  const card = el("div", { class: "card", id: "supervision" }, el("h2", {}, "Supervision (a sample)"),
    el("p", { class: "muted" }, "Loading…"));
  api(`/v1/loramem/memories/${encodeURIComponent(name)}/supervision?limit=20`).then((s) => {
    const rows = s.data.map((e) => el("tr", {}, el("td", {}, e.kind), el("td", {}, e.prompt), el("td", {}, e.target),
      el("td", {}, e.origin ?? "")));
    card.replaceChildren(el("h2", {}, "Supervision (a sample)"),
      el("p", { class: "muted" }, `${s.data.length} of ${s.total} examples shown`, s.note ? ` · ${s.note}` : ""),
      ...(rows.length ? [el("table", { class: "data" },
        el("thead", {}, el("tr", {}, ...["kind", "prompt", "target", "from"].map((h) => el("th", {}, h)))),
        el("tbody", {}, rows))] : []));
  }).catch((err) => card.replaceChildren(el("h2", {}, "Supervision (a sample)"), errorBox(err)));
  return card;
}

// What a version changed, as `loramem log` says it: kind (method): counts.
function changeText(change) {
  const counts = Object.entries(change)
    .filter(([k]) => ["added", "superseded", "removed", "unchanged"].includes(k) || k.startsWith("documents"))
    .map(([k, n]) => `${k.replaceAll("_", " ")} ${n}`).join(", ");
  const kind = (change.kind || "write") + (change.method ? ` (${change.method})` : "");
  return counts ? `${kind}: ${counts}` : kind;
}

function versionsCard(name) {
  const title = () => el("h2", {}, "Versions");
  const card = el("div", { class: "card", id: "versions" }, title(), el("p", { class: "muted" }, "Loading…"));
  const status = el("div", { id: "rollback-status" });
  api(`/v1/memories/${encodeURIComponent(name)}/versions`).then(({ data }) => {
    const rows = data.slice().reverse().map((v) => {
      const back = v.current ? el("span", { class: "badge" }, "current") : el("button", {
        "data-version": v.version,
        onclick: async () => {
          const ok = await confirmDialog(`Roll ${name} back to version ${v.version}?`,
            `Version ${v.version} becomes the one that answers; later versions are kept until loramem gc.`, "Roll back");
          if (!ok) return;
          try {
            await api(`/v1/memories/${encodeURIComponent(name)}/rollback`, { body: { version: v.version } });
            sessionStorage.setItem("loramem.flash", `Rolled ${name} back to version ${v.version}.`);
            location.reload();
          } catch (err) {
            status.replaceChildren(errorBox(err, "Not rolled back: "));
          }
        },
      }, "Roll back");
      return el("tr", { "data-version": v.version }, el("td", { class: "num" }, v.version),
        el("td", {}, (v.created || "").slice(0, 16).replace("T", " ")), el("td", {}, changeText(v.change || {})),
        el("td", { class: "num" }, v.recall == null ? "" : pct(v.recall)),
        el("td", { class: "num" }, v.seconds == null ? "" : Number(v.seconds).toFixed(1)), el("td", {}, back));
    });
    card.replaceChildren(title(), el("table", { class: "data" },
      el("thead", {}, el("tr", {}, ...["version", "created (UTC)", "change", "recall", "seconds", ""]
        .map((h) => el("th", {}, h)))), el("tbody", {}, rows)), status);
  }).catch((err) => card.replaceChildren(title(), errorBox(err)));
  return card;
}

export async function memoryView(name) {
  const m = await api(`/v1/loramem/memories/${encodeURIComponent(name)}`);
  const c = m.config || {};
  const placement = {
    "target modules": c.placement?.target_modules ?? c.target_modules,
    layers: c.placement?.layers ?? c.layers, rank: m.rank, alpha: c.alpha ?? `${2 * m.rank} (2 × rank)`,
    variant: c.variant ?? "lora",  // memories written before variants are plain LoRA
  };
  const settings = {
    format: c.format, generator: c.generator, objective: c.objective, epochs: `${c.epochs_run} run of at most ${c.epochs}`,
    steps: c.steps, "learning rate": c.lr, "batch size": c.batch_size, precision: c.precision, seed: c.seed,
    "target recall": c.target_recall, "train seconds": c.train_seconds,
  };
  const catalogue = {
    "base model": m.base_model, fingerprint: m.base_fingerprint, collection: m.collection || "(none)",
    created: m.created, examples: `${num(m.examples)} (${kinds(m.examples_by_kind)})`, tokens: num(m.tokens),
    parameters: num(m.parameters), "read-back recall": pct(m.recall), "size on disk": bytes(m.size_bytes),
    folder: m.folder, files: m.files.map((f) => `${f.name} ${bytes(f.bytes)}`).join(", "), "source hash": m.source_hash,
  };
  const remove = el("button", { class: "danger", id: "delete" }, "Delete…");
  const status = el("div", { id: "delete-status" });
  remove.addEventListener("click", async () => {
    const ok = await confirmDialog(`Delete memory ${m.name}?`,
      `This removes ${m.name} from the catalogue and its adapter files (${bytes(m.size_bytes)}) from the store. `
      + "It cannot be undone.");
    if (!ok) return;
    try {
      await api(`/v1/memories/${encodeURIComponent(m.name)}`, { method: "DELETE" });
      sessionStorage.setItem("loramem.flash", `Deleted memory ${m.name}.`);
      location.hash = "#/memories";
    } catch (err) {
      status.replaceChildren(errorBox(err, "Not deleted: "));
    }
  });
  return el("section", { id: "memory-page", "data-name": m.name },
    flash(),
    el("h1", {}, m.name, " ", el("span", { class: "badge" }, `version ${m.version}`), " ",
      el("span", { class: "badge" }, pct(m.recall), " read back")),
    el("div", { class: "toolbar" },
      el("a", { href: `#/ask?memory=${encodeURIComponent(m.name)}`, class: "button" }, "Ask it"), remove, status),
    el("div", { class: "grid" },
      el("div", { class: "card", id: "placement" }, el("h2", {}, "Placement"), pairs(placement)),
      el("div", { class: "card", id: "settings" }, el("h2", {}, "Settings"), pairs(settings)),
      el("div", { class: "card", id: "catalogue" }, el("h2", {}, "Catalogue"), pairs(catalogue))),
    el("div", { class: "card", id: "sources" }, el("h2", {}, "Source documents"),
      el("p", {}, m.sources.join(", ")), el("pre", { class: "document" }, m.document)),
    versionsCard(m.name), supervisionCard(m.name));
}

export function flash() {
  const text = sessionStorage.getItem("loramem.flash");
  sessionStorage.removeItem("loramem.flash");
  return text ? el("div", { class: "notice", role: "status" }, text) : null;
}
