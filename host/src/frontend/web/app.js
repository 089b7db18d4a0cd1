// The paasm dashboard: a small single-page client of the frontend's JSON-RPC API (POST /api).
// Every text from the server is inserted with textContent, never as HTML.
"use strict";

const TRANSIENT = ["PREINIT", "PROLOGUE", "ADAPTING", "EPILOGUE"];
const LED = {
  PREINIT: "light-blue", INIT: "light-blue", PROLOGUE: "green", RUNNING: "green",
  ADAPTING: "green", EPILOGUE: "green", STOPPED: "gray", ERROR: "red",
};
const BANNER = {
  PREINIT: "service created, waiting for its manager",
  INIT: "ready to start",
  PROLOGUE: "service is starting up...",
  RUNNING: "running",
  ADAPTING: "service is applying changes...",
  EPILOGUE: "service is releasing resources...",
  STOPPED: "stopped",
  ERROR: "error",
};

let token = localStorage.getItem("paasm-token");
let pollTimer = null;

const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value !== undefined && value !== null && value !== false) node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

class ApiError extends Error {
  constructor(error) {
    super(error.message);
    this.code = error.code;
    this.field = error.data && error.data.field;
  }
}

async function api(method, params) {
  const headers = { "Content-Type": "application/json" };
  if (token) headers.Authorization = "Bearer " + token;
  const response = await fetch("/api", {
    method: "POST",
    headers,
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params: params || {} }),
  });
  if (!response.ok) throw new Error("the frontend answered HTTP " + response.status);
  const reply = await response.json();
  if (reply.error) {
    const error = new ApiError(reply.error);
    if (error.code === -32001 && method !== "login") {
      setToken(null);
      route();
    }
    throw error;
  }
  return reply.result;
}

function setToken(value) {
  token = value;
  if (value) localStorage.setItem("paasm-token", value);
  else localStorage.removeItem("paasm-token");
}

function show(id) {
  for (const view of ["login-view", "main-view", "credit-view", "service-view"]) {
    $(view).hidden = view !== id;
  }
  $("account").hidden = id === "login-view";
}

function stopPolling() {
  if (pollTimer) clearTimeout(pollTimer);
  pollTimer = null;
}

function when(seconds) {
  return seconds ? new Date(seconds * 1000).toLocaleString() : "";
}

function ledClass(service) {
  if (!service.reachable && !["PREINIT", "INIT", "STOPPED", "ERROR"].includes(service.state)) return "orange";
  return LED[service.state] || "gray";
}

function busy(service) {
  return service.transient || (!service.reachable && service.state === "INIT");
}

async function refreshAccount() {
  try {
    const me = await api("whoami");
    $("whoami").textContent = me.username + (me.admin ? " (admin)" : "");
    $("credit").textContent = me.credit;
  } catch (e) {
    /* the login view takes over on -32001 */
  }
}

// ---- views ---------------------------------------------------------------------------

