/*
 * tosei citizen chat widget. Embed on any page:
 *   <script src="https://HOST/static/widget.js" data-tenant="hakodate" data-api="https://HOST"></script>
 * Streams answers from /v1/ask (server-sent events), shows numbered sources, the AI notice and
 * how to reach a person. No external fonts, scripts or trackers.
 */
(function () {
  "use strict";
  var script = document.currentScript;
  var tenant = (script && script.dataset.tenant) || "hakodate";
  var api = ((script && script.dataset.api) || "").replace(/\/$/, "");
  var inline = script && script.dataset.inline === "true";
  // the host page decides the widget's language (data-lang, then <html lang>), then the browser
  var lang = ((script && script.dataset.lang) || document.documentElement.lang || navigator.language || "ja")
    .slice(0, 2) === "ja" ? "ja" : "en";
  var T = {
    ja: { title: "手続き案内AI", placeholder: "質問を入力（例: 出生届はどこに出す？）", send: "送信",
          sources: "出典", person: "職員と話したい", thinking: "検索しています…", error: "エラーが発生しました: " },
    en: { title: "Procedures assistant (AI)", placeholder: "Ask a question (e.g. where do I file a birth registration?)",
          send: "Send", sources: "Sources", person: "Talk to a person", thinking: "Searching…", error: "Error: " }
  }[lang];

  var css = [
    ".tosei-w{font-family:system-ui,-apple-system,'Hiragino Sans','Noto Sans JP',sans-serif;font-size:15px;color:#1a1a1a}",
    ".tosei-w.float{position:fixed;right:16px;bottom:16px;width:min(380px,calc(100vw - 32px));z-index:2147483000}",
    ".tosei-box{background:#fff;border:1px solid #c8ccd2;border-radius:10px;box-shadow:0 4px 18px rgba(0,0,0,.15);display:flex;flex-direction:column;height:520px}",
    ".tosei-head{background:#00418e;color:#fff;padding:10px 14px;border-radius:10px 10px 0 0;font-weight:600;display:flex;justify-content:space-between;align-items:center}",
    ".tosei-head button{background:#fff;color:#00418e;border:0;border-radius:6px;padding:4px 8px;font-size:13px;cursor:pointer}",
    ".tosei-log{flex:1;overflow-y:auto;padding:12px;display:flex;flex-direction:column;gap:10px}",
    ".tosei-msg{padding:8px 10px;border-radius:8px;line-height:1.6;white-space:pre-wrap;word-break:break-word}",
    ".tosei-q{align-self:flex-end;background:#e6eefa;max-width:85%}",
    ".tosei-a{align-self:flex-start;background:#f4f5f7;max-width:95%}",
    ".tosei-src{font-size:13px;margin-top:6px;border-top:1px solid #d9dce1;padding-top:6px}",
    ".tosei-src a{color:#00418e}",
    ".tosei-note{font-size:12px;color:#555;margin-top:6px}",
    ".tosei-form{display:flex;gap:6px;padding:10px;border-top:1px solid #e1e4e8}",
    ".tosei-form input{flex:1;padding:8px;border:1px solid #9aa1ab;border-radius:6px;font-size:15px}",
    ".tosei-form button{background:#00418e;color:#fff;border:0;border-radius:6px;padding:8px 14px;font-size:15px;cursor:pointer}",
    ".tosei-form button:disabled{opacity:.5}"
  ].join("\n");

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text) e.textContent = text;
    return e;
  }

  var style = el("style"); style.textContent = css; document.head.appendChild(style);
  var root = el("div", "tosei-w" + (inline ? "" : " float"));
  root.setAttribute("role", "region"); root.setAttribute("aria-label", T.title);
  var box = el("div", "tosei-box");
  var head = el("div", "tosei-head"); head.appendChild(el("span", "", T.title));
  var person = el("button", "", T.person); head.appendChild(person);
  var log = el("div", "tosei-log"); log.setAttribute("aria-live", "polite");
  var form = el("form", "tosei-form");
  var input = el("input"); input.placeholder = T.placeholder; input.setAttribute("aria-label", T.placeholder);
  input.maxLength = 2000;
  var send = el("button", "", T.send); send.type = "submit";
  form.appendChild(input); form.appendChild(send);
  box.appendChild(head); box.appendChild(log); box.appendChild(form); root.appendChild(box);
  (inline && script.parentNode ? script.parentNode : document.body).appendChild(root);

  var conversation = null;

  function showAnswer(node, a) {
    node.textContent = a.answer;
    if (a.citations && a.citations.length) {
      var src = el("div", "tosei-src"); src.appendChild(el("div", "", T.sources));
      a.citations.forEach(function (c) {
        var line = el("div");
        line.appendChild(document.createTextNode("[" + c.id + "] "));
        if (c.url) { var link = el("a", "", c.title); link.href = c.url; link.target = "_blank"; link.rel = "noopener"; line.appendChild(link); }
        else line.appendChild(document.createTextNode(c.title));
        line.appendChild(document.createTextNode(" — " + c.source));
        src.appendChild(line);
      });
      node.appendChild(src);
    }
    (a.notices || []).forEach(function (n) { node.appendChild(el("div", "tosei-note", n)); });
    log.scrollTop = log.scrollHeight;
  }

  function ask(question) {
    log.appendChild(el("div", "tosei-msg tosei-q", question));
    var answer = el("div", "tosei-msg tosei-a", T.thinking); log.appendChild(answer);
    log.scrollTop = log.scrollHeight;
    send.disabled = true;
    var body = { question: question, tenant: tenant, stream: true };
    if (conversation) body.conversation = conversation;
    var streamed = "";
    fetch(api + "/v1/ask", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) })
      .then(function (res) {
        if (!res.ok) return res.json().then(function (e) { throw new Error(e.error || res.statusText); });
        var reader = res.body.getReader(); var decoder = new TextDecoder(); var buf = "";
        function pump() {
          return reader.read().then(function (r) {
            if (r.done) return;
            buf += decoder.decode(r.value, { stream: true });
            var parts = buf.split("\n\n"); buf = parts.pop();
            parts.forEach(function (part) {
              var data = part.split("\n").filter(function (l) { return l.indexOf("data: ") === 0; }).map(function (l) { return l.slice(6); }).join("\n");
              if (!data) return;
              var ev = JSON.parse(data);
              if (ev.type === "meta") conversation = ev.conversation;
              else if (ev.type === "delta") { streamed = ev.replace ? ev.text : streamed + ev.text; answer.textContent = streamed; }
              else if (ev.type === "done") showAnswer(answer, ev.answer);
            });
            return pump();
          });
        }
        return pump();
      })
      .catch(function (err) { answer.textContent = T.error + err.message; })
      .finally(function () { send.disabled = false; input.focus(); });
  }

  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var q = input.value.trim(); if (!q) return;
    input.value = ""; ask(q);
  });
  person.addEventListener("click", function () { ask(lang === "ja" ? "職員と話したい" : "I want to talk to a person"); });
  // host pages may offer example questions: any element with data-tosei-ask asks its text
  document.addEventListener("click", function (e) {
    var target = e.target && e.target.closest ? e.target.closest("[data-tosei-ask]") : null;
    if (target) { e.preventDefault(); ask(target.getAttribute("data-tosei-ask") || target.textContent.trim()); }
  });
})();
