"""The embed code a portal pastes (``giamsat snippet SITE_ID``).

It is the real-world ``_govaq`` form: a command queue, the tracker URL, the numeric site
id, and an async loader, plus a ``<noscript>`` image so page views are counted with
JavaScript off.
"""

from __future__ import annotations

from html import escape

LOADER_PATH = "/embed/gov-tracking.min.js"

TEMPLATE = """<!-- Mã giám sát EMC / giamsat monitoring code: site {site_id} -->
<script>
  var _govaq = window._govaq || [];
  _govaq.push(['trackPageView']);
  _govaq.push(['enableLinkTracking']);
  (function () {{
    var u = '{base}';
    _govaq.push(['setTrackerUrl', u + '/tracking']);
    _govaq.push(['setSiteId', '{site_id}']);
    var d = document, g = d.createElement('script'), s = d.getElementsByTagName('script')[0];
    g.async = true; g.src = u + '{loader}';{sri}
    s.parentNode.insertBefore(g, s);
  }})();
</script>
<noscript><img src="{base}/tracking?idsite={site_id}&amp;rec=1" alt="" /></noscript>
<!-- End giamsat code -->
"""


def snippet_html(site_id: int, base_url: str, integrity: str = "") -> str:
    base = escape(base_url.rstrip("/"), quote=True).replace("'", "&#x27;")
    sri = ""
    if integrity:
        sri = f" g.integrity = '{integrity}'; g.crossOrigin = 'anonymous';"
    return TEMPLATE.format(site_id=int(site_id), base=base, loader=LOADER_PATH, sri=sri)