async function route() {
  stopPolling();
  if (!token) {
    show("login-view");
    return;
  }
  refreshAccount();
  const hash = location.hash || "#/";
  const service = hash.match(/^#\/service\/(\d+)$/);
  if (service) return serviceView(Number(service[1]));
  if (hash === "#/credit") return creditView();
  return mainView();
}

async function mainView() {
  show("main-view");
  $("main-error").textContent = "";
  try {
    const [catalogue, clouds, services] = await Promise.all([api("catalogue"), api("clouds"), api("service.list")]);
    renderCatalogue(catalogue, clouds);
    renderServices(services);
    pollServices(services);
  } catch (e) {
    $("main-error").textContent = e.message;
  }
}

function renderCatalogue(catalogue, clouds) {
  const box = $("catalogue");
  box.replaceChildren();
  for (const entry of catalogue) {
    const cloud = el("select", { id: "create-cloud-" + entry.name }, ...clouds.map((c) => el("option", { value: c, text: c })));
    const name = el("input", { id: "create-name-" + entry.name, placeholder: entry.name });
    const button = el("button", {
      type: "button",
      id: "create-" + entry.name,
      text: "create",
      onclick: async () => {
        button.disabled = true;
        $("main-error").textContent = "";
        try {
          const params = { type: entry.name, cloud: cloud.value };
          if (name.value.trim()) params.name = name.value.trim();
          await api("service.create", params);
          refreshAccount();
          await mainView();
        } catch (e) {
          $("main-error").textContent = e.message;
        } finally {
          button.disabled = false;
        }
      },
    });
    box.append(el("div", { class: "card" },
      entry.icon ? el("img", { src: entry.icon, alt: "" }) : null,
      el("h3", { text: entry.name + " " }, el("small", { class: "muted", text: entry.version })),
      el("p", { text: entry.description }),
      el("p", { class: "muted", id: "origin-" + entry.name, text: entry.digest
        ? entry.source + " " + entry.digest + ", signed by " + (entry.signer || "nobody")
        : "installed from a directory (unsigned)" }),
      el("label", {}, "cloud", cloud),
      el("label", {}, "name", name),
      button));
  }
}

function renderServices(services) {
  const body = $("services-body");
  body.replaceChildren();
  $("no-services").hidden = services.length > 0;
  for (const s of services) {
    const state = el("td", { id: "state-" + s.sid }, s.state, " ",
      busy(s) ? el("span", { class: "spinner", title: "working" }) : null);
    body.append(el("tr", {
      id: "service-row-" + s.sid,
      class: "clickable",
      onclick: () => { location.hash = "#/service/" + s.sid; },
    },
    el("td", {}, el("span", { class: "led " + ledClass(s), id: "led-" + s.sid, title: s.state })),
    el("td", { text: s.sid }),
    el("td", {}, el("a", { href: "#/service/" + s.sid, text: s.name })),
    el("td", { text: s.type }),
    el("td", { text: s.cloud }),
    state,
    el("td", { text: when(s.created) }),
    el("td", { class: "muted", text: s.reason })));
  }
}

/// Polls the services in a transient state until each is stable.
function pollServices(services) {
  const pending = services.filter(busy);
  if (!pending.length) return;
  pollTimer = setTimeout(async () => {
    try {
      const fresh = await Promise.all(services.map((s) => (busy(s) ? api("service.get", { sid: s.sid }) : s)));
      renderServices(fresh);
      pollServices(fresh);
    } catch (e) {
      $("main-error").textContent = e.message;
    }
  }, 1000);
}

async function creditView() {
  show("credit-view");
  const account = await api("user.credit");
  $("credit-balance").textContent = account.user.credit;
  const body = $("ledger-body");
  body.replaceChildren(...account.ledger.map((entry) => el("tr", {},
    el("td", { text: when(entry.at) }),
    el("td", { text: (entry.amount > 0 ? "+" : "") + entry.amount }),
    el("td", { text: entry.balance }),
    el("td", { text: entry.reason }))));
}

// ---- one service ---------------------------------------------------------------------

let current = null;

async function serviceView(sid) {
  show("service-view");
  $("service-error").textContent = "";
  $("methods").replaceChildren();
  $("nodes-body").replaceChildren();
  $("manager-log").textContent = "";
  current = { sid, service: null, methodsShown: false };
  await refreshService();
}

async function refreshService() {
  if (!current) return;
  const sid = current.sid;
  let service;
  try {
    service = await api("service.get", { sid });
  } catch (e) {
    if (e.code === -32004) {
      location.hash = "#/";
      return;
    }
    $("service-error").textContent = e.message;
    return;
  }
  if (!current || current.sid !== sid) return;
  current.service = service;
  $("service-led").className = "led " + ledClass(service);
  $("service-name").textContent = service.name;
  $("service-meta").textContent = `#${service.sid} ${service.type} on ${service.cloud}`;
  $("service-state").textContent = service.state;
  $("service-state").title = BANNER[service.state] || "";
  $("service-reason").textContent = service.reachable || service.state === "PREINIT"
    ? (service.reason ? "(" + service.reason + ")" : BANNER[service.state] || "")
    : "manager unreachable";
  $("service-spinner").hidden = !busy(service);
  const frozen = busy(service);
  const state = service.state;
  $("btn-start").disabled = frozen || !["INIT", "STOPPED", "ERROR"].includes(state);
  $("btn-stop").disabled = frozen || !["RUNNING", "ERROR"].includes(state);
  $("btn-add-nodes").disabled = frozen || state !== "RUNNING";
  $("btn-remove-nodes").disabled = frozen || state !== "RUNNING";
  $("btn-terminate").disabled = frozen && state !== "PREINIT";
  if (service.reachable) {
    if (!current.methodsShown) {
      current.methodsShown = true;
      showMethods(sid);
    }
    refreshNodes(sid, state);
    refreshLog(sid);
  }
  stopPolling();
  if (frozen || !service.reachable) pollTimer = setTimeout(refreshService, 1000);
}

async function managerCall(method, params) {
  return api("service.call", { sid: current.sid, method, params: params || {} });
}

async function refreshNodes(sid, state) {
  const body = $("nodes-body");
  if (!["RUNNING", "ADAPTING"].includes(state)) {
    body.replaceChildren();
    return;
  }
  try {
    const roles = await managerCall("list_nodes");
    const ids = Object.values(roles).flat();
    const infos = await Promise.all(ids.map((id) => managerCall("get_node_info", { serviceNodeId: id })));
    if (!current || current.sid !== sid) return;
    body.replaceChildren(...infos.map(({ serviceNode: n }) => el("tr", { id: "node-" + n.id },
      el("td", { text: n.id }), el("td", { text: n.role }), el("td", { text: n.ip }), el("td", { text: n.cloud }))));
  } catch (e) {
    /* nodes come and go while the service adapts */
  }
}

async function refreshLog(sid) {
  try {
    const log = await managerCall("getLog");
    if (current && current.sid === sid) {
      const lines = (log.log || "").trimEnd().split("\n");
      $("manager-log").textContent = lines.slice(-200).join("\n");
    }
  } catch (e) {
    /* some managers keep no log */
  }
}

async function action(button, work) {
  $("service-error").textContent = "";
  button.disabled = true;
  try {
    await work();
  } catch (e) {
    $("service-error").textContent = e.message;
  }
  await refreshService();
  refreshAccount();
}

function count() {
  return Math.max(1, parseInt($("node-count").value, 10) || 1);
}

// ---- forms generated from the manager's OpenRPC document ------------------------------

async function showMethods(sid) {
  let document;
  try {
    document = await api("service.discover", { sid });
  } catch (e) {
    current.methodsShown = false;
    return;
  }
  const box = $("methods");
  box.replaceChildren();
  for (const method of document.methods || []) {
    if (method.name.startsWith("rpc.")) continue;
    box.append(methodForm(method));
  }
}

function inputFor(param, verb, id) {
  const schema = param.schema || {};
  const type = Array.isArray(schema.type) ? schema.type.find((t) => t !== "null") : schema.type;
  if (verb === "UPLOAD" && (type === "string" || type === "array")) return el("input", { type: "file", id, name: param.name });
  if (schema.enum) return el("select", { id }, ...(param.required ? [] : [el("option", { value: "", text: "" })]), ...schema.enum.map((v) => el("option", { value: JSON.stringify(v), text: String(v) })));
  if (type === "integer" || type === "number") return el("input", { type: "number", id, step: type === "integer" ? "1" : "any" });
  if (type === "boolean") return el("input", { type: "checkbox", id });
  if (type === "string") return el("input", { id });
  return el("textarea", { id, placeholder: "JSON" });
}

function readInput(input, param) {
  const schema = param.schema || {};
  const type = Array.isArray(schema.type) ? schema.type.find((t) => t !== "null") : schema.type;
  if (input.type === "checkbox") return input.checked;
  const text = input.value;
  if (text === "") return undefined;
  if (input.tagName === "SELECT") return JSON.parse(text);
  if (type === "integer" || type === "number") return Number(text);
  if (type === "string") return text;
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`${param.name}: expected JSON (${e.message})`);
  }
}

