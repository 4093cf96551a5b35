// The mail preview's page: shows the HTML the console posts (the sender's renderer's, links
// inert) in its sandboxed frame. Only the console that frames this page is listened to.
"use strict";
(function () {
  var frame = document.querySelector("iframe");
  window.addEventListener("message", function (event) {
    if (event.source !== window.parent || event.origin !== window.location.origin) return;
    var shown = event.data;
    if (!shown || typeof shown.html !== "string") return;
    frame.title = typeof shown.title === "string" ? shown.title : "";
    frame.srcdoc = shown.html;
  });
})();
