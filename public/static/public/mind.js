/* The public mind page: streams answers from /m/<slug>/chat, shows sources, keeps the conversation across reloads.
   Everything from the server or the visitor is inserted as text (textContent), never as HTML. */
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("mind-config").textContent);
  var base = "/m/" + encodeURIComponent(config.slug);
  var log = document.getElementById("log");
  var form = document.getElementById("ask");
  var input = document.getElementById("message");
  var send = document.getElementById("send");
  var statusLine = document.getElementById("status");
  var suggested = document.getElementById("suggested");
  var followups = document.getElementById("followups");
  var emailForm = document.getElementById("email-form");
  var emailInput = document.getElementById("email");
  var convKey = "minds:conversation:" + config.slug;
  var emailKey = "minds:email:" + config.slug;
  var busy = false;

  function store(key, value) { try { if (value === null) localStorage.removeItem(key); else localStorage.setItem(key, value); } catch (e) { /* private mode */ } }
  function load(key) { try { return localStorage.getItem(key); } catch (e) { return null; } }

  var visitor = load("minds:visitor");
  if (!visitor || !/^[A-Za-z0-9_-]{16,64}$/.test(visitor)) {
    var bytes = new Uint8Array(18);
    crypto.getRandomValues(bytes);
    visitor = Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
    store("minds:visitor", visitor);
  }

  function element(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function timestamp(seconds) {
    var s = Math.floor(seconds);
    return Math.floor(s / 60) + ":" + ("0" + (s % 60)).slice(-2);
  }

  function safeLink(url) { return typeof url === "string" && /^https?:\/\//i.test(url) ? url : null; }

  function renderSources(container, citations) {
    if (!config.showSources || !citations || !citations.length) return;
    var list = container.querySelector("ol.sources");
    if (!list) {
      list = element("ol", "sources");
      list.setAttribute("aria-label", "Sources");
      container.appendChild(list);
    }
    citations.forEach(function (c) {
      if (list.querySelector('[data-index="' + Number(c.index) + '"]')) return;
      var item = element("li");
      item.value = Number(c.index);
      item.setAttribute("data-index", String(Number(c.index)));
      var label = c.sourceName + (c.page ? ", page " + c.page : "") + (c.startSeconds !== null && c.startSeconds !== undefined ? " at " + timestamp(c.startSeconds) : "");
      var href = safeLink(c.url);
      if (href) {
        var a = element("a", null, label);
        a.href = href; a.target = "_blank"; a.rel = "noopener noreferrer nofollow";
        item.appendChild(a);
      } else {
        item.textContent = label;
      }
      if (c.snippet) item.title = c.snippet;
      list.appendChild(item);
    });
  }

  function addMessage(role, text) {
    var box = element("div", "msg " + role);
    var p = element("p", null, text || "");
    box.appendChild(p);
    log.appendChild(box);
    log.scrollTop = log.scrollHeight;
    return box;
  }

  function addPlay(box, text) {
    if (!config.voice) return;
    var button = element("button", "link play", "▶ Listen");
    button.type = "button";
    button.addEventListener("click", function () {
      button.disabled = true;
      fetch(base + "/speech", { method: "POST", headers: headers(), body: JSON.stringify({ text: text }) })
        .then(function (r) { if (!r.ok) throw new Error("voice"); return r.blob(); })
        .then(function (blob) { var audio = new Audio(URL.createObjectURL(blob)); audio.play(); })
        .catch(function () { showStatus("The voice is unavailable right now."); })
        .finally(function () { button.disabled = false; });
    });
    box.appendChild(button);
  }

  function showFollowups(items) {
    followups.textContent = "";
    (items || []).forEach(function (q) {
      var chip = element("button", "chip", q);
      chip.type = "button";
      chip.addEventListener("click", function () { ask(q); });
      followups.appendChild(chip);
    });
    followups.hidden = !(items && items.length);
  }

  function showStatus(text) { statusLine.textContent = text || ""; }

  // The CSRF token counts where the browser sends the visitor cookie (the mind's own site); the visitor id where
  // it doesn't (the widget's iframe on another site).
  function headers() {
    return { "Content-Type": "application/json", "X-Minds-Visitor": visitor, "X-CSRFToken": config.csrfToken || "" };
  }

  function needsEmail() { return config.collectEmail && !load(emailKey); }

  function setBusy(value) { busy = value; send.disabled = value; input.setAttribute("aria-busy", String(value)); }

  function errorText(status, body) {
    if (body && body.message) return body.message;
    if (status === 429) return "You're sending messages too quickly. Please wait a moment.";
    if (status === 502) return "The assistant is unavailable right now. Please try again shortly.";
    return "Something went wrong. Please try again.";
  }

  function ask(text) {
    text = (text || "").trim();
    if (!text || busy) return;
    if (needsEmail()) { emailForm.hidden = false; emailInput.focus(); showStatus("Please enter your email to start."); pendingQuestion = text; return; }
    showStatus("");
    if (suggested) suggested.hidden = true;
    followups.hidden = true;
    addMessage("user", text);
    var box = addMessage("assistant", "");
    var paragraph = box.querySelector("p");
    box.setAttribute("aria-busy", "true");
    setBusy(true);
    var payload = { message: text, conversationId: load(convKey), channel: config.channel };
    if (config.collectEmail) payload.email = load(emailKey);
    fetch(base + "/chat", { method: "POST", headers: headers(), body: JSON.stringify(payload) })
      .then(function (response) {
        if (!response.ok || !response.body) {
          return response.json().catch(function () { return null; }).then(function (body) {
            if (response.status === 404 && payload.conversationId) store(convKey, null);
            // The model failed but the question was saved: keep the conversation so a retry continues it.
            if (body && body.details && body.details.conversationId) store(convKey, body.details.conversationId);
            if (body && body.code === "email_required") { store(emailKey, null); emailForm.hidden = false; }
            throw new Error(errorText(response.status, body));
          });
        }
        return readStream(response.body, function (event, data) {
          if (event === "conversation") store(convKey, data.conversationId);
          else if (event === "token") { paragraph.textContent += data.content; log.scrollTop = log.scrollHeight; }
          else if (event === "citation") renderSources(box, [data]);
          else if (event === "done") {
            paragraph.textContent = data.message.content;
            renderSources(box, data.message.citations);
            showFollowups(data.followups);
            addPlay(box, data.message.content);
          } else if (event === "error") throw new Error(errorText(502, data));
        });
      })
      .catch(function (err) {
        box.classList.add("error");
        if (!paragraph.textContent) paragraph.textContent = err.message;
        showStatus(err.message);
      })
      .finally(function () { box.removeAttribute("aria-busy"); setBusy(false); input.focus(); });
  }

  function readStream(body, onEvent) {
    var reader = body.getReader();
    var decoder = new TextDecoder();
    var buffer = "";
    function pump() {
      return reader.read().then(function (result) {
        buffer += decoder.decode(result.value || new Uint8Array(), { stream: !result.done });
        var blocks = buffer.split("\n\n");
        buffer = blocks.pop();
        blocks.forEach(function (block) {
          var event = "message", data = "";
          block.split("\n").forEach(function (line) {
            if (line.indexOf("event: ") === 0) event = line.slice(7);
            else if (line.indexOf("data: ") === 0) data += line.slice(6);
          });
          if (data) onEvent(event, JSON.parse(data));
        });
        if (!result.done) return pump();
      });
    }
    return pump();
  }

  function restore() {
    var id = load(convKey);
    if (!id) return;
    fetch(base + "/conversation/" + encodeURIComponent(id), { headers: { "X-Minds-Visitor": visitor } })
      .then(function (r) { if (!r.ok) { store(convKey, null); return null; } return r.json(); })
      .then(function (body) {
        if (!body || !body.messages.length) return;
        if (suggested) suggested.hidden = true;
        var last = null;
        body.messages.forEach(function (m) {
          var box = addMessage(m.role, m.content);
          if (m.role === "assistant") { renderSources(box, m.citations); last = m; }
        });
        if (last) showFollowups(last.followups);
      })
      .catch(function () { /* offline: the page still works for a new question */ });
  }

  var pendingQuestion = null;
  form.addEventListener("submit", function (e) {
    e.preventDefault();
    if (busy) return; // keep what the visitor typed until the current answer ends
    var text = input.value; input.value = ""; ask(text);
  });
  input.addEventListener("keydown", function (e) { if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); form.requestSubmit(); } });
  if (suggested) suggested.addEventListener("click", function (e) { var q = e.target.closest("[data-question]"); if (q) ask(q.getAttribute("data-question")); });
  emailForm.addEventListener("submit", function (e) {
    e.preventDefault();
    var value = emailInput.value.trim();
    if (!/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(value)) { showStatus("Please enter a valid email address."); emailInput.focus(); return; }
    store(emailKey, value);
    emailForm.hidden = true;
    showStatus("");
    if (pendingQuestion) { var q = pendingQuestion; pendingQuestion = null; ask(q); }
  });
  document.getElementById("restart").addEventListener("click", function () {
    store(convKey, null);
    Array.prototype.slice.call(log.querySelectorAll(".msg:not(.welcome)")).forEach(function (n) { n.remove(); });
    followups.hidden = true;
    if (suggested) suggested.hidden = false;
    showStatus("");
    input.focus();
  });
  if (needsEmail()) emailForm.hidden = false;
  restore();
})();
