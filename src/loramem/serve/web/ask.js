// Ask side by side: one question in every mode the server registers, each with its cost.
import { modes, state, watchJobs } from "./app.js";
import { api, bytes, el, errorBox, num } from "./api.js";

// One control per option name; modes sharing an option share its control (as the CLI's flags do).
function optionControl(opt, users) {
  const id = `opt-${opt.name}`;
  let input;
  let shown = null;
  if (opt.choices.length) {
    input = el("select", { id, name: opt.name },
      opt.choices.map((c) => el("option", { value: c, selected: c === opt.default }, c)));
  } else if (opt.type === "float" && opt.default >= 0 && opt.default <= 1) {
    input = el("input", { id, name: opt.name, type: "range", min: 0, max: 1, step: 0.01, value: opt.default });
    shown = el("output", { for: id, id: `${id}-value` }, String(opt.default));
    input.addEventListener("input", () => { shown.textContent = input.value; });
  } else if (opt.type === "int" || opt.type === "float") {
    input = el("input", { id, name: opt.name, type: "number", value: opt.default, step: opt.type === "int" ? 1 : "any" });
  } else if (opt.type === "bool") {
    input = el("input", { id, name: opt.name, type: "checkbox", checked: Boolean(opt.default) });
  } else {
    input = el("input", { id, name: opt.name, value: opt.default ?? "" });
  }
  const read = () => {
    if (opt.type === "bool") return input.checked;
    if (opt.type === "int") return parseInt(input.value, 10);
    if (opt.type === "float") return parseFloat(input.value);
    return input.value;
  };
  const label = el("label", { class: "option", title: opt.help },
    el("span", {}, opt.name.replaceAll("_", " "), " ", el("small", { class: "muted" }, `(${users.join(", ")})`)),
    input, shown, el("small", { class: "muted help" }, opt.help));
  return { label, read };
}

function answerCard(mode) {
  return el("div", { class: "card answer", "data-mode": mode.name, "data-state": "waiting" },
    el("h3", {}, mode.name), el("p", { class: "muted" }, "waiting…"));
}

function fillCard(card, a) {
  const facts = [["latency", `${a.seconds.toFixed(3)} s`], ["prompt tokens", num(a.prompt_tokens)],
    ["answer tokens", num(a.completion_tokens)], ["memories", a.memories.join(", ") || "none"]];
  if (a.out_of_scope && a.out_of_scope.length) {  // fact-table memories the question is not about (scope.py)
    facts.push(["out of scope", a.out_of_scope.map((o) => `${o.name} (${o.score.toFixed(2)})`).join(", ")
      + ": the base model answered"]);
  }
  if (a.abstained) {  // routed, and no memory held the answer (routing/abstention.py)
    facts.push(["abstained", `no memory holds this question: answered by ${a.mode === "rag" ? "rag over the collection" : "the base model"}`]);
  }
  if (a.kv) {
    facts.push(["document tokens kept", `${num(a.kv.kept_tokens)} of ${num(a.kv.document_tokens)}`],
      ["cache", bytes(a.kv.cache_bytes)]);
  }
  card.dataset.state = "done";
  card.replaceChildren(el("h3", {}, a.mode), el("pre", { class: "answer-text" }, a.answer || "(empty answer)"),
    el("dl", { class: "pairs" }, facts.flatMap(([k, v]) => [el("dt", {}, k), el("dd", { "data-key": k }, v)])),
    ...(a.truncated ? [el("p", { class: "muted" }, "stopped at the token limit")] : []));
}

