/*
 * The `_govaq` loader: a Matomo-style command queue that speaks the collector's /tracking
 * protocol (see collector/tracking.py). Readable ES5; `snippet/build.sh` minifies it into
 * snippet/dist/gov-tracking.min.js, which the collector serves.
 *
 * Embed (what `giamsat snippet SITE_ID` prints):
 *   var _govaq = window._govaq || [];
 *   _govaq.push(['trackPageView']); _govaq.push(['enableLinkTracking']);
 *   _govaq.push(['setTrackerUrl', 'https://HOST/tracking']); _govaq.push(['setSiteId', '47']);
 *   + <script async src="https://HOST/embed/gov-tracking.min.js">
 *
 * Queue: commands queued before the loader arrives run in order, except the configuration
 * commands (setTrackerUrl, setSiteId, disableTracking, optUserOut), which run first, so the
 * real-world order above (trackPageView before setSiteId) works. Afterwards `_govaq.push`
 * runs each command at once (the array keeps what was queued; nothing reads it again).
 *
 * Browsers: any with URLSearchParams (not IE); they all have Element.closest,
 * history.pushState and Array#forEach, so none of those is checked for.
 *
 * Sends nothing when: Do-Not-Track or Global Privacy Control is on, the visitor opted out
 * (`optUserOut`: a constant flag in localStorage, not an identifier), `disableTracking` was
 * called, the page is not http(s). While the page is prerendered, hits wait for activation.
 * No cookies, no identifiers: pv_id is random per page view.
 *
 * Redaction before anything leaves the browser (the collector redacts again): URL
 * fragments; values of query parameters named for a person; e-mail addresses, phone
 * numbers, 9/12-digit ID numbers in url, referrer, title, event fields and link targets;
 * the trackDVC extra (dossierId;date;name;idNo) is cut to its first field, the dossier id,
 * which the collector stores only as a keyed hash.
 */
