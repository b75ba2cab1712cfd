// Small page helpers: confirmation dialogs and closing inline forms.
document.addEventListener("click", (event) => {
  const opener = event.target.closest("[data-open-dialog]");
  if (opener) {
    const dialog = document.getElementById(opener.dataset.openDialog);
    if (dialog && dialog.showModal) { event.preventDefault(); dialog.showModal(); }
    return;
  }
  const closer = event.target.closest("[data-close-dialog]");
  if (closer) { closer.closest("dialog").close(); return; }
  const cancel = event.target.closest("[data-cancel-form]");
  if (cancel) { event.preventDefault(); cancel.closest(".inline-form").remove(); }
});
document.addEventListener("htmx:afterSwap", (event) => {
  const first = event.detail.target.querySelector("[autofocus], input:not([type=hidden]), textarea");
  if (first && event.detail.target.classList.contains("form-slot")) first.focus();
});
