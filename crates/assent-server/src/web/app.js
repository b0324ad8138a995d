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
