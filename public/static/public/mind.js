/* The public mind page: streams answers from /m/<slug>/chat, renders them as Markdown with citations that open
   their source cards, keeps the conversation across reloads.
   Nothing from the server or the visitor is ever parsed as HTML: the Markdown renderer below builds DOM nodes
   (createElement, textContent), links only to http(s) and mailto, and ignores everything else. */
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
  var uid = 0;

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
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  var ICONS = {
    copy: "M8 3h10a2 2 0 0 1 2 2v12h-2V5H8zM4 7h10a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H4a2 2 0 0 1-2-2V9a2 2 0 0 1 2-2zm0 2v11h10V9z",
    up: "M2 21h4V9H2zm20-11a2 2 0 0 0-2-2h-6.3l1-4.6V3a1.5 1.5 0 0 0-.5-1.1L13.2 1 6.6 7.6A2 2 0 0 0 6 9v10a2 2 0 0 0 2 2h9a2 2 0 0 0 1.8-1.2l3-7.1A2 2 0 0 0 22 12z",
    down: "M22 3h-4v12h4zM2 14a2 2 0 0 0 2 2h6.3l-1 4.6v.4a1.5 1.5 0 0 0 .5 1.1l1 .9 6.6-6.6A2 2 0 0 0 18 15V5a2 2 0 0 0-2-2H7a2 2 0 0 0-1.8 1.2l-3 7.1A2 2 0 0 0 2 12z",
    play: "M8 5v14l11-7z"
  };

  function icon(name) {
    var ns = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 24 24"); svg.setAttribute("width", "16"); svg.setAttribute("height", "16");
    svg.setAttribute("aria-hidden", "true"); svg.setAttribute("focusable", "false");
    var path = document.createElementNS(ns, "path");
    path.setAttribute("fill", "currentColor"); path.setAttribute("d", ICONS[name]);
    svg.appendChild(path);
    return svg;
  }

  /* ---- Markdown, into DOM nodes ------------------------------------------------------------------------------ */

  var MAX_DEPTH = 4;        // lists, quotes and emphasis nested deeper are shown flat
  var MAX_CHARS = 40000;    // an answer longer than this is shown as plain text past it

  function safeHref(url) {
    url = (url || "").trim();
    if (!/^(https?:\/\/|mailto:)/i.test(url)) return null;
    try {
      var parsed = new URL(url);
      return /^(https?:|mailto:)$/.test(parsed.protocol) ? parsed.href : null;
    } catch (e) { return null; }
  }

  function link(href, text) {
    var a = element("a", null, text);
    a.href = href; a.target = "_blank"; a.rel = "noopener noreferrer nofollow";
    return a;
  }

  // Inline: `code`, **bold**, *italic*, _italic_, ~~struck~~, [text](url), bare https:// links, [n] citations.
  function inline(parent, text, ctx, depth) {
    var found = {}; // where each closing delimiter was last found (-1: none after that point, so none later)
    var plain = "";
    function flush() { if (plain) { parent.appendChild(document.createTextNode(plain)); plain = ""; } }
    function closing(delim, from) {
      var at = found[delim];
      if (at === -1 || (at !== undefined && at >= from)) return at;
      at = text.indexOf(delim, from);
      found[delim] = at;
      return at;
    }
    var i = 0;
    while (i < text.length) {
      var ch = text[i];
      if (ch === "`") {
        var end = closing("`", i + 1);
        if (end > i + 1) { flush(); parent.appendChild(element("code", null, text.slice(i + 1, end))); i = end + 1; continue; }
      } else if ((ch === "*" || ch === "_" || ch === "~") && depth < MAX_DEPTH) {
        var two = text.substr(i, 2);
        var delim = two === "**" || two === "__" || two === "~~" ? two : (ch === "~" ? null : ch);
        var boundary = ch !== "_" || i === 0 || !/\w/.test(text[i - 1]);
        if (delim && boundary && text[i + delim.length] && !/\s/.test(text[i + delim.length])) {
          var stop = closing(delim, i + delim.length + 1);
          if (stop !== -1) {
            flush();
            var tag = delim === "~~" ? "s" : delim.length === 2 ? "strong" : "em";
            var node = element(tag);
            inline(node, text.slice(i + delim.length, stop), ctx, depth + 1);
            parent.appendChild(node);
            i = stop + delim.length;
            continue;
          }
        }
      } else if (ch === "[") {
        var cite = /^\[(\d{1,3})\]/.exec(text.slice(i, i + 5));
        if (cite) { flush(); citationMarker(parent, Number(cite[1]), ctx); i += cite[0].length; continue; }
        var mid = closing("](", i + 1);
        if (mid !== -1 && mid - i < 500) {
          var close = closing(")", mid + 2);
          if (close !== -1 && close - mid < 2050) {
            var label = text.slice(i + 1, mid);
            var href = safeHref(text.slice(mid + 2, close));
            if (/[[\n]/.test(label)) label = null;
            if (label !== null && href) {
              flush(); parent.appendChild(link(href, label)); i = close + 1; continue;
            }
            if (label !== null) { plain += label; i = close + 1; continue; } // an unsafe link: its text
          }
        }
      } else if (ch === "<" && /^<(https?:\/\/|mailto:)[^\s<>]{1,2040}>/.test(text.slice(i, i + 2050))) {
        var auto = /^<([^\s<>]+)>/.exec(text.slice(i, i + 2050));
        var autoHref = safeHref(auto[1]);
        if (autoHref) { flush(); parent.appendChild(link(autoHref, auto[1])); i += auto[0].length; continue; }
      } else if (ch === "h" && text.substr(i, 4) === "http" && (i === 0 || /[\s(]/.test(text[i - 1])) && /^https?:\/\/[^\s<>()]+/.test(text.slice(i, i + 2048))) {
        var bare = /^https?:\/\/[^\s<>()]+/.exec(text.slice(i, i + 2048))[0].replace(/[.,;:!?]+$/, "");
        var target = safeHref(bare);
        if (target) { flush(); parent.appendChild(link(target, bare)); i += bare.length; continue; }
      }
      plain += ch;
      i += 1;
    }
    flush();
  }

  function citationMarker(parent, n, ctx) {
    if (!config.showSources) return; // the server sends no sources: a bare number would lead nowhere
    var c = ctx.citations[n];
    if (!c) { parent.appendChild(element("sup", "cite pending", "[" + n + "]")); return; }
    var button = element("button", "cite", String(n));
    button.type = "button";
    button.setAttribute("aria-label", "Source " + n + ": " + c.sourceName);
    button.setAttribute("aria-controls", ctx.id + "-src-" + n);
    button.setAttribute("data-cite", String(n));
    parent.appendChild(button);
  }

  // Blocks: paragraphs, headings, lists (nested), quotes, fenced code, rules.
  function markdown(text, ctx) {
    var root = document.createDocumentFragment();
    var rest = "";
    if (text.length > MAX_CHARS) { rest = text.slice(MAX_CHARS); text = text.slice(0, MAX_CHARS); }
    blocks(root, text.replace(/\r\n?/g, "\n").split("\n"), ctx, 0);
    if (rest) root.appendChild(element("p", null, rest));
    return root;
  }

  var LIST_ITEM = /^(\s*)([-*+]|\d{1,9}[.)])\s+(.*)$/;

  function blocks(parent, lines, ctx, depth) {
    var i = 0, para = [];
    function endPara() {
      if (!para.length) return;
      var p = element("p");
      para.forEach(function (line, k) { if (k) p.appendChild(element("br")); inline(p, line, ctx, 0); });
      parent.appendChild(p);
      para = [];
    }
    while (i < lines.length) {
      var line = lines[i];
      var fence = /^\s*(```|~~~)\s*([\w+-]*)/.exec(line);
      if (fence) {
        endPara();
        var code = [];
        i += 1;
        while (i < lines.length && lines[i].trim().indexOf(fence[1]) !== 0) { code.push(lines[i]); i += 1; }
        i += 1; // the closing fence (or the end while it streams)
        var pre = element("pre"), codeNode = element("code", null, code.join("\n"));
        if (fence[2]) codeNode.setAttribute("data-lang", fence[2]);
        pre.appendChild(codeNode);
        parent.appendChild(pre);
        continue;
      }
      if (!line.trim()) { endPara(); i += 1; continue; }
      var heading = /^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$/.exec(line);
      if (heading) {
        endPara();
        var h = element("h" + Math.min(6, heading[1].length + 2), "md-h");
        inline(h, heading[2], ctx, 0);
        parent.appendChild(h);
        i += 1; continue;
      }
      if (/^\s{0,3}([-*_])(\s*\1){2,}\s*$/.test(line)) { endPara(); parent.appendChild(element("hr")); i += 1; continue; }
      if (/^\s{0,3}>/.test(line)) {
        endPara();
        var quoted = [];
        while (i < lines.length && /^\s{0,3}>/.test(lines[i])) { quoted.push(lines[i].replace(/^\s{0,3}>\s?/, "")); i += 1; }
        var quote = element("blockquote");
        if (depth < MAX_DEPTH) blocks(quote, quoted, ctx, depth + 1);
        else quote.textContent = quoted.join("\n");
        parent.appendChild(quote);
        continue;
      }
      if (LIST_ITEM.test(line)) {
        endPara();
        i = list(parent, lines, i, ctx, depth);
        continue;
      }
      para.push(line.trim());
      i += 1;
    }
    endPara();
  }

  function list(parent, lines, i, ctx, depth) {
    var first = LIST_ITEM.exec(lines[i]);
    var indent = first[1].length;
    var ordered = /\d/.test(first[2]);
    var node = element(ordered ? "ol" : "ul");
    if (ordered && parseInt(first[2], 10) !== 1) node.start = parseInt(first[2], 10);
    var item = null;
    while (i < lines.length) {
      var line = lines[i];
      var m = LIST_ITEM.exec(line);
      if (m && m[1].length === indent && /\d/.test(m[2]) === ordered) {
        item = element("li");
        inline(item, m[3], ctx, 0);
        node.appendChild(item);
        i += 1;
      } else if (m && m[1].length > indent && item) {
        if (depth < MAX_DEPTH) i = list(item, lines, i, ctx, depth + 1);
        else { item.appendChild(document.createTextNode(" " + m[3])); i += 1; }
      } else if (!m && line.trim() && /^\s+/.test(line) && item) {
        item.appendChild(element("br")); inline(item, line.trim(), ctx, 0); i += 1; // a continued item
      } else if (!line.trim() && i + 1 < lines.length && LIST_ITEM.test(lines[i + 1]) && LIST_ITEM.exec(lines[i + 1])[1].length >= indent) {
        i += 1; // a loose list
      } else {
        break;
      }
    }
    parent.appendChild(node);
    return i;
  }

  /* ---- Sources ----------------------------------------------------------------------------------------------- */

  function timestamp(seconds) {
    var s = Math.floor(seconds), h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
    return (h ? h + ":" + ("0" + m).slice(-2) : m) + ":" + ("0" + (s % 60)).slice(-2);
  }

  function where(c) {
    if (typeof c.startSeconds === "number") return "at " + timestamp(c.startSeconds);
    if (c.page) return "page " + c.page;
    return "";
  }

  function linkText(c) {
    if (c.sourceType === "youtube") return typeof c.startSeconds === "number" ? "Watch at " + timestamp(c.startSeconds) : "Watch the video";
    if (c.sourceType === "podcast") return typeof c.startSeconds === "number" ? "Listen at " + timestamp(c.startSeconds) : "Listen to the episode";
    if (c.page) return "Open page " + c.page;
    return "View source";
  }

  function sourceCard(ctx, c) {
    var card = element("details", "source");
    card.id = ctx.id + "-src-" + c.index;
    card.setAttribute("data-index", String(c.index));
    var summary = element("summary");
    summary.appendChild(element("span", "num", String(c.index)));
    summary.appendChild(element("span", "src-name", c.sourceName || "Source"));
    if (where(c)) summary.appendChild(element("span", "where", where(c)));
    card.appendChild(summary);
    var body = element("div", "source-body");
    if (c.snippet) body.appendChild(element("blockquote", "passage", c.snippet));
    var href = safeHref(c.link || c.url);
    if (href && !/^mailto:/i.test(href)) body.appendChild(link(href, linkText(c)));
    card.appendChild(body);
    return card;
  }

  function renderSources(ctx) {
    if (!config.showSources) return;
    var items = Object.keys(ctx.citations).map(Number).sort(function (a, b) { return a - b; });
    if (!items.length) return;
    if (!ctx.sources) {
      ctx.sources = element("section", "sources");
      ctx.sources.setAttribute("aria-label", "Sources");
      ctx.sources.appendChild(element("h2", "sources-title", "Sources"));
      ctx.list = element("div", "source-list");
      ctx.list.setAttribute("role", "list");
      ctx.list.setAttribute("aria-label", "Sources");
      ctx.sources.appendChild(ctx.list);
      ctx.box.insertBefore(ctx.sources, ctx.tools || null);
    }
    items.forEach(function (n) {
      if (ctx.list.querySelector('[data-index="' + n + '"]')) return;
      var wrap = element("div", "source-item");
      wrap.setAttribute("role", "listitem");
      wrap.appendChild(sourceCard(ctx, ctx.citations[n]));
      var after = Array.prototype.filter.call(ctx.list.children, function (el) { return Number(el.firstChild.getAttribute("data-index")) > n; })[0];
      ctx.list.insertBefore(wrap, after || null);
    });
  }

  function openSource(ctx, n, button) {
    var card = document.getElementById(ctx.id + "-src-" + n);
    if (!card) return;
    var opening = !card.open || !card.classList.contains("active");
    Array.prototype.forEach.call(ctx.box.querySelectorAll("details.source.active"), function (d) { d.classList.remove("active"); });
    card.open = opening;
    if (opening) { card.classList.add("active"); ctx.openIndex = n; } else ctx.openIndex = null;
    syncButtons(ctx);
    if (opening) {
      card.scrollIntoView({ block: "nearest", behavior: "smooth" });
      card.querySelector("summary").focus({ preventScroll: true });
    } else if (button) button.focus();
  }

  function syncButtons(ctx) {
    Array.prototype.forEach.call(ctx.body.querySelectorAll("button.cite"), function (b) {
      b.setAttribute("aria-expanded", String(ctx.openIndex === Number(b.getAttribute("data-cite"))));
    });
  }

  /* ---- Messages ---------------------------------------------------------------------------------------------- */

  function addUser(text) {
    var box = element("div", "msg user");
    box.appendChild(element("p", null, text));
    log.appendChild(box);
    log.scrollTop = log.scrollHeight;
  }

  function addAnswer() {
    uid += 1;
    var box = element("div", "msg assistant");
    var ctx = { id: "answer-" + uid, box: box, body: element("div", "md"), text: "", citations: {}, frame: 0, openIndex: null };
    box.id = ctx.id;
    box.appendChild(ctx.body);
    box.addEventListener("click", function (e) {
      var b = e.target.closest("button.cite");
      if (b) openSource(ctx, Number(b.getAttribute("data-cite")), b);
    });
    log.appendChild(box);
    log.scrollTop = log.scrollHeight;
    return ctx;
  }

  function typing(ctx) {
    var dots = element("div", "typing");
    dots.setAttribute("role", "status");
    dots.appendChild(element("span", "visually-hidden", config.name + " is typing…"));
    for (var k = 0; k < 3; k++) dots.appendChild(element("span", "dot"));
    ctx.body.appendChild(dots);
  }

  // Re-rendered whole, at most once a frame: the new tree replaces the old one in the same frame (no flicker).
  function render(ctx, now) {
    function draw() {
      ctx.frame = 0;
      var atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
      var tree = markdown(ctx.text, ctx);
      ctx.body.replaceChildren(tree);
      syncButtons(ctx);
      if (atBottom) log.scrollTop = log.scrollHeight;
    }
    if (now) { if (ctx.frame) cancelAnimationFrame(ctx.frame); draw(); }
    else if (!ctx.frame) ctx.frame = requestAnimationFrame(draw);
  }

  function setCitations(ctx, citations) {
    (citations || []).forEach(function (c) { if (c && Number(c.index) > 0) ctx.citations[Number(c.index)] = c; });
  }

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) return navigator.clipboard.writeText(text);
    return new Promise(function (resolve, reject) {
      var area = element("textarea"); area.value = text; area.setAttribute("readonly", "");
      area.className = "visually-hidden"; document.body.appendChild(area); area.select();
      var ok = false;
      try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
      area.remove();
      if (ok) resolve(); else reject(new Error("copy"));
    });
  }

  function toolButton(name, label) {
    var b = element("button", "tool");
    b.type = "button";
    b.setAttribute("aria-label", label);
    b.title = label;
    b.appendChild(icon(name));
    return b;
  }

  function addTools(ctx, messageId, rating) {
    var bar = element("div", "tools");
    ctx.tools = bar;
    var copy = toolButton("copy", "Copy answer");
    copy.addEventListener("click", function () {
      copyText(ctx.text).then(function () { flash(copy, "Copied"); }, function () { showStatus("Copying is not allowed here."); });
    });
    bar.appendChild(copy);
    if (messageId) {
      var up = toolButton("up", "Good answer"), down = toolButton("down", "Bad answer");
      function mark(value) {
        up.setAttribute("aria-pressed", String(value === "up"));
        down.setAttribute("aria-pressed", String(value === "down"));
      }
      mark(rating || null);
      [[up, "up"], [down, "down"]].forEach(function (pair) {
        pair[0].addEventListener("click", function () {
          mark(pair[1]);
          fetch(base + "/feedback", { method: "POST", headers: headers(), body: JSON.stringify({ messageId: messageId, rating: pair[1] }) })
            .then(function (r) { if (!r.ok) throw new Error("feedback"); flash(pair[0], "Thanks for the feedback"); })
            .catch(function () { mark(rating || null); showStatus("Your rating could not be saved."); });
        });
        bar.appendChild(pair[0]);
      });
    }
    if (config.voice) {
      var play = toolButton("play", "Listen");
      play.addEventListener("click", function () {
        play.disabled = true;
        fetch(base + "/speech", { method: "POST", headers: headers(), body: JSON.stringify({ text: ctx.text }) })
          .then(function (r) { if (!r.ok) throw new Error("voice"); return r.blob(); })
          .then(function (blob) { var audio = new Audio(URL.createObjectURL(blob)); audio.play(); })
          .catch(function () { showStatus("The voice is unavailable right now."); })
          .finally(function () { play.disabled = false; });
      });
      bar.appendChild(play);
    }
    bar.appendChild(element("span", "tool-note"));
    ctx.box.appendChild(bar);
  }

  function flash(button, text) {
    var note = button.parentNode.querySelector(".tool-note");
    note.textContent = text;
    note.setAttribute("role", "status");
    setTimeout(function () { note.textContent = ""; }, 2000);
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
    addUser(text);
    var ctx = addAnswer();
    typing(ctx);
    ctx.box.setAttribute("aria-busy", "true");
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
          else if (event === "token") { ctx.text += data.content || ""; render(ctx); }
          else if (event === "citation") { setCitations(ctx, [data]); renderSources(ctx); render(ctx); }
          else if (event === "done") {
            ctx.text = data.message.content;
            setCitations(ctx, data.message.citations);
            render(ctx, true);
            renderSources(ctx);
            addTools(ctx, data.message.id, null);
            showFollowups(data.followups);
          } else if (event === "error") throw new Error(errorText(502, data));
          // Any other event (a tool's call or result, a future kind) is not for the page: ignored.
        });
      })
      .catch(function (err) {
        ctx.box.classList.add("error");
        if (!ctx.text) { ctx.body.replaceChildren(element("p", null, err.message)); }
        showStatus(err.message);
      })
      .finally(function () {
        var dots = ctx.body.querySelector(".typing");
        if (dots) dots.remove();
        ctx.box.removeAttribute("aria-busy"); setBusy(false); input.focus();
      });
  }

  function readStream(body, onEvent) {
    var reader = body.getReader();
    var decoder = new TextDecoder();
    var buffer = "";
    function pump() {
      return reader.read().then(function (result) {
        buffer += decoder.decode(result.value || new Uint8Array(), { stream: !result.done });
        var parts = buffer.split("\n\n");
        buffer = parts.pop();
        parts.forEach(function (block) {
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
          if (m.role === "user") { addUser(m.content); return; }
          var ctx = addAnswer();
          ctx.text = m.content;
          setCitations(ctx, m.citations);
          render(ctx, true);
          renderSources(ctx);
          addTools(ctx, m.id, m.feedback);
          last = m;
        });
        if (last) showFollowups(last.followups);
      })
      .catch(function () { /* offline: the page still works for a new question */ });
  }

  function fit() { input.style.height = "auto"; input.style.height = Math.min(input.scrollHeight + 2, 160) + "px"; }

  var pendingQuestion = null;
  form.addEventListener("submit", function (e) {
    e.preventDefault();
    if (busy) return; // keep what the visitor typed until the current answer ends
    var text = input.value; input.value = ""; fit(); ask(text);
  });
  input.addEventListener("input", fit);
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
