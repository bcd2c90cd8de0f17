"""Presentation: result objects in, rich renderables / Markdown / HTML / CSV text out.

One module per result type (``report_*``, ``segments``, ``training``, ...) describes
its tables once with the shared model of ``formats``; ``terminal``, ``markdown`` and
``html`` draw them and escape what the data holds. Renderers are pure functions, so
golden tests need no terminal; the CLI decides where the output goes.
"""
