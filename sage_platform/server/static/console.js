// Sage console: sessions, files, tool servers (admins) and memories around the chat (chat.js).
"use strict";

const sessionList = document.getElementById("session-list");
const fileList = document.getElementById("file-list");
let me = { user_id: "", admin: false };

async function api(method, path, body) {
  const init = { method, headers: headers() };
  if (body instanceof FormData) { delete init.headers["Content-Type"]; init.body = body; }
  else if (body !== undefined) init.body = JSON.stringify(body);
  const response = await fetch(path, init);
  if (!response.ok) {
    const detail = await response.json().catch(() => ({}));
    throw new Error(`${response.status}: ${detail.detail || response.statusText}`);
  }
  return response;
}

function button(label, title, onClick) {
  const node = document.createElement("button");
  node.type = "button"; node.textContent = label; node.title = title; node.setAttribute("aria-label", title);
  node.addEventListener("click", onClick);
  return node;
}

async function loadSessions() {
  let rows = [];
  try { rows = await (await api("GET", "/api/sessions")).json(); } catch (error) { return; }
  sessionList.replaceChildren();
  for (const row of rows) {
    const item = document.createElement("li");
    item.className = "session-item" + (row.session_id === sessionId ? " current" : "");
    item.dataset.session = row.session_id;
    const open = button(row.title || row.session_id, `open session ${row.session_id}`, () => resume(row.session_id));
    open.className = "session-open";
    const rename = button("✎", `rename session ${row.session_id}`, async () => {
      const title = prompt("New title", row.title || "");
      if (title) { await api("PATCH", `/api/sessions/${row.session_id}`, { title }); loadSessions(); }
    });
    const remove = button("✕", `delete session ${row.session_id}`, async () => {
      await api("DELETE", `/api/sessions/${row.session_id}`);
      if (row.session_id === sessionId) document.getElementById("new-session").click();
      loadSessions();
    });
    item.append(open, rename, remove);
    if (row.dagster_run_id && me.dagster_url) {   // a task's session: its run in Dagster
      const run = document.createElement("a");
      run.className = "dagster-run"; run.textContent = "run"; run.target = "_blank"; run.rel = "noopener";
      run.href = `${me.dagster_url}/runs/${row.dagster_run_id}`; run.title = `the Dagster run of session ${row.session_id}`;
      item.appendChild(run);
    }
    sessionList.appendChild(item);
  }
}

async function resume(id) {
  const history = await (await api("GET", `/api/sessions/${id}/messages`)).json();
  openSession(id, history.messages);
  loadSessions(); loadFiles();
}

async function loadFiles() {
  fileList.replaceChildren();
  if (!sessionId) return;
  const files = await (await api("GET", `/api/files?session_id=${encodeURIComponent(sessionId)}`)).json();
  for (const file of files) {
    const item = document.createElement("li");
    item.className = "file-item";
    const name = document.createElement("span");
    name.textContent = `${file.name} v${file.version} (${file.size} bytes)`;
    const download = button("↓", `download ${file.name}`, async () => {
      const blob = await (await api("GET", `/api/files/${file.file_id}`)).blob();
      const link = document.createElement("a");
      link.href = URL.createObjectURL(blob); link.download = file.name; link.click();
      URL.revokeObjectURL(link.href);
    });
    const remove = button("✕", `delete ${file.name}`, async () => { await api("DELETE", `/api/files/${file.file_id}`); loadFiles(); });
    item.append(name, download, remove);
    fileList.appendChild(item);
  }
}

document.getElementById("upload").addEventListener("change", async (event) => {
  const file = event.target.files[0];
  if (!file) return;
  if (!sessionId) { sessionId = crypto.randomUUID().replaceAll("-", ""); sessionStorage.setItem("sage-session", sessionId); showSession(); }
  const form = new FormData();
  form.append("session_id", sessionId); form.append("file", file);
  try { await api("POST", "/api/files", form); } catch (error) { add("error", String(error.message)); }
  event.target.value = "";
  loadFiles();
});

async function loadTools() {
  const forbidden = document.getElementById("tools-forbidden");
  const adminPanel = document.getElementById("tools-admin");
  if (!me.admin) {
    forbidden.textContent = `403: tool servers are managed by admins; ${me.user_id || "this key"} is not one.`;
    forbidden.hidden = false; adminPanel.hidden = true;
    return;
  }
  forbidden.hidden = true; adminPanel.hidden = false;
  const servers = await (await api("GET", "/api/mcp/list")).json();
  const list = document.getElementById("server-list");
  list.replaceChildren();
  for (const server of servers) {
    const item = document.createElement("li");
    item.className = "server-item";
    const label = document.createElement("span");
    label.textContent = `${server.name}: ${server.status} (${server.tools.length} tools)`;
    item.append(label,
      button(server.enabled ? "disable" : "enable", `toggle ${server.name}`, async () => { await api("PUT", `/api/mcp/${server.name}/toggle`); loadTools(); }),
      button("refresh", `refresh ${server.name}`, async () => { await api("POST", `/api/mcp/${server.name}/refresh`); loadTools(); }));
    list.appendChild(item);
  }
}

document.getElementById("add-server").addEventListener("submit", async (event) => {
  event.preventDefault();
  const name = document.getElementById("server-name").value.trim();
  const url = document.getElementById("server-url").value.trim();
  try { await api("POST", "/api/mcp/add", { name, url }); } catch (error) { add("error", String(error.message)); }
  loadTools();
});

document.getElementById("memory-search").addEventListener("submit", async (event) => {
  event.preventDefault();
  const query = document.getElementById("memory-query").value.trim();
  const list = document.getElementById("memory-list");
  list.replaceChildren();
  if (!query) return;
  const found = await (await api("GET", `/api/memories?q=${encodeURIComponent(query)}`)).json();
  for (const memory of found) {
    const item = document.createElement("li");
    item.className = "memory-item";
    item.textContent = `${memory.text} (${memory.kind}, session ${memory.session_id})`;
    list.appendChild(item);
  }
  if (!found.length) list.textContent = "no memories match";
});

for (const tab of document.querySelectorAll("[role=tab]")) {
  tab.addEventListener("click", () => {
    for (const other of document.querySelectorAll("[role=tab]")) {
      other.setAttribute("aria-selected", String(other === tab));
      document.getElementById(other.dataset.panel).hidden = other !== tab;
    }
    if (tab.dataset.panel === "tools-panel") loadTools();
    if (tab.dataset.panel === "files-panel") loadFiles();
  });
}

async function start() {
  try { me = await (await api("GET", "/api/me")).json(); } catch (error) { me = { user_id: "", admin: false }; }
  const dagster = document.getElementById("dagster-link");
  if (me.dagster_url) { dagster.href = me.dagster_url; dagster.hidden = false; }
  loadSessions(); loadFiles();
  if (!document.getElementById("tools-panel").hidden) loadTools();  // another key: another role
}

window.onRunEnd = () => { loadSessions(); loadFiles(); };
window.traceUiUrl = () => (me.tracing ? me.trace_ui_url : null);
apiKey.addEventListener("change", start);
start();
