"""Turn an exception raised deep inside dlt or requests into one actionable line."""

from __future__ import annotations

from collections.abc import Iterable


def root_causes(error: BaseException) -> list[BaseException]:
    """The chain from `error` down to its deepest cause (dlt wraps errors several times)."""
    chain, seen = [], set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append(current)
        current = getattr(current, "exception", None) or current.__cause__ or current.__context__
        if current is not None and not isinstance(current, BaseException):
            break
    return chain


def explain(error: BaseException, source: str, secrets: Iterable[str] = ()) -> str:
    """One line: the most specific error in the chain, with secrets masked."""
    from restsync_assets.http.masking import mask

    chain = root_causes(error)
    ours = [e for e in chain if type(e).__module__.startswith("restsync_assets")]
    chosen = ours[-1] if ours else chain[-1]
    text = str(chosen).strip().splitlines()[0] if str(chosen).strip() else type(chosen).__name__
    if not ours:
        text = f"{type(chosen).__name__}: {text}"
    if not text.startswith(source):
        text = f"{source}: {text}"
    return mask(text, list(secrets))