export async function askView(_arg, params) {
  const [{ data: memories }, registry] = await Promise.all([api("/v1/loramem/memories"), modes()]);
  const preset = params?.get("memory");
  const question = el("textarea", { id: "question", rows: 2, placeholder: "Ask a question…" });
  const picks = memories.map((m) => el("label", { class: "pick" },
    el("input", { type: "checkbox", name: "memory", value: m.name, checked: m.name === preset || memories.length === 1 }),
    ` ${m.name}`, m.collection ? el("small", { class: "muted" }, ` (${m.collection})`) : null));
  const routeSel = el("select", { id: "route" }, el("option", { value: "" }, "the memories ticked"),
    registry.routers.map((r) => el("option", { value: r }, `routed: ${r}`)));
  const topK = el("input", { id: "top-k", type: "number", min: 1, value: 1, disabled: true });
  routeSel.addEventListener("change", () => {  // a router picks the memories: the ticks no longer apply
    for (const p of picks) p.querySelector("input").disabled = Boolean(routeSel.value);
    topK.disabled = !routeSel.value;
  });
  const maxTokens = el("input", { id: "max-tokens", type: "number", min: 1, max: 4096, value: 64 });
  const merge = el("select", { id: "merge" }, registry.merges.map((m) => el("option", { value: m, selected: m === registry.merge_default }, m)));
  const modeBoxes = registry.data.map((m) => el("label", { class: "pick", title: m.description },
    el("input", { type: "checkbox", name: "mode", value: m.name, id: `mode-${m.name}`, checked: true }), ` ${m.name}`));
  const users = {};
  for (const m of registry.data) for (const o of m.options) (users[o.name] ||= { opt: o, modes: [] }).modes.push(m.name);
  const controls = Object.fromEntries(Object.values(users).map(({ opt, modes: ms }) => [opt.name, optionControl(opt, ms)]));
  const button = el("button", { id: "ask-button", class: "primary" }, "Ask side by side");
  const routing = el("div", { id: "routing" });
  const answers = el("div", { id: "answers", class: "answers" });
  const message = el("div", { id: "ask-message" });

  let runs = 0;
  async function run() {
    answers.dataset.run = String(++runs); // set before any await, so a caller can wait for this run's end
    answers.dataset.state = "running";
    message.replaceChildren();
    routing.replaceChildren();
    const text = question.value.trim();
    if (!text) {
      message.replaceChildren(el("div", { class: "error", role: "alert" }, "Write a question first."));
      answers.dataset.state = "done";
      return;
    }
    await watchJobs();
    if (state.running.length) {
      message.replaceChildren(el("div", { class: "notice", role: "status" },
        `A write is running (${state.running.map((j) => j.name).join(", ")}): answering goes on meanwhile, `
        + "from the memories already written."));
    }
    const chosen = picks.map((p) => p.querySelector("input")).filter((i) => i.checked).map((i) => i.value);
    const routed = routeSel.value;
    const picked = registry.data.filter((m) => document.getElementById(`mode-${m.name}`).checked);
    const cards = picked.map(answerCard);
    answers.replaceChildren(...cards);
    button.disabled = true;
    for (const [i, mode] of picked.entries()) {
      if (mode.needs_memory && !routed && !chosen.length) {
        cards[i].dataset.state = "skipped";
        cards[i].replaceChildren(el("h3", {}, mode.name),
          el("p", { class: "muted" }, "needs a memory: tick one, or route the question"));
        continue;
      }
      const options = Object.fromEntries(mode.options.map((o) => [o.name, controls[o.name].read()]));
      const body = { question: text, mode: mode.name, options, merge: merge.value,
        max_tokens: parseInt(maxTokens.value, 10) || 64,
        memories: routed || !mode.needs_memory ? [] : chosen };
      if (routed && mode.needs_memory) Object.assign(body, { route: routed, top_k: parseInt(topK.value, 10) || 1 });
      try {
        const a = await api("/v1/loramem/ask", { body });
        fillCard(cards[i], a);
        if (a.routes.length && !routing.childElementCount) {
          routing.replaceChildren(el("div", { class: "card" },
            el("h3", {}, `Routing (${routed})${a.abstained ? ": abstained" : ""}`),
            el("ol", {}, a.routes.map((r) => el("li", { "data-name": r.name }, `${r.name} `,
              el("span", { class: "score" }, `score ${r.score.toFixed(4)}`))))));
        }
      } catch (err) {
        cards[i].dataset.state = "error";
        cards[i].replaceChildren(el("h3", {}, mode.name), errorBox(err));
      }
    }
    button.disabled = false;
    answers.dataset.state = "done";
  }
  button.addEventListener("click", run);
  question.addEventListener("keydown", (e) => { if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); run(); } });

  return el("section", { id: "ask-page" }, el("h1", {}, "Ask, side by side"),
    el("div", { class: "card" }, question,
      el("div", { class: "row" }, el("div", { class: "group" }, el("h3", {}, "Memories"),
        picks.length ? picks : el("p", { class: "muted" }, "none in the store: only the base model answers")),
      el("div", { class: "group" }, el("h3", {}, "Routing and merge"),
        el("label", {}, "use ", routeSel), el("label", {}, "top-k ", topK), el("label", {}, "merge ", merge),
        el("label", {}, "answer tokens, at most ", maxTokens)),
      el("div", { class: "group" }, el("h3", {}, "Modes"), modeBoxes)),
      el("div", { class: "options" }, Object.values(controls).map((c) => c.label)),
      el("div", { class: "toolbar" }, button)),
    message, routing, answers);
}