function methodForm(method) {
  const verb = method["x-verb"] || "POST";
  const kind = verb === "GET" ? "query" : verb === "UPLOAD" ? "upload" : "command";
  const result = el("div", { class: "result", id: "result-" + method.name });
  const inputs = (method.params || []).map((param) => {
    const input = inputFor(param, verb, `param-${method.name}-${param.name}`);
    return { param, input };
  });
  const submit = el("button", { type: "submit", "data-method": method.name, text: kind === "query" ? "query" : "run" });
  const form = el("form", {
    class: "method",
    id: "method-" + method.name,
    onsubmit: async (event) => {
      event.preventDefault();
      submit.disabled = true;
      result.replaceChildren(el("span", { class: "spinner" }));
      try {
        const params = {};
        const files = {};
        for (const { param, input } of inputs) {
          if (input.type === "file") {
            const file = input.files[0];
            if (file) files[param.name] = { name: file.name, content_base64: await base64(file) };
            else if (param.required) throw new Error(`${param.name}: choose a file`);
            continue;
          }
          const value = readInput(input, param);
          if (value !== undefined) params[param.name] = value;
          else if (param.required) throw new Error(`${param.name} is required`);
        }
        const value = await api("service.call", { sid: current.sid, method: method.name, params, files });
        result.replaceChildren(renderValue(value));
        if (kind !== "query") refreshService();
        else refreshLog(current.sid);
      } catch (e) {
        result.replaceChildren(el("p", { class: "error", text: e.message }));
      } finally {
        submit.disabled = false;
      }
    },
  },
  el("h4", {}, method.name, el("span", { class: "kind", text: kind })),
  method.description ? el("p", { class: "muted", text: method.description }) : null,
  ...inputs.map(({ param, input }) => el("label", {}, param.name + (param.required ? " *" : ""), input)),
  submit,
  result);
  return form;
}

