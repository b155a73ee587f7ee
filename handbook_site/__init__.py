"""The handbook's own library: what the docs build, the docs tests, the drills and ``make demo`` import.

- ``handbook_site.macros``: the macros of the docs build: runbook pages from their specs, the drill status page, the
  alert and checklist tables (mkdocs.yml loads this package, ``module_name: handbook_site``; its two hooks below hand
  over to the module);
- ``handbook_site.sessions``: the shell sessions of the tutorial and how-to pages, parsed and compared with what the
  tools print;
- ``handbook_site.drills``: runbook drills against the local stack and the results they leave in ``.drills/``.

``scripts/`` keeps only commands; they import from here.
"""


def define_env(env) -> None:  # noqa: ANN001 - mkdocs-macros loads this package (``module_name: handbook_site``)
    from .macros import define_env as define

    define(env)


def on_post_build(env) -> None:  # noqa: ANN001 - the mkdocs-macros hook
    from .macros import on_post_build as hook

    hook(env)
