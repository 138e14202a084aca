// pikku-storage console: reload list pages every data-refresh seconds while the tab is
// visible, the box is ticked and no form field has focus. The choice is kept per browser.
(function () {
  "use strict";
  var seconds = parseInt(document.body.getAttribute("data-refresh") || "0", 10);
  var box = document.getElementById("auto-refresh");
  if (!seconds || !box) {
    return;
  }
  var key = "pikku-console-refresh";
  try {
    box.checked = window.localStorage.getItem(key) !== "off";
    box.addEventListener("change", function () {
      window.localStorage.setItem(key, box.checked ? "on" : "off");
    });
  } catch (e) {
    // storage may be disabled: keep the default
  }
  window.setInterval(function () {
    var typing = document.activeElement && /^(INPUT|SELECT|TEXTAREA)$/.test(document.activeElement.tagName)
      && document.activeElement !== box;
    if (box.checked && !typing && document.visibilityState === "visible") {
      window.location.reload();
    }
  }, seconds * 1000);
})();
