// The rater page: keyboard shortcuts, the task timer, category chip filters and counts, skip, help, guidelines.
(() => {
  const $ = (selector, root = document) => root.querySelector(selector);
  const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));
  let shownAt = performance.now(); // when the current task appeared; seconds spent = submit time - this

  const judgeForm = () => $("#judge-form");
  const help = () => $("#help");
  const guide = () => $("#guide");

  function choosePreference(key) {
    const radio = $(`#judge-form input[name=preference][data-key="${key}"]`);
    if (!radio) return;
    radio.checked = true;
    showHint(false);
  }

  function showHint(show) {
    const hint = $("#pref-hint");
    if (hint) hint.hidden = !show;
    const bar = $(".pref-bar");
    if (bar) bar.classList.toggle("needs-choice", show);
  }

  function openSkip() {
    const skip = $("#skip");
    if (!skip) return;
    skip.open = true;
    $("#skip-reason").focus();
  }

  function toggleHelp(show) {
    const box = help();
    box.hidden = show === undefined ? !box.hidden : !show;
  }

  function closePanels() {
    const skip = $("#skip");
    if (skip && skip.open) { skip.open = false; return true; }
    if (!help().hidden) { toggleHelp(false); return true; }
    if (guide().open) { guide().open = false; return true; }
    return false;
  }

  document.addEventListener("keydown", (event) => {
    if (event.defaultPrevented || event.isComposing) return;
    const target = event.target;
    if (event.key === "Escape") {
      if (closePanels() && target.blur) target.blur();
      return;
    }
    const typing = target.matches("textarea, select, [contenteditable], input:not([type=radio]):not([type=checkbox])");
    if (typing) {
      // Ctrl+Enter submits from the rationale; Enter in the skip reason submits the skip form natively.
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && target.form === judgeForm()) {
        event.preventDefault();
        judgeForm().requestSubmit();
      } else if (event.key === "Enter" && target.classList.contains("chip-filter")) {
        event.preventDefault(); // filtering is not submitting
      }
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.key === "?") { event.preventDefault(); toggleHelp(); return; }
    if (event.key === "g") { event.preventDefault(); guide().open = !guide().open; return; }
    const form = judgeForm();
    if (!form || !help().hidden) return;
    if (/^[1-5]$/.test(event.key)) {
      event.preventDefault();
      choosePreference(event.key);
    } else if (event.key === "s") {
      event.preventDefault();
      openSkip();
    } else if (event.key === "Enter" && !target.closest("button, a, summary")) {
      event.preventDefault();
      form.requestSubmit();
    }
  });

  // Runs before htmx sees the submit: no preference means no request, just a hint; else stamp the time.
  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (form.id !== "judge-form") return;
    if (!form.querySelector("input[name=preference]:checked")) {
      event.preventDefault();
      event.stopPropagation();
      showHint(true);
      return;
    }
    form.elements.seconds.value = ((performance.now() - shownAt) / 1000).toFixed(1);
  }, true);

  document.addEventListener("htmx:afterSwap", (event) => {
    if (event.detail.target.id !== "task" && !$("#task").contains(event.detail.target)) return;
    shownAt = performance.now();
    const task = $("#task");
    window.scrollTo({ top: 0 });
    task.focus({ preventScroll: true }); // the old focus went away with the old task; keys work from here
  });

  document.addEventListener("change", (event) => {
    const input = event.target;
    if (input.name === "preference") showHint(false);
    if (input.matches(".chips input[type=checkbox]")) {
      const box = input.closest(".chips");
      $("[data-chip-count]", box).textContent = $$("input:checked", box).length;
    }
  });

  // Severity and axis ratings can be taken back: clicking the chosen segment again clears it (unset is allowed).
  document.addEventListener("pointerdown", (event) => {
    const input = event.target.closest("label.seg")?.querySelector("input[data-unset]");
    if (input) input.dataset.was = input.checked ? "1" : "";
  });
  document.addEventListener("click", (event) => {
    const input = event.target;
    if (input.matches && input.matches("input[data-unset]") && input.dataset.was === "1") {
      input.checked = false;
      input.dataset.was = "";
    }
    if (event.target.closest("[data-help-toggle]")) toggleHelp();
    else if (event.target === help()) toggleHelp(false);
    if (event.target.closest("[data-close-guide]")) guide().open = false;
  });

  function filter(items, query, keep) {
    const q = query.trim().toLowerCase();
    items.forEach((item) => { item.hidden = Boolean(q) && !item.dataset.filter.includes(q) && !keep(item); });
  }

  document.addEventListener("input", (event) => {
    const input = event.target;
    if (input.classList.contains("chip-filter")) {
      const box = input.closest(".chips");
      filter($$(".cat-chip", box), input.value, (chip) => chip.querySelector("input").checked);
      $$(".chip-group", box).forEach((group) => {
        group.classList.toggle("is-empty", $$(".cat-chip:not([hidden])", group).length === 0);
      });
    } else if (input.classList.contains("guide-filter")) {
      filter($$(".guide-cat"), input.value, () => false);
    }
  });
})();
