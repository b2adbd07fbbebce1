// Tenantflow portal: the few lines of script the pages use. Every page
// works without them; they add live progress and hide the options of the
// templates not chosen.
"use strict";

// A tenant's page follows its state over Server-Sent Events while an
// operation runs (or while the platform answered from its last record),
// and reloads once the state changes (or a fresh answer comes), to show
// the actions the tenant now allows.
function followTenant(section) {
  const url = section.dataset.events;
  if (!url || !window.EventSource) return;
  const initial = section.dataset.state;
  const field = (name) => document.querySelectorAll('[data-live="' + name + '"]');
  const set = (name, text) => field(name).forEach((el) => { el.textContent = text; });
  const events = new EventSource(url);
  events.addEventListener("tenant", (e) => {
    const s = JSON.parse(e.data);
    set("state", s.state);
    field("state").forEach((el) => { el.className = "state " + s.tag; });
    set("done", s.done);
    set("total", s.total);
    set("step", s.step);
    set("step-sep", s.step ? ": " : "");
    const bar = document.getElementById("progress");
    if (bar) { bar.value = s.percent; bar.textContent = s.percent + " %"; }
    field("error").forEach((el) => { el.textContent = s.error || ""; el.hidden = !s.error; });
    if (s.state !== initial) {
      events.close();
      // Without ?done=…: the notice of what was done is past.
      window.location.replace(window.location.pathname);
    } else if (section.dataset.stale === "true" && !s.stale) {
      events.close();
      window.location.reload();
    }
  });
  events.addEventListener("end", () => events.close());
}

// The new-customer form shows the options of the chosen template only.
function templateOptions(select) {
  const show = () => document.querySelectorAll(".template-options").forEach((fs) => {
    const on = fs.dataset.template === select.value;
    fs.hidden = !on;
    fs.disabled = !on;
  });
  select.addEventListener("change", show);
  show();
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-events]").forEach(followTenant);
  const tpl = document.getElementById("template");
  if (tpl) templateOptions(tpl);
  const invalid = document.querySelector('[aria-invalid="true"]');
  if (invalid) invalid.focus();
});
