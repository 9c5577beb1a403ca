// Keyboard shortcuts of the case page: a button with data-shortcut="f" is pressed by the
// key f, unless the analyst is typing in a field. No inline script: the CSP forbids it.
"use strict";
document.addEventListener("keydown", function (event) {
  if (event.ctrlKey || event.metaKey || event.altKey) {
    return;
  }
  const target = event.target;
  if (target instanceof HTMLElement && target.closest("input, textarea, select, [contenteditable]")) {
    return;
  }
  const button = document.querySelector('button[data-shortcut="' + event.key.toLowerCase() + '"]');
  if (button instanceof HTMLButtonElement) {
    event.preventDefault();
    button.click();
  }
});
