// "Copy" buttons: data-copy names the element whose text goes to the clipboard.
// Hidden without scripts (the text stays selectable), shown when the clipboard exists.
(function () {
  if (!navigator.clipboard) return;
  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    var source = document.querySelector(button.dataset.copy);
    if (!source) return;
    button.hidden = false;
    var label = button.textContent;
    button.addEventListener("click", function () {
      var text = source.matches("ul, ol")
        ? Array.from(source.querySelectorAll("li")).map(function (li) { return li.textContent.trim(); }).join("\n")
        : source.textContent.replace(/\s+/g, "");
      navigator.clipboard.writeText(text).then(function () {
        button.textContent = "Copied";
        setTimeout(function () { button.textContent = label; }, 2000);
      });
    });
  });
})();
