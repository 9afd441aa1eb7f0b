/* Thrad Tag: events and click conversions from the advertiser's pages.
 * Page API: thradTag("set", {tag_id}), thradTag("event", name, params),
 * thradTag("conversion", {...}), thradTag("consent", {...}). Calls made before this script
 * loaded wait in thradTag.q. It never throws into the page, and sends nothing while the page's
 * consent denies ad storage. Plain ES5: no build step, no dependencies. */
(function (w, d) {
  "use strict";
  var KEYS = ["thrad_click_id", "thrad_exp", "thrad_sig", "thrad_bid_id"];
  var MAX_AGE_S = 90 * 24 * 3600;
  var HELD_MAX = 50;
  var UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
  var CHECK = {
    thrad_click_id: function (v) { return UUID.test(v); },
    thrad_exp: function (v) { return /^\d{1,12}$/.test(v); },
    thrad_sig: function (v) { return /^[0-9a-f]{64}$/i.test(v); },
    thrad_bid_id: function (v) { return v.length > 0 && v.length <= 256; }
  };
  var queued = w.thradTag && w.thradTag.q;
  var script = d.currentScript;
  var state = { tag: null, base: "", consent: null, click: {}, held: [] };

  try {
    state.base = new URL(script.src).origin;
  } catch (e) { /* set {endpoint} names the server instead */ }

  function denied() {
    return !!state.consent && state.consent.ad_storage === "denied";
  }

  function readCookie(name) {
    var parts = d.cookie ? d.cookie.split("; ") : [];
    for (var i = 0; i < parts.length; i++) {
      var eq = parts[i].indexOf("=");
      if (parts[i].slice(0, eq) === name) {
        try { return decodeURIComponent(parts[i].slice(eq + 1)); } catch (e) { return null; }
      }
    }
    return null;
  }

  function writeCookie(name, value, maxAge) {
    d.cookie = name + "=" + encodeURIComponent(value) + "; Max-Age=" + maxAge +
      "; Path=/; SameSite=Lax" + (location.protocol === "https:" ? "; Secure" : "");
  }

  // The click the visitor arrived through: the landing URL's, else the cookies' from earlier.
  function loadClick() {
    var query = new URLSearchParams(location.search);
    var fromUrl = query.get("thrad_click_id");
    for (var i = 0; i < KEYS.length; i++) {
      var key = KEYS[i];
      var value = fromUrl ? query.get(key) : readCookie(key);
      if (value && CHECK[key](value)) state.click[key] = value;
    }
    if (!state.click.thrad_click_id) state.click = {};
  }

  // First-party cookies are ad storage: written only with consent, removed when it is denied.
  function persist() {
    for (var i = 0; i < KEYS.length; i++) {
      var value = state.click[KEYS[i]];
      if (denied() || !value) {
        if (readCookie(KEYS[i]) !== null) writeCookie(KEYS[i], "", 0);
      } else {
        writeCookie(KEYS[i], value, MAX_AGE_S);
      }
    }
  }

  function uuid() {
    var c = w.crypto;
    if (c && c.randomUUID) return c.randomUUID();
    var b = new Uint8Array(16);
    if (c && c.getRandomValues) c.getRandomValues(b);
    else for (var i = 0; i < 16; i++) b[i] = Math.floor(Math.random() * 256);
    b[6] = (b[6] & 15) | 64;
    b[8] = (b[8] & 63) | 128;
    var h = "";
    for (var j = 0; j < 16; j++) h += (b[j] + 256).toString(16).slice(1);
    return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" +
      h.slice(16, 20) + "-" + h.slice(20);
  }

  function copy(from, to) {
    if (from && typeof from === "object") {
      for (var k in from) {
        if (Object.prototype.hasOwnProperty.call(from, k)) to[k] = from[k];
      }
    }
    return to;
  }

  // sendBeacon survives the page closing; fetch with keepalive where it is missing or
  // refuses. Both send text/plain, which needs no CORS preflight.
  function deliver(path, body) {
    var url = state.base + path;
    var text = JSON.stringify(body);
    try {
      if (navigator.sendBeacon && navigator.sendBeacon(url, text)) return;
    } catch (e) { /* fall through to fetch */ }
    if (w.fetch) {
      w.fetch(url, {
        method: "POST", body: text, keepalive: true, mode: "no-cors", credentials: "omit",
        headers: { "Content-Type": "text/plain" }
      })["catch"](function () {});
    }
  }

  function send(path, body) {
    if (!state.tag || !state.base) return;
    body.tag_id = state.tag;
    if (state.consent) body.consent = copy(state.consent, {});
    if (denied()) {
      if (state.held.length < HELD_MAX) state.held.push([path, body]);
      return;
    }
    deliver(path, body);
  }

  function page(body) {
    body.page_url = location.href;
    if (d.referrer) body.referrer = d.referrer;
    return body;
  }

  var commands = {
    set: function (options) {
      if (options && typeof options.tag_id === "string") state.tag = options.tag_id;
      if (options && typeof options.endpoint === "string") state.base = options.endpoint;
    },
    consent: function (options) {
      state.consent = copy(options, state.consent || {});
      persist();
      if (!denied()) {
        var held = state.held;
        state.held = [];
        for (var i = 0; i < held.length; i++) send(held[i][0], held[i][1]);
      }
    },
    event: function (name, params) {
      if (typeof name !== "string" || !name) return;
      var body = page({ event_name: name, event_id: uuid(),
        timestamp: Math.floor(new Date().getTime() / 1000) });
      if (params && typeof params === "object") body.params = copy(params, {});
      if (state.click.thrad_click_id) body.click_id = state.click.thrad_click_id;
      if (state.click.thrad_bid_id) body.bid_id = state.click.thrad_bid_id;
      send("/v1/tag/collect", body);
    },
    // A browser conversion is proved by its click's signature: without a live click, none.
    conversion: function (fields) {
      var click = state.click;
      if (!click.thrad_sig || Number(click.thrad_exp) * 1000 <= new Date().getTime()) return;
      var body = page(copy(fields, {}));
      body.click_id = click.thrad_click_id;
      body.thrad_exp = Number(click.thrad_exp);
      body.thrad_sig = click.thrad_sig;
      if (!body.conversion_time) body.conversion_time = new Date().toISOString();
      if (!body.event_id && !body.order_id) body.event_id = uuid();
      send("/v1/tag/conversion", body);
    }
  };

  function run(args) {
    try {
      var command = commands[args[0]];
      if (command) command(args[1], args[2]);
    } catch (e) { /* a Tag never breaks the page */ }
  }

  function thradTag() {
    run(arguments);
  }

  try {
    loadClick();
  } catch (e) { /* no click then */ }
  w.thradTag = thradTag;
  if (queued && queued.length) {
    // Consent first, so that a default given before load governs the cookies and the queue.
    for (var i = 0; i < queued.length; i++) {
      if (queued[i] && queued[i][0] === "consent") run(queued[i]);
    }
    for (var j = 0; j < queued.length; j++) {
      if (queued[j] && queued[j][0] !== "consent") run(queued[j]);
    }
  }
  try {
    persist();
  } catch (e) { /* cookies disabled */ }
})(window, document);
