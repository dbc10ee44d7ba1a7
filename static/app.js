// Small enhancements; every page works without them.
// - Forms marked data-confirm ask before submitting (removing an entry).
// - The editor opens the entry named in the address (#entry-…) so links land on it.
"use strict";

document.addEventListener("submit", (event) => {
  const form = event.target;
  const question = form instanceof HTMLFormElement ? form.dataset.confirm : undefined;
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});

function openTarget() {
  const id = decodeURIComponent(window.location.hash.slice(1));
  const target = id ? document.getElementById(id) : null;
  if (target instanceof HTMLDetailsElement) {
    target.open = true;
    target.scrollIntoView({ block: "start" });
  }
}

window.addEventListener("hashchange", openTarget);
document.addEventListener("DOMContentLoaded", openTarget);

// Times rendered in UTC (<time datetime="…" data-local>) also show the reader's local time.
function showLocalTimes() {
  for (const element of document.querySelectorAll("time[datetime][data-local]")) {
    const when = new Date(element.getAttribute("datetime"));
    if (Number.isNaN(when.getTime())) {
      continue;
    }
    const local = document.createElement("small");
    local.className = "muted local-time";
    local.textContent = when.toLocaleString();
    element.after(document.createElement("br"), local);
  }
}

document.addEventListener("DOMContentLoaded", showLocalTimes);
