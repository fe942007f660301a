/* Minds chat widget. Embed with one script tag: src=".../m/<slug>/widget.js", optional data-position="left|right"
   and data-color="#hex". It refuses to load on sites that are not in the mind's allowedOrigins. */
(function () {
  "use strict";
  var config = {{ config|safe }};
  var origin = window.location.origin.toLowerCase();
  if (config.allowedOrigins.indexOf(origin) === -1) {
    if (window.console) console.warn("Minds widget: " + origin + " is not allowed to embed " + config.name + ". Add it to the mind's allowedOrigins.");
    return;
  }
  var script = document.currentScript;
  var position = script && script.getAttribute("data-position") === "left" ? "left" : "right";
  var color = script && /^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$/.test(script.getAttribute("data-color") || "") ? script.getAttribute("data-color") : "#4f46e5";
  var button = document.createElement("button");
  button.type = "button";
  button.id = "minds-widget-button";
  button.setAttribute("aria-label", "Chat with " + config.name);
  button.setAttribute("aria-expanded", "false");
  button.textContent = "\u{1F4AC}";
  button.style.cssText = "position:fixed;bottom:20px;" + position + ":20px;width:56px;height:56px;border-radius:50%;border:0;" +
    "background:" + color + ";color:#fff;font-size:24px;cursor:pointer;box-shadow:0 4px 14px rgba(0,0,0,.25);z-index:2147483000";
  var frame = document.createElement("iframe");
  frame.id = "minds-widget-frame";
  frame.title = "Chat with " + config.name;
  frame.src = config.pageUrl + "?embed=1";
  frame.loading = "lazy";
  frame.hidden = true;
  frame.style.cssText = "position:fixed;bottom:88px;" + position + ":20px;width:min(380px,calc(100vw - 40px));height:min(600px,calc(100vh - 120px));" +
    "border:0;border-radius:14px;box-shadow:0 8px 30px rgba(0,0,0,.3);background:#fff;z-index:2147483000";
  button.addEventListener("click", function () {
    frame.hidden = !frame.hidden;
    button.setAttribute("aria-expanded", String(!frame.hidden));
  });
  function mount() { document.body.appendChild(frame); document.body.appendChild(button); }
  if (document.body) mount(); else document.addEventListener("DOMContentLoaded", mount);
})();
