// reservoice web page: the little that needs a script.
//
// - Times: shown in the reader's own zone (the server writes UTC).
// - The list of calls: re-read every two seconds while visible; rows that
//   changed are swapped (the server renders them, not this script).
// - One call: followed live through the API's Server-Sent Events; transcript
//   lines are appended as they arrive; on a status, outcome or end the page is
//   re-read and its changed parts (outcome card, timeline, recording) swapped.
// - The form: posted as JSON to the API; a 422 puts the API's own message
//   beside each bad field; success goes to the new call.
(() => {
  "use strict";

  const $ = (selector, root = document) => root.querySelector(selector);
  const csrfToken = () => {
    const meta = $('meta[name="csrf-token"]');
    return meta ? meta.content : null;
  };
  const signIn = () =>
    location.assign("/sign-in?next=" + encodeURIComponent(location.pathname + location.search));

  // ---- times in the reader's zone
  const formats = {
    datetime: { weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" },
    time: { hour: "2-digit", minute: "2-digit", second: "2-digit" },
  };
  function localTimes(root) {
    for (const t of root.querySelectorAll("time[data-local]")) {
      const when = new Date(t.getAttribute("datetime"));
      if (Number.isNaN(when.getTime())) continue;
      t.textContent = when.toLocaleString(undefined, formats[t.dataset.local] || formats.datetime);
    }
  }

  // ---- re-read this page and swap the parts that changed
  async function reread() {
    let response;
    try {
      response = await fetch(location.pathname + location.search, {
        headers: { Accept: "text/html" },
        credentials: "same-origin",
        cache: "no-store",
      });
    } catch (_) {
      return false; // offline for a moment: the next round tries again
    }
    if (response.redirected && new URL(response.url).pathname === "/sign-in") {
      signIn();
      return false;
    }
    if (!response.ok) return false;
    const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
    localTimes(fresh);
    for (const part of document.querySelectorAll("[data-part][id]")) {
      const next = fresh.getElementById(part.id);
      if (!next || next.outerHTML === part.outerHTML) continue;
      swap(part, document.importNode(next, true));
    }
    return true;
  }

  // Replace a part, keeping keyboard focus where it was (by id or link target)
  // and marking list rows that are new.
  function swap(old, next) {
    const focused = old.contains(document.activeElement) ? document.activeElement : null;
    const key = focused && (focused.id || focused.getAttribute("href"));
    const known = new Set([...old.querySelectorAll("tr[id]")].map((row) => row.id));
    old.replaceWith(next);
    for (const row of next.querySelectorAll("tr[id]")) {
      if (known.size && !known.has(row.id)) row.classList.add("fresh");
    }
    if (key) {
      const again = next.querySelector(`[id="${CSS.escape(key)}"], [href="${CSS.escape(key)}"]`);
      if (again) again.focus();
    }
  }

  // ---- the list of calls
  function followList() {
    const tick = async () => {
      if (!document.hidden) await reread();
      setTimeout(tick, 2000);
    };
    setTimeout(tick, 2000);
  }

  // ---- one call, live
  function clock(ms) {
    const secs = Math.floor(ms / 1000);
    const pad = (n) => String(n).padStart(2, "0");
    return `${pad(Math.floor(secs / 60))}:${pad(secs % 60)}`;
  }

  function followCall(id) {
    const lines = $("#transcript-lines");
    const template = $("#line-template");
    let shown = lines.children.length;
    const add = (line) => {
      const item = template.content.firstElementChild.cloneNode(true);
      item.dataset.speaker = line.speaker;
      $(".at", item).textContent = clock(line.at_ms);
      $(".who", item).textContent = line.speaker === "agent" ? "Agent" : "Restaurant";
      $(".text", item).textContent = line.text;
      const bottom = lines.getBoundingClientRect().bottom <= window.innerHeight + 40;
      lines.append(item);
      shown += 1;
      if (bottom) item.scrollIntoView({ block: "nearest" });
    };
    const catchUp = (record) => record.transcript.slice(shown).forEach(add);

    // One re-read at a time; events arriving meanwhile ask for one more.
    let busy = false;
    let again = false;
    const refresh = async () => {
      if (busy) {
        again = true;
        return;
      }
      busy = true;
      do {
        again = false;
        await reread();
      } while (again);
      busy = false;
    };

    const events = new EventSource(`/api/calls/${encodeURIComponent(id)}/events`);
    events.addEventListener("snapshot", (e) => {
      catchUp(JSON.parse(e.data));
      refresh();
    });
    events.addEventListener("transcript", (e) => {
      const { line, seq } = JSON.parse(e.data);
      if (seq === shown + 1) add(line); // seq: its place in the transcript; repeats are skipped
    });
    events.addEventListener("status", refresh);
    events.addEventListener("outcome", refresh);
    events.addEventListener("finished", (e) => {
      events.close();
      catchUp(JSON.parse(e.data));
      refresh();
    });
    events.onerror = () => {
      // The browser reconnects by itself; a refusal (signed out) closes the stream.
      if (events.readyState === EventSource.CLOSED) refresh();
    };
  }

  // ---- the form
  function placeCalls(form) {
    const problems = $("#form-problems");
    const button = $('button[type="submit"]', form);

    const clear = () => {
      problems.hidden = true;
      problems.replaceChildren();
      for (const slot of form.querySelectorAll(".field-error")) {
        slot.hidden = true;
        slot.textContent = "";
      }
      for (const input of form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
    };

    const report = (errors) => {
      const list = document.createElement("ul");
      let first = null;
      for (const { field, message } of errors) {
        const input = form.elements.namedItem(field);
        const slot = document.getElementById(`err-${field}`);
        const item = document.createElement("li");
        if (input && slot) {
          slot.textContent = message;
          slot.hidden = false;
          input.setAttribute("aria-invalid", "true");
          first = first || input;
          const link = document.createElement("a");
          link.href = `#${input.id}`;
          const label = form.querySelector(`label[for="${input.id}"]`);
          link.textContent = `${label ? label.firstChild.textContent.trim() : field}: ${message}`;
          item.append(link);
        } else {
          item.textContent = message;
        }
        list.append(item);
      }
      const heading = document.createElement("p");
      heading.className = "problems-title";
      heading.textContent = errors.length === 1 ? "One thing to fix:" : `${errors.length} things to fix:`;
      problems.replaceChildren(heading, list);
      problems.hidden = false;
      (first || problems).focus();
    };

    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      clear();
      const body = {};
      for (const input of form.elements) {
        if (!input.name) continue;
        const value = input.value.trim();
        if (input.name === "party_size") {
          const n = Number(value);
          body.party_size = value === "" ? 0 : Number.isInteger(n) ? n : value;
        } else if (input.required || input.tagName === "SELECT" || value !== "") {
          body[input.name] = value;
        }
      }
      const headers = { "Content-Type": "application/json", Accept: "application/json" };
      const csrf = csrfToken();
      if (csrf) headers["X-CSRF-Token"] = csrf;
      button.disabled = true;
      const label = button.textContent;
      button.textContent = "Placing the call…";
      try {
        const response = await fetch("/api/calls", {
          method: "POST",
          headers,
          credentials: "same-origin",
          body: JSON.stringify(body),
        });
        const answer = await response.json().catch(() => ({}));
        if (response.status === 201 && answer.id) {
          location.assign(`/calls/${encodeURIComponent(answer.id)}`);
          return;
        }
        // Errors say their kind in `code` (the API's shared error contract).
        if (answer.code === "unauthorized") {
          signIn();
          return;
        }
        if (answer.code === "call_not_placed" && answer.call && answer.call.id) {
          // Twilio refused it: the call's page says why.
          location.assign(`/calls/${encodeURIComponent(answer.call.id)}`);
          return;
        }
        if (answer.code === "invalid_request" && Array.isArray(answer.errors) && answer.errors.length) {
          report(answer.errors);
        } else {
          report([{ field: "", message: answer.error || `The server answered ${response.status}.` }]);
        }
      } catch (_) {
        report([{ field: "", message: "The server could not be reached. Is it running?" }]);
      }
      button.disabled = false;
      button.textContent = label;
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    localTimes(document);
    const list = $("[data-live-list]");
    if (list) followList();
    const call = $("[data-call]");
    if (call) {
      const finished = $("#call-state");
      if (!finished || finished.dataset.finished !== "true") followCall(call.dataset.call);
    }
    const form = $("form[data-place-call]");
    if (form) placeCalls(form);
  });
})();
