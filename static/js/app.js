// Marks that scripts run, so CSS can hide the no-JS fallbacks that HTMX replaces.
document.documentElement.classList.add("js");

// A picker's search box sits inside the form it fills (the rule editor's resources):
// Enter searches there (HTMX's "search" trigger) instead of submitting that form.
document.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && event.target.matches?.("input[data-picker-search]")) {
    event.preventDefault();
  }
});
