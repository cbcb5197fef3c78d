"""Reports: the pages, exports and stats API over the rollups (``collector`` never imports
this package; ``collector.app.create_app`` appends ``reports.web.routes()``).

Modules: ``web`` (pages, access, login/logout/settings), ``api`` (``/api/v1`` + OpenAPI),
``views`` (metrics → tables, KPI cards, charts), ``queries`` (report SQL the metrics API
lacks, over rollups only), ``charts`` (inline SVG), ``tables`` (CSV/JSON), ``i18n``
(vi/en strings, number and date formats), ``periods`` (the period picker), ``params``
(strict numbers, ids and text from requests: 400, never 500), ``auth``
(accounts, sessions, CSRF, API tokens), ``cache`` (watermark-keyed view cache),
``compliance_web`` (``/compliance``, from the compliance work).

Decisions:

- Server-rendered, no JavaScript at all; a CSP without ``script-src`` enforces it.
- Visitors over a range are the sum of daily uniques (salts rotate daily; see
  ``collector.metrics``); the site page says so nowhere louder than the API field
  ``visitors_basis``.
- "Procedures offered full-process online" (the 80 % target) is measured as the share of
  service codes with received dossiers that had at least one Level-4 online dossier in
  the period (``queries.procedure_share``) — the feed has no list of eligible procedures.
- Unknown sites/agencies answer 404 to admins, 403 to agency users and a sign-in redirect
  to anonymous visitors, so existence does not leak.
- National pages that are not public (overview, /dvc, the compliance list, the national
  API reports) are for admins only: they compare every agency. An agency user reads its
  own agency, its sites and their compliance (``web.require``).
- No map of the 34 provincial units: no open geometry of the post-2025 units was
  available offline; provinces are a table and a ranking.
"""