(function (w, d, n, loc) {
  var q = w._govaq = w._govaq || [];
  if (q.gs) return; // loaded twice: the first copy owns the queue

  var tracker, site, customUrl, customTitle, pv, last, timer, full;
  var ref = d.referrer;
  var blocked = (n.doNotTrack || w.doNotTrack) == 1 || n.globalPrivacyControl ||
    !/^http/.test(loc.protocol);

  // e-mail, phone, ID numbers → markers (same patterns as collector/privacy.py)
  function red(s) {
    return String(s)
      .replace(/[\w.+-]+(@|%40)[\w-]+(\.[\w-]+)+/g, '[email]')
      .replace(/(^|\D)(\+?84|0)(([\s.-]|%20)?\d){9,10}(?!\d)/g, '$1[phone]')
      .replace(/(^|\D)(\d{12}|\d{9})(?!\d)/g, '$1[id]');
  }

  // a URL without its fragment and without values of parameters that name a person: exactly
  // the names of PERSONAL_PARAMS in collector/privacy.py (tests/test_snippet_build.py
  // compares the two lists). The rest of the URL is redacted by red() in send().
  function clean(s) {
    return s ? String(s).replace(/#.*/, '').replace(
      /([?&]((full_?)?name|ho(_?ten|vaten)|ten(nguoinop|congdan)|(so_?)?c(mnd|ccd)|id(_?no|card)|(so|ma)(dinh|_dinh_)danh|personalid|identity|pass(word|port)?|hochieu|(e-?)?mail|phone|sdt|(so(dien|_dien_)|dien)thoai|mobile|tel|diachi|address|ngaysinh|dob|birthday|(access_)?token|pwd|otp|session(id)?|jsessionid)=)[^&]*/gi,
      '$1') : '';
  }

  function send(p) {
    if (blocked || !tracker || !site) return;
    try {
      if (localStorage.govaq_optout) return; // the visitor's own choice (optUserOut)
    } catch (e) {}
    var form = new URLSearchParams(), k, v;
    p.idsite = site;
    p.rec = 1;
    p.url = clean(customUrl || loc.href);
    p.urlref = clean(ref);
    p.res = screen.width + 'x' + screen.height;
    p.lang = n.language;
    p.pv_id = pv;
    if (n.webdriver) p.wd = 1;
    for (k in p) {
      v = p[k];
      if (v || v === 0) form.append(k, k == 'dvc_extra' ? v : red(v));
    }
    if (d.prerendering) {
      d.addEventListener('prerenderingchange', function () { post(form); });
    } else {
      post(form);
    }
  }

  // sendBeacon → fetch keepalive → image. A URLSearchParams body is sent as
  // application/x-www-form-urlencoded: a CORS "simple" request, no preflight, no cookies.
  function post(form) {
    try {
      if (n.sendBeacon(tracker, form)) return;
    } catch (e) {}
    try {
      return fetch(tracker, {method: 'POST', body: form, keepalive: true});
    } catch (e) {}
    new Image().src = tracker + '?' + form;
  }

  // single-page apps: one page view per new URL after pushState/replaceState/popstate.
  // Calls are debounced and compared with the last URL tracked, so a router that pushes and
  // then replaces, or pushes the same URL twice, counts once; a replaceState that only
  // changes the query string (filters, utm clean-up) is not a new page.
  // `push` is true for pushState and popstate (an event), false for replaceState
  function nav(push) {
    full = full || push;
    clearTimeout(timer);
    timer = setTimeout(function () {
      var h = clean(loc.href);
      if (last && h != last && (full || h.split('?')[0] != last.split('?')[0])) {
        ref = last;
        customUrl = customTitle = 0;
        api.trackPageView();
      }
      full = 0;
    }, 100);
  }

  function hook(m, push) {
    var orig = history[m];
    history[m] = function () { // pushState and replaceState return nothing
      orig.apply(this, arguments);
      nav(push);
    };
  }

  var DOWNLOAD = /\.(pdf|docx?|xlsx?|pptx?|od[ts]|rtf|csv|zip|rar|7z|exe|apk)$/i;

  // left, middle (auxclick) and keyboard clicks; not the right button
  function click(e) {
    var k, p = {}, a = e.button < 2 && e.target.closest('a,area');
    if (!a || !/^http/.test(a.href)) return;
    if (a.hasAttribute('download') || DOWNLOAD.test(a.pathname)) k = 'download';
    else if (a.hostname != loc.hostname) k = 'link';
    if (k) {
      p[k] = clean(a.href);
      send(p);
    }
  }

  // configuration: run before the other queued commands
  var config = {
    setTrackerUrl: function (u) { tracker = u; },
    setSiteId: function (id) { site = id; },
    disableTracking: function () { blocked = 1; },
    // a constant flag in localStorage, not an identifier; blocked storage throws → ignored
    optUserOut: function () { localStorage.govaq_optout = 1; }
  };

  var api = {
    setCustomUrl: function (u) { customUrl = new URL(u, loc).href; }, // relative is fine
    setDocumentTitle: function (t) { customTitle = t; },
    setReferrerUrl: function (u) { ref = u; },
    forgetUserOptOut: function () { delete localStorage.govaq_optout; },
    trackPageView: function (title) {
      pv = Math.random().toString(36).slice(-6);
      last = clean(loc.href);
      send({action_name: title || customTitle || d.title});
    },
    trackEvent: function (category, action, name, value) {
      send({e_c: category, e_a: action, e_n: name, e_v: value});
    },
    trackDVC: function (code, state, extra) {
      send({e_c: 'dvc', e_a: 'step', e_n: code, e_v: state,
        dvc_extra: extra && String(extra).split(';')[0]});
    },
    // adding the same listener twice is a no-op (DOM), so calling this again is harmless
    enableLinkTracking: function () {
      d.addEventListener('click', click, true);
      d.addEventListener('auxclick', click, true);
    }
  };

  function run(c) {
    try {
      if (c.call) c(); // a function pushed is called
      else (config[c[0]] || api[c[0]]).apply(0, c.slice(1));
    } catch (e) {}
  }

  var later = [];
  q.forEach(function (c) {
    config[c[0]] ? run(c) : later.push(c);
  });
  q.push = function () {
    later.forEach.call(arguments, run);
  };
  q.gs = 1;
  // SPA page views start with the first trackPageView (nav waits for `last`)
  hook('pushState', 1);
  hook('replaceState');
  w.addEventListener('popstate', nav);
  q.push.apply(q, later);
})(window, document, navigator, location);
