// Small page helpers: confirmation dialogs, closing inline forms and banners, the error page's "Go back".
// (No inline handlers anywhere: the Content-Security-Policy allows only these files' scripts.)
document.addEventListener("click", (event) => {
  const dismiss = event.target.closest("[data-dismiss]");
  if (dismiss) { dismiss.closest(".flash").remove(); return; }
  const back = event.target.closest("[data-history-back]");
  if (back && history.length > 1) { event.preventDefault(); history.back(); return; }
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
