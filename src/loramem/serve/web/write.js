// Write by upload: documents or records, with format, rank and epochs; a live progress bar from the job API.
import { state, watchJobs } from "./app.js";
import { api, bytes, el, errorBox, pct } from "./api.js";

function progressBox(job) {
  const bar = el("div", { class: "bar-fill" });
  const label = el("span", { class: "bar-label" });
  const box = el("div", { class: "card job-card", "data-job": job.id },
    el("h3", {}, `Writing ${job.name}`), el("div", { class: "bar", role: "progressbar" }, bar, label),
    el("p", { class: "muted job-status" }));
  return { box, bar, label };
}

// Polls the job until it ends; the last state shows the read-back recall (or why it failed).
async function follow(job, view) {
  const { bar, label, box } = view;
  const status = box.querySelector(".job-status");
  for (;;) {
    bar.style.width = `${Math.round(100 * job.progress)}%`;
    box.querySelector(".bar").setAttribute("aria-valuenow", String(Math.round(100 * job.progress)));
    label.textContent = pct(job.progress);
    box.dataset.status = job.status;
    status.textContent = `${job.status}: epoch ${job.epoch} of at most ${job.epochs}`
      + (job.status === "running" ? " (it stops early once every example reads back)" : "");
    if (job.status === "succeeded") {
      const m = job.memory;
      box.append(el("p", { class: "result", id: "write-result" }, "Written ",
        el("a", { href: `#/memory/${encodeURIComponent(m.name)}` }, m.name), `: read-back recall `,
        el("strong", { class: "recall" }, pct(m.recall)),
        ` on ${m.examples} examples, rank ${m.rank}, ${job.epoch} epochs.`));
      break;
    }
    if (job.status === "failed") {
      box.append(el("div", { class: "error", role: "alert" }, `The write failed: ${job.error}. Nothing was stored.`));
      break;
    }
    await new Promise((r) => setTimeout(r, 250));
    try {
      job = await api(`/v1/memories/jobs/${encodeURIComponent(job.id)}`);
    } catch (err) {
      box.append(errorBox(err));
      break;
    }
  }
  watchJobs();
}

export async function writeView() {
  const info = state.info;
  const accept = [...info.documents, ...info.records].join(",");
  const files = el("input", { id: "files", type: "file", name: "file", multiple: true, accept, required: true });
  const name = el("input", { id: "name", name: "name", placeholder: "from the first file's name", pattern: "[A-Za-z0-9][A-Za-z0-9._-]*" });
  const format = el("input", { id: "format", name: "format", value: "auto", list: "formats" });
  const rank = el("input", { id: "rank", name: "rank", value: String(info.rank), title: "a positive integer, or auto" });
  const epochs = el("input", { id: "epochs", name: "epochs", type: "number", min: 1, value: info.epochs });
  const replace = el("input", { id: "replace", name: "replace", type: "checkbox" });
  const submit = el("button", { id: "write-button", class: "primary", type: "submit" }, "Write");
  const message = el("div", { id: "write-message" });
  const jobsBox = el("div", { id: "write-jobs" });
  const form = el("form", { id: "write-form", class: "card" },
    el("label", {}, "Documents (", info.documents.join(" "), ") or records (", info.records.join(" "),
      " with question and answer fields)", files),
    el("div", { class: "row" }, el("label", {}, "Name ", name), el("label", {}, "Format ", format),
      el("label", {}, "Rank ", rank), el("label", {}, "Epochs (at most) ", epochs),
      el("label", { class: "pick" }, replace, " replace a memory of that name")),
    el("datalist", { id: "formats" }, info.formats.map((f) => el("option", { value: f }))),
    el("p", { class: "muted" }, `Uploads up to ${bytes(info.max_upload_bytes)} in all. Writes train on their own `
      + "copy of the model, so answering goes on meanwhile."),
    el("div", { class: "toolbar" }, submit));

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    message.replaceChildren();
    const body = new FormData();
    for (const f of files.files) body.append("file", f, f.name);
    for (const input of [name, format, rank, epochs]) if (input.value.trim()) body.append(input.name, input.value.trim());
    if (replace.checked) body.append("replace", "true");
    submit.disabled = true;
    try {
      const job = await api("/v1/memories", { body });
      const view = progressBox(job);
      jobsBox.prepend(view.box);
      form.reset();
      watchJobs();
      follow(job, view);
    } catch (err) {
      message.replaceChildren(errorBox(err, "Not written: "));
    } finally {
      submit.disabled = false;
    }
  });

  // Writes started before this view was opened (another tab, a reload) are followed too.
  const { data } = await api("/v1/loramem/jobs");
  for (const job of data.filter((j) => j.status === "queued" || j.status === "running")) {
    const view = progressBox(job);
    jobsBox.append(view.box);
    follow(job, view);
  }
  return el("section", { id: "write-page" }, el("h1", {}, "Write by upload"), form, message, jobsBox);
}
