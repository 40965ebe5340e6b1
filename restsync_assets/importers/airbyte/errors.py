"""Why a stream (or the whole import) cannot be brought over."""

from restsync_assets.errors import RestsyncError


class Unsupported(RestsyncError):
    """A component restsync's vocabulary cannot express: its stream is dropped, with this reason."""

    kind = "config"


class ImportFailed(RestsyncError):
    """The manifest or config cannot be read at all: the import stops with this one line."""

    kind = "config"
