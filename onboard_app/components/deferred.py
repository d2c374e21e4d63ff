"""Parts of a page drawn a moment after the rest: once its first frame is on screen.

A page opened by a click draws what the person came for first (its heading, its text)
and the rest right after that frame is painted, so the first frame waits for less.
"""

from __future__ import annotations

import reflex as rx
from reflex_base.utils.imports import ImportDict, ImportVar

_AFTER_FIRST_PAINT_JS = """
function AfterFirstPaint({ children }) {
  const [ready, setReady] = useState(false);
  useEffect(() => {
    if (ready) return undefined;
    let timer;
    // The callback runs before the next paint; the timer after it.
    const frame = requestAnimationFrame(() => { timer = setTimeout(() => setReady(true), 0); });
    return () => { cancelAnimationFrame(frame); clearTimeout(timer); };
  }, [ready]);
  const [placeholder, content] = Array.isArray(children) ? children : [null, children];
  return ready ? content : placeholder;
}
"""

_REACT_HOOKS: ImportDict = {"react": [ImportVar(tag="useEffect"), ImportVar(tag="useState")]}


class AfterFirstPaint(rx.Component):
    """Its content once the page's first frame is painted, its placeholder until then.

    Children: the content alone, or the placeholder and then the content.
    """

    tag = "AfterFirstPaint"

    def add_imports(self) -> ImportDict:
        """React's hooks, for the component's code."""
        return _REACT_HOOKS

    def add_custom_code(self) -> list[str]:
        """The component itself (JavaScript in the page's module)."""
        return [_AFTER_FIRST_PAINT_JS]


def after_first_paint(
    content: rx.Component,
    *,
    placeholder: rx.Component | None = None,
) -> rx.Component:
    """``content`` drawn once the first frame is on screen, ``placeholder`` until then.

    Args:
        content: What to draw a frame later.
        placeholder: What holds its place (same size, nothing to read or press), if any.

    Returns:
        The component.
    """
    children = (content,) if placeholder is None else (placeholder, content)
    return AfterFirstPaint.create(*children)
