// The page: asks for the key when the server needs one, then routes #/view/arg to a view.
import { ApiError, api, el, errorBox, key, pct } from "./api.js";
import { askView } from "./ask.js";
import { memoriesView, memoryView } from "./memories.js";
import { datasheetView, studiesView, studyView } from "./reports.js";
import { writeView } from "./write.js";

const VIEWS = {
  memories: memoriesView, memory: memoryView, ask: askView, write: writeView,
  datasheet: datasheetView, studies: studiesView, study: studyView,
};
export const state = { info: null, modes: null, running: [] };

// Resolves once the server accepts the key (or needs none); asks for it while it refuses.
async function unlock() {
  for (;;) {
    try {
      state.info = await api("/v1/loramem/info");
      document.getElementById("forget-key").hidden = !key.get();
      return;
    } catch (err) {
      if (!(err instanceof ApiError) || err.status !== 401) throw err;
      const hadKey = Boolean(key.get());
      key.clear();
      await askKey(hadKey ? `That key was refused: ${err.message} (HTTP 401)` : "");
    }
  }
}

function askKey(message) {
  const dialog = document.getElementById("key-dialog");
  const box = document.getElementById("key-error");
  box.textContent = message;
  box.hidden = !message;
  document.getElementById("view").replaceChildren(
    el("p", { class: "muted" }, "This server needs its API key; nothing is shown without it."));
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => {
      key.set(document.getElementById("key-input").value);
      document.getElementById("key-input").value = "";
      resolve();
    }, { once: true });
    dialog.showModal();
  });
}

// A confirmation dialog: resolves true when the user confirms.
export function confirmDialog(title, text, okLabel = "Delete") {
  const dialog = document.getElementById("confirm-dialog");
  document.getElementById("confirm-title").textContent = title;
  document.getElementById("confirm-text").textContent = text;
  document.getElementById("confirm-ok").textContent = okLabel;
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.returnValue = "cancel";
    dialog.showModal();
  });
}

export async function modes() {
  if (!state.modes) state.modes = await api("/v1/loramem/modes");
  return state.modes;
}

// The writes queued or running, shown on every view and polled while there are any.
let polling = null;
export async function watchJobs() {
  let jobs = [];
  try {
    jobs = (await api("/v1/loramem/jobs")).data;
  } catch {
    return;
  }
  state.running = jobs.filter((j) => j.status === "queued" || j.status === "running");
  const banner = document.getElementById("jobs-banner");
  banner.hidden = state.running.length === 0;
  banner.replaceChildren(...state.running.map((j) => el("span", { class: "job" },
    `Writing ${j.name}: ${j.status}, ${pct(j.progress)} (epoch ${j.epoch} of at most ${j.epochs}). `,
    "Answering goes on meanwhile; this memory can be asked once it is written.")));
  clearTimeout(polling);
  if (state.running.length) polling = setTimeout(watchJobs, 500);
}

async function route() {
  const [path, query = ""] = (location.hash || "#/memories").split("?");
  const [, name = "memories", ...rest] = path.split("/");
  const arg = rest.length ? decodeURIComponent(rest.join("/")) : undefined;
  const params = new URLSearchParams(query);
  const view = document.getElementById("view");
  for (const a of document.querySelectorAll("nav a")) {
    a.classList.toggle("active", a.dataset.view === name || (name === "memory" && a.dataset.view === "memories")
      || (name === "study" && a.dataset.view === "studies"));
  }
  const render = VIEWS[name];
  if (!render) {
    view.replaceChildren(errorBox(new ApiError(404, `no page ${location.hash}`)));
    return;
  }
  try {
    const node = await render(arg, params);
    view.replaceChildren(node);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      key.clear();
      await start();
      return;
    }
    view.replaceChildren(el("section", {}, errorBox(err)));
  }
}

async function start() {
  try {
    await unlock();
  } catch (err) {
    document.getElementById("view").replaceChildren(errorBox(err));
    return;
  }
  document.getElementById("server").textContent = `${state.info.base_model} · ${state.info.store}`;
  await watchJobs();
  await route();
}

document.getElementById("forget-key").addEventListener("click", () => {
  key.clear();
  location.reload();
});
window.addEventListener("hashchange", route);
start();
