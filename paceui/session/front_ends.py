"""Front ends that attach themselves to sessions: the core never imports one.

A front end (``paceui.notebook`` on import) registers a *view* factory, ``view(session, **kw)``, and a
*mimebundle* function, ``mimebundle(session, **kw)``, for ``display(session)``. ``Session.dashboard()``
and ``Session._repr_mimebundle_`` delegate here; with nothing attached, ``dashboard()`` raises a
:class:`SessionError` that says what to import and ``display(session)`` shows the session's repr.
"""

from __future__ import annotations

from typing import Any, Callable

from paceui.errors import SessionError

ViewFactory = Callable[..., Any]  # (session, **kw) -> a front end's view of the session
MimeBundle = Callable[..., Any]   # (session, **kw) -> IPython's _repr_mimebundle_ result

_attached: dict[str, Any] = {}


def attach(view: ViewFactory, mimebundle: MimeBundle | None = None) -> None:
    """Attach a front end: ``view`` serves ``Session.dashboard``, ``mimebundle`` ``display(session)``."""
    _attached["view"], _attached["mimebundle"] = view, mimebundle


def view(session: Any, **kw: Any) -> Any:
    """The attached front end's view of ``session``."""
    if "view" not in _attached:
        raise SessionError("no notebook front end is attached: `import paceui.notebook` first "
                           "(or use paceui.notebook.Dashboard(session))")
    return _attached["view"](session, **kw)


def mimebundle(session: Any, **kw: Any) -> Any:
    """What ``display(session)`` shows: the attached front end's bundle, else the plain repr."""
    fn = _attached.get("mimebundle")
    return {"text/plain": repr(session)} if fn is None else fn(session, **kw)
