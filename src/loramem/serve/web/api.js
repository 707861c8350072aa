// The server's JSON API with the key, and small DOM helpers (text only: no data goes in as HTML).

const KEY = "loramem.key";

export class ApiError extends Error {
  constructor(status, message, code) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export const key = {
  get: () => sessionStorage.getItem(KEY),
  set: (value) => sessionStorage.setItem(KEY, value),
  clear: () => sessionStorage.removeItem(KEY),
};

function headers(extra = {}) {
  const k = key.get();
  return k ? { ...extra, Authorization: `Bearer ${k}` } : extra;
}

async function failure(response) {
  let message = `${response.status} ${response.statusText}`;
  let code = null;
  try {
    const body = await response.json();
    message = body.error?.message || message;
    code = body.error?.code || null;
  } catch {
    /* not JSON: keep the status line */
  }
  return new ApiError(response.status, message, code);
}

// JSON from `path`; `body` (an object, or FormData for uploads) makes it a POST unless `method` says.
export async function api(path, { method, body } = {}) {
  const init = { method: method || (body === undefined ? "GET" : "POST"), headers: headers() };
  if (body instanceof FormData) {
    init.body = body;
  } else if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, `the server could not be reached (${e.message})`, "network");
  }
  if (!response.ok) throw await failure(response);
  return response.json();
}

// An object URL for a file the key guards (an <img src> cannot send the key itself).
export async function blobUrl(path) {
  const response = await fetch(path, { headers: headers() });
  if (!response.ok) throw await failure(response);
  return URL.createObjectURL(await response.blob());
}

// el("td", {class: "num", onclick: f}, "text", child, ...): children are strings (as text) or nodes.
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// A message box for an error: what went wrong and the HTTP status it came with.
export function errorBox(err, prefix = "") {
  const status = err instanceof ApiError && err.status ? ` (HTTP ${err.status})` : "";
  return el("div", { class: "error", role: "alert", "data-status": err.status ?? "" },
    `${prefix}${err.message}${status}`);
}

export function bytes(n) {
  if (n === null || n === undefined) return "";
  const units = ["B", "KB", "MB", "GB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
  return `${n.toFixed(i && n < 10 ? 1 : 0)} ${units[i]}`;
}

export const pct = (x) => (x === null || x === undefined ? "" : `${(100 * x).toFixed(x === 1 || x === 0 ? 0 : 1)}%`);
export const num = (x) => (x === null || x === undefined ? "" : Number(x).toLocaleString("en"));
export const kinds = (byKind) => Object.entries(byKind || {}).map(([k, n]) => `${k} ${n}`).join(", ");
