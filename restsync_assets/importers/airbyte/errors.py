"""Why a stream (or the whole import) cannot be brought over."""


class Unsupported(Exception):
    """A component restsync's vocabulary cannot express: its stream is dropped, with this reason."""


class ImportFailed(Exception):
    """The manifest or config cannot be read at all: the import stops with this one line."""
