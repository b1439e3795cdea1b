// Marks that scripts run, so CSS can hide the no-JS fallbacks that HTMX replaces.
document.documentElement.classList.add("js");
