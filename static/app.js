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
