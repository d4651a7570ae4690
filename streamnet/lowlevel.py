"""What the library above the runtime builds on, not what pipelines use.

Like `channels.lowlevel` for the transport, this is where a package above
streamnet (``actors``, or a user's own actor library) reaches the runtime's
machinery, through public names only:

- **Deprecations.** ``renamed_names(module)`` gives a module ``__getattr__`` that
  serves the old names the deprecation table lists for its package, with a
  `DeprecationWarning`; :func:`deprecated` warns at the caller's line outside
  the library; :func:`keyword_only` and :func:`keyword_only_fields` keep
  options that became keyword-only working by position for one release.

Examples
--------
>>> import warnings
>>> from streamnet.lowlevel import keyword_only
>>> @keyword_only("timeout")
... def wait(what, *, timeout=None):
...     return what, timeout
>>> with warnings.catch_warnings(record=True) as caught:
...     warnings.simplefilter("always")
...     wait("x", 5)
('x', 5)
"""

from channels.lowlevel import publish
from streamnet._deprecation import deprecated, keyword_only, keyword_only_fields, renamed_names

__all__ = ["deprecated", "keyword_only", "keyword_only_fields", "renamed_names"]

publish(globals(), "streamnet.lowlevel", __all__, within="streamnet")
