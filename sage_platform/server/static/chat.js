// Sage chat page: streams /api/stream (NDJSON), renders text as it arrives, folds tool calls.
"use strict";

const log = document.getElementById("log");
const form = document.getElementById("ask");
const question = document.getElementById("question");
const sendButton = document.getElementById("send");
const stopButton = document.getElementById("stop");
const sessionLabel = document.getElementById("session");
const apiKey = document.getElementById("api-key");
const citationList = document.getElementById("citation-list");
let sessionId = sessionStorage.getItem("sage-session") || null;
let controller = null;

function showSession() { sessionLabel.textContent = sessionId ? `session ${sessionId}` : "new session"; }
showSession();
apiKey.value = sessionStorage.getItem("sage-key") || "";

function add(kind, text) {
  const node = document.createElement("div");
  node.className = `message ${kind}`;
  node.textContent = text || "";
  log.appendChild(node);
  log.scrollTop = log.scrollHeight;
  return node;
}

function toolBlock(summary, body, className) {
  const details = document.createElement("details");
  details.className = `tool ${className}`;
  const title = document.createElement("summary");
  title.textContent = summary;
  const pre = document.createElement("pre");
  pre.textContent = body;
  details.append(title, pre);
  log.appendChild(details);
  return details;
}

function addCitations(result) {
  let parsed;
  try { parsed = JSON.parse(result); } catch { return; }
  for (const hit of (parsed && parsed.hits) || []) {
    const item = document.createElement("li");
    item.className = "citation";
    item.textContent = `${hit.doc_id} — ${(hit.text || "").slice(0, 120)}`;
    citationList.appendChild(item);
    document.getElementById("citations").hidden = false;
  }
}

function headers() {
  const h = { "Content-Type": "application/json" };
  if (apiKey.value) { h.Authorization = `Bearer ${apiKey.value}`; sessionStorage.setItem("sage-key", apiKey.value); }
  return h;
}

async function ask(text) {
  add("user", text);
  const texts = new Map();   // message_id → node receiving assistant_text
  controller = new AbortController();
  sendButton.disabled = true; stopButton.disabled = false;
  const body = { messages: [{ role: "user", content: text }] };
  if (sessionId) body.session_id = sessionId;
  const mode = document.getElementById("mode");
  const model = document.getElementById("model");
  if (mode && mode.value !== "simple") body.agent_mode = mode.value;
  if (mode && mode.value === "team") body.custom_sub_agents = TEAM;
  if (model && model.value.trim()) body.llm_model_config = { model: model.value.trim() };
  try {
    const response = await fetch("/api/stream", {
      method: "POST", headers: headers(), body: JSON.stringify(body), signal: controller.signal,
    });
    if (!response.ok) {
      const detail = await response.json().catch(() => ({}));
      add("error", `HTTP ${response.status}: ${JSON.stringify(detail.detail || detail)}`);
      return;
    }
    sessionId = response.headers.get("X-Session-Id") || sessionId;
    sessionStorage.setItem("sage-session", sessionId); showSession();
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffered = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffered += decoder.decode(value, { stream: true });
      let newline;
      while ((newline = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, newline).trim();
        buffered = buffered.slice(newline + 1);
        if (line) render(JSON.parse(line), texts);
      }
    }
  } catch (error) {
    if (error.name !== "AbortError") add("error", String(error));
  } finally {
    sendButton.disabled = false; stopButton.disabled = true; controller = null;
    if (typeof window.onRunEnd === "function") window.onRunEnd();
  }
}

const TEAM = [
  { name: "researcher", description: "Looks things up in the knowledge base." },
  { name: "writer", description: "Writes the answer from what was found." },
];

// Open an existing session: its history in the log, later questions go to it.
function openSession(id, history) {
  sessionId = id; sessionStorage.setItem("sage-session", id); showSession();
  log.replaceChildren(); citationList.replaceChildren(); document.getElementById("citations").hidden = true;
  for (const message of history) {
    if ((message.role === "user" || message.role === "assistant") && message.content) {
      add(message.role, message.content).classList.toggle("final", message.role === "assistant");
    }
  }
}

function render(message, texts) {
  switch (message.type) {
    case "assistant_text": {
      if (!texts.has(message.message_id)) {
        const node = add("assistant", "");
        if (message.agent_name && message.agent_name !== "sage") node.dataset.agent = message.agent_name;
        texts.set(message.message_id, node);
      }
      texts.get(message.message_id).textContent += message.content;
      break;
    }
    case "reasoning_content": add("reasoning", message.content); break;
    case "tool_call":
      for (const call of message.tool_calls || []) {
        toolBlock(`🔧 ${call.function.name}`, call.function.arguments, "tool-call");
      }
      break;
    case "tool_call_result": {
      const result = message.content || {};
      toolBlock(`${result.ok ? "✓" : "✗"} ${result.name} result`, result.result, "tool-result");
      if (result.name === "knowledge_search" && result.ok) addCitations(result.result);
      break;
    }
    case "final_answer": {
      const answer = texts.get(message.message_id) || add("assistant", message.content);
      answer.classList.add("final");
      if (message.metadata && message.metadata.mode === "retrieval_only") {
        // No model configured: say plainly that this is retrieved text, and how to get the full agent.
        const label = document.createElement("div");
        label.className = "mode-label";
        label.textContent = `Retrieval only: ${message.metadata.reason}`;
        answer.before(label);
      }
      break;
    }
    case "task_analysis": {
      const plan = message.content || {};
      const steps = (plan.steps || []).map((step) => `${step.index}. ${step.description}`).join("\n");
      toolBlock(`📋 plan: ${plan.analysis || ""}`, steps, "plan").open = true;
      break;
    }
    case "stage_summary": {
      const stage = message.content || {};
      const label = stage.step ? `step ${stage.step} ${stage.status}` : `${stage.agent} reported`;
      toolBlock(`${stage.status === "failed" ? "✗" : "✓"} ${label}`, stage.summary || "", "stage");
      break;
    }
    case "user_input": add("user", message.content); break;
    case "loop_break": add("reasoning", message.content); break;
    case "stream_end": {
      const ui = window.traceUiUrl && window.traceUiUrl();
      if (message.trace_id && ui) {   // tracing is on: this run's trace, in the trace viewer
        const link = document.createElement("a");
        link.className = "trace-link"; link.textContent = "trace"; link.target = "_blank"; link.rel = "noopener";
        link.href = `${ui.replace(/\/$/, "")}/trace/${message.trace_id}`;
        log.appendChild(link);
      }
      break;
    }
    case "error": add("error", message.content); break;
    default: break;   // token_usage
  }
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const text = question.value.trim();
  if (!text || controller) return;
  question.value = "";
  ask(text);
});
question.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); form.requestSubmit(); }
});
document.addEventListener("keydown", (event) => {   // Escape stops the running answer, wherever the focus is
  if (event.key === "Escape" && controller) stopButton.click();
});
stopButton.addEventListener("click", async () => {
  if (sessionId) await fetch(`/api/sessions/${sessionId}/interrupt`, { method: "POST", headers: headers() });
});
document.getElementById("new-session").addEventListener("click", () => {
  sessionId = null; sessionStorage.removeItem("sage-session"); showSession();
  log.replaceChildren(); citationList.replaceChildren(); document.getElementById("citations").hidden = true;
  if (typeof window.onRunEnd === "function") window.onRunEnd();
});
