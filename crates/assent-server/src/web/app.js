// Progressive enhancement only: every page works without this file.
document.addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-copy]");
  if (!button) return;
  const field = document.getElementById(button.dataset.copy);
  const status = button.parentElement.querySelector(".copied");
  if (!field) return;
  let ok = false;
  try {
    await navigator.clipboard.writeText(field.value);
    ok = true;
  } catch (_) {
    field.select();
    ok = document.execCommand && document.execCommand("copy");
  }
  if (status) status.textContent = ok ? "Copied" : "Select the text and copy it";
});

// The campaign composer: the final body and its segment count while typing. Without
// this, the Preview button shows the same thing.
const composerBody = document.getElementById("campaign-body");
if (composerBody) {
  const form = composerBody.form;
  const shown = document.getElementById("preview-body");
  const count = document.getElementById("preview-segments");
  let timer;
  composerBody.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      const data = new URLSearchParams();
      data.set("csrf", form.elements.csrf.value);
      data.set("body", composerBody.value);
      if (form.elements.type) data.set("type", form.elements.type.value);
      try {
        const res = await fetch("/campaigns/preview", { method: "POST", body: data });
        const answer = await res.json();
        if (answer.error) {
          count.textContent = answer.error;
        } else {
          shown.textContent = answer.body;
          count.innerHTML = "<strong></strong>";
          count.firstChild.textContent = answer.segments;
        }
      } catch (_) {
        // Offline or signed out: the Preview button still works.
      }
    }, 250);
  });
}

// An import's page: the progress bar follows the status endpoint each second, and the
// page reloads for the report when the import ends. Without this script the page reloads
// itself every two seconds (its Refresh header).
const importProgress = document.querySelector(".import-progress[data-status]");
if (importProgress) {
  const bar = importProgress.querySelector("progress");
  const poll = async () => {
    try {
      const res = await fetch(importProgress.dataset.status);
      const s = await res.json();
      if (s.state !== "running") {
        location.reload();
        return;
      }
      bar.value = s.percent;
      bar.textContent = s.percent + "%";
    } catch (_) {
      // The Refresh header still reloads the page.
    }
    setTimeout(poll, 1000);
  };
  setTimeout(poll, 1000);
}
