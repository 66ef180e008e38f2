// deepfolder serve: the evidence pane, the new-run form and its live progress.
// Loaded from /static only (the Content-Security-Policy forbids inline scripts).
"use strict";

const timings = (window.deepfolderTimings = { clicks: [] });

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) if (c != null) node.append(c);
  return node;
}

function seconds(s) {
  s = Math.max(0, Math.floor(s));
  const m = Math.floor(s / 60);
  return `${String(m).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}`;
}

// --- the evidence pane ----------------------------------------------------------------

async function openPane(runId, eid, link) {
  const pane = document.getElementById("pane");
  const body = document.getElementById("pane-body");
  const record = { eid, start: performance.now(), shown: null };
  timings.clicks.push(record);
  document.querySelectorAll("a.cite.active").forEach((a) => a.classList.remove("active"));
  if (link) link.classList.add("active");
  pane.hidden = false;
  pane.dataset.eid = eid;
  pane.dataset.ready = "";
  body.replaceChildren(el("p", { text: "loading " + eid + "…" }));
  const reply = await fetch(`/api/runs/${runId}/evidence/${eid}`);
  if (!reply.ok) {
    body.replaceChildren(el("p", { class: "problem", text: await reply.text() }));
    return;
  }
  const ev = await reply.json();
  if (pane.dataset.eid !== eid) return; // another citation was clicked meanwhile
  const head = el(
    "header",
    {},
    el("div", { class: "pane-label", text: ev.label }),
    el("div", { class: "pane-id", text: `${ev.id} · ${ev.kind}` }),
  );
  const view = (VIEWS[ev.view] || VIEWS.text)(ev);
  const parts = [head, view.node];
  if (ev.problem) parts.push(el("p", { class: "problem", text: ev.problem }));
  if (ev.url) parts.push(el("p", {}, el("a", { href: ev.url, rel: "noreferrer", text: ev.url })));
  body.replaceChildren(...parts);
  await view.ready;
  record.shown = performance.now();
  pane.dataset.ready = eid;
}

const VIEWS = {
  pdf(ev) {
    const wrap = el("div", { class: "page-wrap" });
    const img = el("img", { class: "page", alt: `page ${ev.page}`, src: ev.page_url });
    wrap.append(img);
    for (const [x, y, w, h] of ev.highlights) {
      const box = el("div", { class: "hl" });
      Object.assign(box.style, { left: `${x * 100}%`, top: `${y * 100}%`, width: `${w * 100}%`, height: `${h * 100}%` });
      wrap.append(box);
    }
    const found = ev.highlights.length ? "" : " (the passage was not found in the page's text layer)";
    const node = el(
      "div",
      { class: "view-pdf" },
      el("div", { class: "pane-page", text: `Page ${ev.page}${found}` }),
      wrap,
      el("h4", { text: "Cited passage" }),
      el("mark", { class: "passage", text: ev.text }),
    );
    const ready = img.decode().then(() => {
      const first = wrap.querySelector(".hl");
      if (first) first.scrollIntoView({ block: "center" });
    }, () => {});
    return { node, ready };
  },

  media(ev) {
    const start = ev.start || 0;
    const end = ev.end == null ? null : ev.end;
    const player = el(ev.media === "audio" ? "audio" : "video", { controls: "", preload: "auto", class: "player", src: ev.file_url });
    player.muted = true; // autoplay is allowed for muted media; the reader can unmute
    const ready = new Promise((resolve) => {
      player.addEventListener("loadedmetadata", () => {
        player.currentTime = start;
      }, { once: true });
      player.addEventListener("seeked", () => {
        resolve();
        player.play().catch(() => {});
      }, { once: true });
      player.addEventListener("error", () => resolve(), { once: true });
    });
    if (end != null) {
      player.addEventListener("timeupdate", () => {
        if (player.currentTime >= end) player.pause();
      });
    }
    const window_ = `${seconds(start)}–${seconds(end == null ? start : end)}`;
    const node = el(
      "div",
      { class: "view-media" },
      el("div", { class: "pane-window", text: `Cited window ${window_}` }),
      player,
      el("button", { class: "replay", type: "button", text: "Play the cited window again" }),
      el("h4", { text: "Transcript and on-screen text of the window" }),
      el("pre", { class: "passage", text: ev.text }),
    );
    node.querySelector(".replay").addEventListener("click", () => {
      player.currentTime = start;
      player.play().catch(() => {});
    });
    return { node, ready };
  },

  sheet(ev) {
    const head = el("tr", {}, el("th", { text: "row" }), ...ev.header.map((h) => el("th", { text: h })));
    const rows = ev.rows.map(([n, ...cells]) => el("tr", {}, el("th", { text: String(n) }), ...cells.map((c) => el("td", { text: c }))));
    const caption = `${ev.sheet ? ev.sheet + ", " : ""}rows ${ev.locator.rows[0]}–${ev.locator.rows[1]} (header is row 1)`;
    const node = el(
      "div",
      { class: "view-sheet" },
      el("div", { class: "pane-rows", text: caption }),
      el("table", { class: "sheet" }, el("thead", {}, head), el("tbody", {}, ...rows)),
    );
    return { node, ready: Promise.resolve() };
  },

  document(ev) {
    const hit = el("mark", { class: "chunk", id: "hit", text: ev.match });
    const doc = el("div", { class: "document" }, ev.before, hit, ev.after);
    const note = ev.found ? null : el("p", { class: "problem", text: "the passage was not found in the file; it is shown alone" });
    const node = el("div", { class: "view-document" }, note, doc);
    const ready = new Promise((resolve) => requestAnimationFrame(() => {
      hit.scrollIntoView({ block: "center" });
      resolve();
    }));
    return { node, ready };
  },

  image(ev) {
    const img = el("img", { class: "image", alt: ev.source, src: ev.file_url });
    const node = el("div", { class: "view-image" }, img, el("h4", { text: "Text in the image (OCR)" }), el("pre", { class: "passage", text: ev.text }));
    return { node, ready: img.decode().catch(() => {}) };
  },

  computed(ev) {
    const node = el("div", { class: "view-computed" });
    let ready = Promise.resolve();
    if (ev.file_url) {
      const img = el("img", { class: "image", alt: ev.title, src: ev.file_url });
      node.append(img);
      ready = img.decode().catch(() => {});
    }
    if (ev.code) node.append(el("h4", { text: "Code" }), el("pre", { class: "code", text: ev.code }));
    node.append(el("h4", { text: ev.kind === "figure" ? "Description" : "Output" }), el("pre", { class: "passage", text: ev.text }));
    return { node, ready };
  },

  text(ev) {
    const node = el("div", { class: "view-text" }, el("pre", { class: "passage", text: ev.text }));
    return { node, ready: Promise.resolve() };
  },
};

