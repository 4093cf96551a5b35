/* Tsunagu tracking snippet. <script async src="https://API/t.js" data-site="SITE"></script>
   Page views and tsunagu("track", kind, {props}) go to API/t/events in batches (sendBeacon).
   Honours Global Privacy Control; with data-consent="required" it sets no cookie and sends
   nothing until tsunagu("consent", true). Adds the visitor id to Tsunagu forms on the page. */
(function (w, d, n) {
  var s = d.currentScript, api = new URL(s.src).origin, site = s.getAttribute("data-site") || "default";
  var stub = w.tsunagu, queue = [], held = [], timer, vid;
  var consent = s.getAttribute("data-consent") !== "required";
  if (n.globalPrivacyControl) { w.tsunagu = function () {}; return; }
  function id() {
    return (w.crypto && crypto.randomUUID ? crypto.randomUUID() : Date.now() + "-" + Math.random()).replace(/[^A-Za-z0-9]/g, "").slice(0, 32);
  }
  function visitor() {
    if (vid) return vid;
    var m = d.cookie.match(/(?:^|; )tsu_vid=([A-Za-z0-9_-]{8,64})/);
    vid = m ? m[1] : "v_" + id();
    d.cookie = "tsu_vid=" + vid + "; Max-Age=" + 86400 * (+s.getAttribute("data-cookie-days") || 395) +
      "; Path=/; SameSite=Lax" + (location.protocol == "https:" ? "; Secure" : "");
    return vid;
  }
  function flush() {
    clearTimeout(timer);
    if (!queue.length) return;
    var body = JSON.stringify({ site_id: site, events: queue.splice(0, 50) }), url = api + "/t/events";
    if (!(n.sendBeacon && n.sendBeacon(url, new Blob([body], { type: "text/plain" }))))
      fetch(url, { method: "POST", body: body, keepalive: true, headers: { "content-type": "text/plain" } });
    if (queue.length) flush();
  }
  function stitch() {
    var forms = d.querySelectorAll("form[action*='/forms/']");
    for (var i = 0; i < forms.length; i++) {
      var f = forms[i], input = f.querySelector("input[name=visitor_id]");
      if (f.action.indexOf(api + "/forms/") !== 0) continue;
      if (!input) { input = d.createElement("input"); input.type = "hidden"; input.name = "visitor_id"; f.appendChild(input); }
      input.value = visitor();
    }
  }
  // An address is kept to 2,048 characters (a long one is cut, not refused: a batch must fit in
  // 64 KB); the campaign's parameters go first, so that the cut never takes them.
  function cut(u) {
    if (!u || u.length <= 2048) return u || null;
    try {
      var a = new URL(u), p = [], r = [];
      a.searchParams.forEach(function (v, k) { (/^utm_/i.test(k) ? p : r).push([k, v]); });
      a.search = new URLSearchParams(p.concat(r)).toString(); a.hash = ""; u = a.href;
    } catch (x) {}
    return u.slice(0, 2048).replace(/%[0-9A-Fa-f]?$/, "");
  }
  function track(type, props) {
    var e = { type: type, id: id(), occurred_at: new Date().toISOString(), url: cut(location.href), title: d.title.slice(0, 300),
      referrer: cut(d.referrer), screen: screen.width + "x" + screen.height, language: n.language, properties: props || {} };
    if (!consent) { held.push(e); return; }
    e.visitor_id = visitor();
    queue.push(e);
    if (queue.length >= 10) flush(); else { clearTimeout(timer); timer = setTimeout(flush, 1000); }
  }
  w.tsunagu = function (cmd, a, b) {
    if (cmd == "track") track(a, b);
    else if (cmd == "page") track("page_view");
    else if (cmd == "consent") {
      consent = !!a;
      if (consent) { stitch(); while (held.length) { var e = held.shift(); e.visitor_id = visitor(); queue.push(e); } flush(); }
      else held = [];
    }
  };
  d.addEventListener("visibilitychange", function () { if (d.visibilityState == "hidden") flush(); });
  w.addEventListener("pagehide", flush);
  if (consent) { if (d.readyState == "loading") d.addEventListener("DOMContentLoaded", stitch); else stitch(); }
  // A page the browser prerenders may never be seen: its view counts once the person opens it.
  if (d.prerendering) d.addEventListener("prerenderingchange", function () { track("page_view"); }, { once: true });
  else track("page_view");
  if (stub && stub.q) for (var i = 0; i < stub.q.length; i++) w.tsunagu.apply(w, stub.q[i]);
})(window, document, navigator);
