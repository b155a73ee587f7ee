"""The handbook's own library: what the docs build, the docs tests, the drills and ``make demo`` import.

- ``handbook_site.macros``: the mkdocs-macros module (``module_name`` in mkdocs.yml): runbook pages from their specs,
  the drill status page, the alert and checklist tables;
- ``handbook_site.sessions``: the shell sessions of the tutorial and how-to pages, parsed and compared with what the
  tools print;
- ``handbook_site.drills``: runbook drills against the local stack and the results they leave in ``.drills/``.

``scripts/`` keeps only commands; they import from here.
"""