function setUpReport() {
  const layout = document.querySelector(".report-layout");
  if (!layout) return;
  const runId = layout.dataset.run;
  layout.addEventListener("click", (event) => {
    const link = event.target.closest('a[href^="#E"]');
    if (!link || !layout.querySelector(".report").contains(link)) return;
    event.preventDefault();
    openPane(runId, link.getAttribute("href").slice(1), link);
  });
  document.getElementById("pane-close").addEventListener("click", () => {
    const pane = document.getElementById("pane");
    pane.querySelectorAll("video,audio").forEach((m) => m.pause());
    pane.hidden = true;
  });
}

// --- runs: start, watch, cancel, resume --------------------------------------------------

function watchJob(job) {
  const section = document.getElementById("job");
  const steps = document.getElementById("job-steps");
  const state = document.getElementById("job-state");
  const end = document.getElementById("job-end");
  const report = document.getElementById("job-report");
  const cancel = document.getElementById("job-cancel");
  const resume = document.getElementById("job-resume");
  section.hidden = false;
  section.dataset.job = job.job;
  steps.replaceChildren();
  end.textContent = "";
  state.textContent = "running";
  section.dataset.state = "running";
  report.hidden = true;
  resume.hidden = true;
  cancel.hidden = false;
  cancel.onclick = () => fetch(`/api/jobs/${job.job}/cancel`, { method: "POST" });
  const source = new EventSource(`/api/jobs/${job.job}/events`);
  source.addEventListener("step", (e) => steps.append(el("li", { text: e.data })));
  source.addEventListener("end", async (e) => {
    source.close();
    end.textContent = e.data;
    const now = await (await fetch(`/api/jobs/${job.job}`)).json();
    state.textContent = now.state;
    section.dataset.state = now.state;
    cancel.hidden = true;
    report.href = now.run_url;
    report.hidden = now.state !== "finished";
    resume.hidden = now.state === "finished";
    resume.onclick = async () => {
      const reply = await fetch(`/api/runs/${now.run}/resume`, { method: "POST" });
      const body = await reply.json();
      if (reply.ok) watchJob(body);
      else end.textContent = body.error;
    };
  });
}

function setUpNewRun() {
  const form = document.getElementById("new-run");
  if (form) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const data = Object.fromEntries(new FormData(form).entries());
      const reply = await fetch("/api/jobs", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(data),
      });
      const body = await reply.json();
      if (!reply.ok) {
        document.getElementById("job-end").textContent = body.error;
        document.getElementById("job").hidden = false;
        return;
      }
      watchJob(body);
    });
  }
  const wanted = new URLSearchParams(location.hash.slice(1)).get("job");
  if (wanted && document.getElementById("job")) {
    fetch(`/api/jobs/${wanted}`).then((r) => (r.ok ? r.json() : null)).then((job) => job && watchJob(job));
  }
  document.querySelectorAll("button.resume").forEach((button) => {
    button.addEventListener("click", async () => {
      const reply = await fetch(`/api/runs/${button.dataset.run}/resume`, { method: "POST" });
      const body = await reply.json();
      if (reply.ok) location.href = `/new#job=${body.job}`;
      else button.replaceWith(el("span", { class: "problem", text: body.error }));
    });
  });
}

document.addEventListener("DOMContentLoaded", () => {
  setUpReport();
  setUpNewRun();
});
