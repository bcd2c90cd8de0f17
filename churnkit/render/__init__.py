"""Presentation: result objects in, rich renderables / Markdown / HTML text out.

One module per result type. Renderers are pure functions, so golden tests need no
terminal; the CLI decides where the output goes.
"""
