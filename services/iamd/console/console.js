// The audit review page: signs in with /api/iam/login, keeps the session
// token in this page's memory only (never in a URL or in storage), and reads
// /api/iam/audit, a user's history and `asOf` with it. Data from the service
// is only ever set as text, never parsed as HTML.
"use strict";

const VCA_JSON = "application/json;version=5.7";
const PAGE_SIZE = 50;
const CSV_COLUMNS = ["position", "time", "organization", "type", "subjectKind", "subjectId", "userId",
  "actorId", "actorUserName", "actorOrganization", "authentication", "tokenId", "requestId",
  "clientRequestId", "traceId", "sourceAddress", "userAgent", "changes", "details"];

const state = { token: null, organization: null, entries: [], nextCursor: null, user: null };
const $ = (id) => document.getElementById(id);

function show(id, visible) { $(id).hidden = !visible; }

function text(tag, content, className) {
  const element = document.createElement(tag);
  element.textContent = content == null ? "" : String(content);
  if (className) element.className = className;
  return element;
}

function base64(value) {
  const bytes = new TextEncoder().encode(value);
  let binary = "";
  bytes.forEach((byte) => { binary += String.fromCharCode(byte); });
  return btoa(binary);
}

async function api(path, options = {}) {
  const headers = { Accept: VCA_JSON, Authorization: `Bearer ${state.token}` };
  if (state.organization) headers["X-VMware-VCloud-Tenant-Context"] = state.organization;
  const response = await fetch(path, { ...options, headers: { ...headers, ...(options.headers || {}) } });
  let body = null;
  try { body = await response.json(); } catch (_) { body = null; }
  return { status: response.status, body };
}

function errorText(body, fallback) {
  return (body && body.Errors && body.Errors[0] && body.Errors[0].description) || fallback;
}

async function signIn(event) {
  event.preventDefault();
  $("sign-in-error").textContent = "";
  const userName = $("user-name").value.trim();
  const response = await fetch("/api/iam/login", {
    method: "POST",
    headers: { Accept: VCA_JSON, Authorization: `Basic ${base64(`${userName}:${$("password").value}`)}` },
  });
  $("password").value = "";
  if (response.status !== 201) {
    $("sign-in-error").textContent = "The user name or password is incorrect, or the user is inactive.";
    return;
  }
  state.token = response.headers.get("vchs-authorization");
  $("signed-in-as").textContent = userName;
  show("sign-in", false);
  show("who", true);
  const organizations = await api("/api/org");
  const select = $("organization");
  select.replaceChildren();
  for (const organization of (organizations.body && organizations.body.organizations) || []) {
    const option = text("option", `${organization.name} (${organization.kind})`);
    option.value = organization.id;
    select.append(option);
  }
  state.organization = select.value || null;
  await loadAudit(true);
}

async function signOut() {
  // End the session on the service, not only in this page.
  if (state.token) await api("/api/iam/logout", { method: "POST" });
  state.token = null;
  state.organization = null;
  state.entries = [];
  for (const id of ["who", "audit", "entry", "user", "refused"]) show(id, false);
  show("sign-in", true);
}

function isoOf(input) {
  return input.value ? new Date(input.value).toISOString() : null;
}

function query(cursor) {
  const parameters = new URLSearchParams({ pageSize: String(PAGE_SIZE) });
  const since = isoOf($("since"));
  const until = isoOf($("until"));
  if (since) parameters.append("since", since);
  if (until) parameters.append("until", until);
  if ($("actor").value.trim()) parameters.append("actor", $("actor").value.trim());
  if ($("user-id").value.trim()) parameters.append("userId", $("user-id").value.trim());
  for (const type of $("types").value.split(",").map((t) => t.trim()).filter(Boolean)) {
    parameters.append("type", type);
  }
  if ($("request-id").value.trim()) parameters.append("requestId", $("request-id").value.trim());
  if (cursor) parameters.append("cursor", cursor);
  return parameters.toString();
}

async function loadAudit(reset) {
  if (reset) {
    state.entries = [];
    state.nextCursor = null;
    $("timeline").tBodies[0].replaceChildren();
    show("entry", false);
  }
  const page = await api(`/api/iam/audit?${query(reset ? null : state.nextCursor)}`);
  if (page.status === 403) {
    show("audit", false);
    show("refused", true);
    $("refused-message").textContent = errorText(page.body, "You are not allowed to read this audit.");
    return;
  }
  if (page.status !== 200) {
    $("status").textContent = errorText(page.body, `The audit answered ${page.status}.`);
    show("audit", true);
    return;
  }
  show("refused", false);
  show("audit", true);
  for (const entry of page.body.entries) {
    state.entries.push(entry);
    $("timeline").tBodies[0].append(row(entry));
  }
  state.nextCursor = page.body.nextCursor;
  show("older", Boolean(state.nextCursor));
  $("status").textContent =
    `${state.entries.length} entries shown; the audit is complete up to position ${page.body.completeUpTo}.`;
}

function subjectCell(entry) {
  const cell = document.createElement("td");
  if (entry.userId) {
    const link = text("a", `${entry.subject.kind} ${entry.userId}`, "user");
    link.dataset.user = entry.userId;
    link.addEventListener("click", (event) => { event.stopPropagation(); openUser(entry.userId); });
    cell.append(link);
  } else {
    cell.textContent = `${entry.subject.kind} ${entry.subject.id}`;
  }
  return cell;
}

