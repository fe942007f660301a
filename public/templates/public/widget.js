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
  // The icon is drawn (inline SVG), not a character: no font on the host site can show it as a missing glyph.
  var CHAT = "M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2zm3 6.5a1.5 1.5 0 1 0 0 .01zm5 0a1.5 1.5 0 1 0 0 .01zm5 0a1.5 1.5 0 1 0 0 .01z";
  var CLOSE = "M6.4 5 12 10.6 17.6 5 19 6.4 13.4 12l5.6 5.6-1.4 1.4-5.6-5.6L6.4 19 5 17.6l5.6-5.6L5 6.4z";
  var ns = "http://www.w3.org/2000/svg";
  var svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("width", "28");
  svg.setAttribute("height", "28");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  var path = document.createElementNS(ns, "path");
  path.setAttribute("fill", "currentColor");
  path.setAttribute("fill-rule", "evenodd");
  path.setAttribute("d", CHAT);
  svg.appendChild(path);
  button.appendChild(svg);
  // Black or white on the button's colour, whichever contrasts more (WCAG relative luminance).
  function channel(hex, i) { var c = parseInt(hex.length === 4 ? hex[i + 1] + hex[i + 1] : hex.substr(1 + 2 * i, 2), 16) / 255; return c <= 0.04045 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4); }
  var lum = 0.2126 * channel(color, 0) + 0.7152 * channel(color, 1) + 0.0722 * channel(color, 2);
  var ink = (lum + 0.05) / 0.05 > 1.05 / (lum + 0.05) ? "#000" : "#fff";
  button.style.cssText = "position:fixed;bottom:20px;" + position + ":20px;width:56px;height:56px;border-radius:50%;border:0;padding:0;" +
    "display:flex;align-items:center;justify-content:center;background:" + color + ";color:" + ink + ";cursor:pointer;" +
    "box-shadow:0 4px 14px rgba(0,0,0,.25);z-index:2147483000";
  var frame = document.createElement("iframe");
  frame.id = "minds-widget-frame";
  frame.title = "Chat with " + config.name;
  frame.src = config.pageUrl + "?embed=1";
  frame.loading = "lazy";
  frame.allow = "clipboard-write"; // the answers' copy button
  frame.hidden = true;
  frame.style.cssText = "position:fixed;bottom:88px;" + position + ":20px;width:min(380px,calc(100vw - 40px));height:min(620px,calc(100vh - 108px));" +
    "border:0;border-radius:14px;box-shadow:0 8px 30px rgba(0,0,0,.3);background:#fff;z-index:2147483000";
  button.addEventListener("click", function () {
    frame.hidden = !frame.hidden;
    button.setAttribute("aria-expanded", String(!frame.hidden));
    path.setAttribute("d", frame.hidden ? CHAT : CLOSE);
  });
  function mount() { document.body.appendChild(frame); document.body.appendChild(button); }
  if (document.body) mount(); else document.addEventListener("DOMContentLoaded", mount);
})();