/// A file's content as base64 (for an UPLOAD method's file field).
function base64(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result).replace(/^data:[^,]*,/, ""));
    reader.onerror = () => reject(new Error("cannot read " + file.name));
    reader.readAsDataURL(file);
  });
}

function renderValue(value) {
  if (value === null || value === undefined) return el("span", { class: "muted", text: "(nothing)" });
  if (Array.isArray(value)) {
    if (value.length && value.every((v) => v && typeof v === "object" && !Array.isArray(v))) {
      const keys = [...new Set(value.flatMap(Object.keys))];
      return el("table", {},
        el("thead", {}, el("tr", {}, ...keys.map((k) => el("th", { text: k })))),
        el("tbody", {}, ...value.map((row) => el("tr", {}, ...keys.map((k) => el("td", {}, renderValue(row[k])))))));
    }
    if (!value.length) return el("span", { class: "muted", text: "(empty)" });
    return el("ul", {}, ...value.map((v) => el("li", {}, renderValue(v))));
  }
  if (typeof value === "object") {
    const keys = Object.keys(value);
    if (!keys.length) return el("span", { class: "muted", text: "done" });
    return el("dl", { class: "kv" }, ...keys.flatMap((k) => [el("dt", { text: k }), el("dd", {}, renderValue(value[k]))]));
  }
  if (typeof value === "string" && value.includes("\n")) return el("pre", { text: value });
  return el("span", { text: String(value) });
}

// ---- wiring ----------------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    $("login-error").textContent = "";
    try {
      const reply = await api("login", { username: $("login-username").value, password: $("login-password").value });
      setToken(reply.token);
      $("login-password").value = "";
      location.hash = "#/";
      route();
    } catch (e) {
      $("login-error").textContent = e.message;
    }
  });
  $("logout").addEventListener("click", async () => {
    try { await api("logout"); } catch (e) { /* gone already */ }
    setToken(null);
    route();
  });
  $("btn-start").addEventListener("click", (e) => action(e.target, () => managerCall("startup")));
  $("btn-stop").addEventListener("click", (e) => action(e.target, () => managerCall("shutdown")));
  $("btn-add-nodes").addEventListener("click", (e) => action(e.target, () => managerCall("add_nodes", { count: count() })));
  $("btn-remove-nodes").addEventListener("click", (e) => action(e.target, () => managerCall("remove_nodes", { count: count() })));
  $("btn-rename").addEventListener("click", (e) => {
    const name = prompt("New name", current && current.service ? current.service.name : "");
    if (name) action(e.target, () => api("service.rename", { sid: current.sid, name }));
  });
  $("btn-terminate").addEventListener("click", async (e) => {
    if (!confirm("Terminate this service? Its nodes and manager are stopped and it is removed.")) return;
    e.target.disabled = true;
    $("service-error").textContent = "";
    $("service-spinner").hidden = false;
    try {
      await api("service.terminate", { sid: current.sid });
      current = null;
      location.hash = "#/";
    } catch (err) {
      $("service-error").textContent = err.message;
      e.target.disabled = false;
    }
  });
  window.addEventListener("hashchange", route);
  route();
});