function row(entry) {
  const tr = document.createElement("tr");
  tr.dataset.position = entry.position;
  tr.append(
    text("td", entry.time),
    text("td", entry.type, "type"),
    subjectCell(entry),
    text("td", entry.actor.userName || entry.actor.id || "—"),
    text("td", entry.sourceAddress || "—"),
    text("td", entry.requestId || "—"),
  );
  tr.addEventListener("click", () => openEntry(entry, tr));
  return tr;
}

function shown(value) {
  return value === null || value === undefined ? "—" : JSON.stringify(value);
}

function openEntry(entry, tr) {
  for (const other of $("timeline").querySelectorAll("tr.selected")) other.classList.remove("selected");
  tr.classList.add("selected");
  $("entry-title").textContent = `#${entry.position} ${entry.type}`;
  const facts = $("entry-facts");
  facts.replaceChildren();
  const fact = (name, value) => { facts.append(text("dt", name), text("dd", value == null ? "—" : value)); };
  fact("Time", entry.time);
  fact("Organization", entry.organization);
  fact("Actor", [entry.actor.userName, entry.actor.id, entry.actor.organization && `of ${entry.actor.organization}`].filter(Boolean).join(" "));
  fact("Authenticated by", [entry.authentication.method, entry.authentication.tokenId].filter(Boolean).join(" "));
  fact("Request", [entry.requestId, entry.clientRequestId && `(client: ${entry.clientRequestId})`].filter(Boolean).join(" "));
  fact("Trace", entry.traceId);
  fact("Source address", entry.sourceAddress);
  fact("User agent", entry.userAgent);
  if (entry.details) fact("Details", JSON.stringify(entry.details));
  const body = $("diff").tBodies[0];
  body.replaceChildren();
  for (const [field, change] of Object.entries(entry.changes || {})) {
    const tr2 = document.createElement("tr");
    tr2.dataset.field = field;
    tr2.append(text("td", field), text("td", shown(change.before), "before"), text("td", shown(change.after), "after"));
    body.append(tr2);
  }
  if (!body.children.length) {
    const empty = document.createElement("tr");
    const cell = text("td", "No field changed.");
    cell.colSpan = 3;
    empty.append(cell);
    body.append(empty);
  }
  show("entry", true);
}

async function openUser(id) {
  state.user = id;
  $("user-title").textContent = id;
  $("as-of-result").textContent = "";
  const list = $("history");
  list.replaceChildren();
  const history = await api(`/api/iam/Users/${encodeURIComponent(id)}/history`);
  if (history.status !== 200) {
    list.append(text("li", errorText(history.body, `The history answered ${history.status}.`), "error"));
  } else {
    for (const event of history.body.events) {
      const changed = Object.keys(event.changes || {}).join(", ");
      const who = event.actor.userName || event.actor.id || "—";
      list.append(text("li", `${event.time} ${event.type} by ${who}${changed ? `: ${changed}` : ""}`));
    }
  }
  show("user", true);
}

async function showAsOf(event) {
  event.preventDefault();
  const at = isoOf($("as-of"));
  const answer = await api(`/api/iam/Users/${encodeURIComponent(state.user)}?asOf=${encodeURIComponent(at)}`);
  $("as-of-result").textContent = answer.status === 200
    ? JSON.stringify(answer.body, null, 2)
    : errorText(answer.body, `The service answered ${answer.status}.`);
}

function flat(entry) {
  return {
    position: entry.position, time: entry.time, organization: entry.organization, type: entry.type,
    subjectKind: entry.subject.kind, subjectId: entry.subject.id, userId: entry.userId,
    actorId: entry.actor.id, actorUserName: entry.actor.userName, actorOrganization: entry.actor.organization,
    authentication: entry.authentication.method, tokenId: entry.authentication.tokenId,
    requestId: entry.requestId, clientRequestId: entry.clientRequestId, traceId: entry.traceId,
    sourceAddress: entry.sourceAddress, userAgent: entry.userAgent,
    changes: JSON.stringify(entry.changes || {}), details: entry.details ? JSON.stringify(entry.details) : "",
  };
}

function csvField(value) {
  let textValue = value == null ? "" : String(value);
  // A cell that starts like a formula could run in a spreadsheet.
  if (/^[=+\-@\t\r]/.test(textValue)) textValue = `'${textValue}`;
  return /[",\n\r]/.test(textValue) ? `"${textValue.replaceAll("\"", "\"\"")}"` : textValue;
}

function download(name, type, content) {
  const link = document.createElement("a");
  link.href = URL.createObjectURL(new Blob([content], { type }));
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 1000);
}

function downloadCsv() {
  const lines = [CSV_COLUMNS.join(",")];
  for (const entry of state.entries) {
    const values = flat(entry);
    lines.push(CSV_COLUMNS.map((column) => csvField(values[column])).join(","));
  }
  download("audit.csv", "text/csv", `${lines.join("\r\n")}\r\n`);
}

function downloadJsonl() {
  download("audit.jsonl", "application/x-ndjson", state.entries.map((entry) => JSON.stringify(entry)).join("\n") + "\n");
}

document.addEventListener("DOMContentLoaded", () => {
  $("sign-in-form").addEventListener("submit", signIn);
  $("sign-out").addEventListener("click", signOut);
  $("organization").addEventListener("change", () => { state.organization = $("organization").value; loadAudit(true); });
  $("filters").addEventListener("submit", (event) => { event.preventDefault(); loadAudit(true); });
  $("clear").addEventListener("click", () => { $("filters").reset(); loadAudit(true); });
  $("older").addEventListener("click", () => loadAudit(false));
  $("download-csv").addEventListener("click", downloadCsv);
  $("download-jsonl").addEventListener("click", downloadJsonl);
  $("as-of-form").addEventListener("submit", showAsOf);
});
