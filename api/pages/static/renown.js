// Renown's pages: the moderator's key, the queue, a flag's panel and its decisions.
// No build step, no dependency. Text from the API is put in the page with textContent
// only; the one HTML fragment (the flag panel) is rendered and escaped by the server.
"use strict";

(() => {
  const KEY = "renown.moderatorKey";
  const $ = (selector, root = document) => root.querySelector(selector);
  const page = document.body.dataset.page;

  const storedKey = () => sessionStorage.getItem(KEY) || "";

  function make(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs)) {
      if (value !== null && value !== undefined) node.setAttribute(name, String(value));
    }
    for (const child of children) {
      node.append(child instanceof Node ? child : document.createTextNode(String(child ?? "")));
    }
    return node;
  }

  function say(node, text, kind = "info") {
    if (!node) return;
    node.textContent = text;
    node.dataset.kind = kind;
  }

  // A call to this site with the key; JSON or text back; a failure carries the API's error.
  async function call(method, path, body) {
    const headers = { Accept: "application/json, text/html" };
    const key = storedKey();
    if (key) headers.Authorization = `Bearer ${key}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "omit",
      cache: "no-store",
    });
    const type = response.headers.get("content-type") || "";
    const data = type.includes("json") ? await response.json() : await response.text();
    if (!response.ok) {
      const error = (data && data.error) || {};
      const text = `${response.status} ${error.code || "error"}: ${error.message || "the request failed"}`;
      throw new Error(error.hint ? `${text} (${error.hint})` : text);
    }
    return data;
  }

  // --- the key -------------------------------------------------------------------------

  function showKey() {
    const key = storedKey();
    say($("#key-status"), key ? `using key ${key.slice(0, 7)}…` : "no key", key ? "ok" : "info");
  }

  function setupKey(onChange) {
    const form = $("#key-form");
    if (!form) return;
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const key = $("#key").value.trim();
      if (key) sessionStorage.setItem(KEY, key);
      $("#key").value = "";
      showKey();
      onChange();
    });
    $("#forget-key").addEventListener("click", () => {
      sessionStorage.removeItem(KEY);
      showKey();
      onChange();
    });
    showKey();
  }

  // --- the audit log -------------------------------------------------------------------

  async function loadAudit(params) {
    const table = $("#audit");
    const status = $("#audit-status");
    const body = table.tBodies[0];
    body.replaceChildren();
    if (!storedKey()) {
      table.hidden = true;
      say(status, "Enter a moderator key to read the audit log.");
      return;
    }
    const query = new URLSearchParams({ limit: "200" });
    for (const [name, value] of Object.entries(params)) if (value) query.set(name, value);
    try {
      const entries = await call("GET", `/v1/audit?${query}`);
      for (const e of entries) {
        body.append(
          make(
            "tr",
            { "data-actor": e.actor, "data-action": e.action, "data-flag": e.flag },
            make("td", {}, (e.at || "").replace("T", " ").slice(0, 19)),
            make("td", {}, make("a", { href: `/moderation/flags/${Number(e.flag)}` }, `#${e.flag}`)),
            make("td", {}, e.actor),
            make("td", {}, e.action),
            make("td", {}, e.from ? `${e.from} → ${e.to}` : e.to),
            make("td", { class: "reason" }, e.reason),
            make("td", {}, (e.details && e.details.via) || ""),
          ),
        );
      }
      table.hidden = entries.length === 0;
      say(status, `${entries.length} entr${entries.length === 1 ? "y" : "ies"}, oldest first.`, "ok");
    } catch (error) {
      table.hidden = true;
      say(status, error.message, "error");
    }
  }

  // --- the queue -----------------------------------------------------------------------

  const BANDS = [
    ["high", "High severity (0.70 and above)", 0.7, Infinity],
    ["medium", "Medium severity (0.40 to 0.70)", 0.4, 0.7],
    ["low", "Low severity (below 0.40)", -Infinity, 0.4],
  ];
  const LIMIT = 100;
  let offset = 0;

  function flagRow(f) {
    const names = f.flagged.slice(0, 3).join(", ") + (f.flagged.length > 3 ? ` +${f.flagged.length - 3}` : "");
    return make(
      "tr",
      { "data-flag": f.id, "data-severity": f.severity },
      make("td", { class: "num" }, make("a", { href: `/moderation/flags/${Number(f.id)}` }, `#${f.id}`)),
      make("td", {}, f.kind),
      make("td", {}, make("span", { class: `status status-${f.status}` }, f.status)),
      make("td", { class: "num" }, Number(f.severity).toFixed(2)),
      make("td", {}, names),
      make("td", { class: "summary" }, f.summary),
      make("td", {}, f.raised_epoch ? `epoch ${f.raised_epoch}` : `by ${f.raised_by}`),
    );
  }

  async function loadQueue() {
    const queue = $("#queue");
    const status = $("#queue-status");
    queue.replaceChildren();
    $("#queue-prev").hidden = $("#queue-next").hidden = true;
    if (!storedKey()) {
      say(status, "Enter a moderator key to load the queue.");
      return;
    }
    const query = new URLSearchParams({ limit: String(LIMIT), offset: String(offset) });
    for (const name of ["status", "kind", "account"]) {
      const value = $(`#${name}`).value.trim();
      if (value) query.set(name, value);
    }
    say(status, "Loading…");
    try {
      const page = await call("GET", `/v1/flags?${query}`);
      for (const [band, title, low, high] of BANDS) {
        const flags = page.items.filter((f) => f.severity >= low && f.severity < high);
        if (!flags.length) continue;
        const head = make(
          "tr",
          {},
          ...["flag", "kind", "status", "severity", "flagged", "summary", "raised"].map((h) =>
            make("th", { scope: "col" }, h),
          ),
        );
        queue.append(
          make(
            "section",
            { class: `band band-${band}`, "data-band": band },
            make("h2", {}, `${title}: ${flags.length}`),
            make(
              "table",
              { class: "grid-table queue" },
              make("thead", {}, head),
              make("tbody", {}, ...flags.map(flagRow)),
            ),
          ),
        );
      }
      const last = Math.min(offset + page.items.length, page.total);
      say(
        status,
        page.total ? `Flags ${offset + 1}-${last} of ${page.total}, most severe first.` : "No flag matches.",
        "ok",
      );
      $("#queue-prev").hidden = offset === 0;
      $("#queue-next").hidden = last >= page.total;
    } catch (error) {
      say(status, error.message, "error");
    }
  }

  // --- one flag ------------------------------------------------------------------------

  const ACTIONS = {
    confirm: ["confirm", (reason) => confirmBody(reason), "confirmed"],
    dismiss: ["dismiss", (reason) => ({ reason }), "dismissed"],
    uphold: ["decide", (reason) => ({ verdict: "uphold", reason }), "upheld the appeal of"],
    reject: ["decide", (reason) => ({ verdict: "reject", reason }), "rejected the appeal of"],
  };

  function confirmBody(reason) {
    const body = { reason };
    for (const name of ["trust_factor", "label_factor", "score_factor"]) {
      const input = $(`#${name}`);
      if (input && input.value !== "") body[name] = Number(input.value);
    }
    return body;
  }

  async function loadPanel(flagId) {
    const panel = $("#panel");
    if (!storedKey()) {
      panel.replaceChildren(make("p", { class: "hint" }, "Enter a moderator key to load the flag."));
      return;
    }
    try {
      // Server-rendered, every value escaped there (api/pages/templates/flag_panel.html).
      panel.innerHTML = await call("GET", `/moderation/flags/${flagId}/panel`);
    } catch (error) {
      panel.replaceChildren(make("p", { class: "error-message" }, error.message));
    }
  }

  async function decide(flagId, button) {
    const [route, body, verb] = ACTIONS[button.dataset.action];
    const result = $("#result");
    const reason = ($("#reason") || { value: "" }).value.trim();
    if (!reason) {
      say(result, "A reason is required: it goes to the audit log.", "error");
      return;
    }
    const buttons = document.querySelectorAll("#panel button[data-action]");
    for (const b of buttons) b.disabled = true;
    say(result, "Sending…");
    try {
      const flag = await call("POST", `/v1/flags/${flagId}/${route}`, body(reason));
      say(result, `You ${verb} flag #${flag.id}: it is now ${flag.status}.`, "ok");
      await loadPanel(flagId);
      await loadAudit({ flag: String(flagId) });
    } catch (error) {
      say(result, error.message, "error");
      for (const b of buttons) b.disabled = false;
    }
  }

  // --- wiring --------------------------------------------------------------------------

  if (page === "queue") {
    const audit = () =>
      loadAudit({ flag: $("#audit-flag").value.trim(), actor: $("#audit-actor").value.trim() });
    setupKey(() => {
      offset = 0;
      loadQueue();
      audit();
    });
    $("#queue-filter").addEventListener("submit", (event) => {
      event.preventDefault();
      offset = 0;
      loadQueue();
    });
    $("#queue-prev").addEventListener("click", () => {
      offset = Math.max(0, offset - LIMIT);
      loadQueue();
    });
    $("#queue-next").addEventListener("click", () => {
      offset += LIMIT;
      loadQueue();
    });
    $("#audit-filter").addEventListener("submit", (event) => {
      event.preventDefault();
      audit();
    });
    loadQueue();
    audit();
  } else if (page === "flag") {
    const flagId = Number(document.body.dataset.flag);
    const refresh = () => {
      loadPanel(flagId);
      loadAudit({ flag: String(flagId) });
    };
    setupKey(refresh);
    $("#panel").addEventListener("click", (event) => {
      const button = event.target.closest("button[data-action]");
      if (button) decide(flagId, button);
    });
    refresh();
  }
})();
