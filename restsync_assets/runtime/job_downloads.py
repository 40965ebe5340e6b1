"""The files of a finished async job: streamed to disk, decompressed and parsed in chunks.

Each file is downloaded through the source's `RestsyncSession` (its retries, rate budget and
masking; the resource's auth and headers only for URLs on the API's own host, not for
presigned links elsewhere) into a temporary file under the pipelines folder, then read as a
stream: gzip is decompressed as it is read, every member of a zip is read in name order, CSV
(typed by the declared `schema`, see `response_formats.iter_csv`) and JSON Lines line by line.
A JSON file is parsed whole (`data_selector` applies). A body cut short is downloaded again,
up to the resource's retries.
"""

from __future__ import annotations

import gzip
import logging
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

import requests
from dlt.common import jsonpath

from restsync_assets import settings
from restsync_assets.errors import RestsyncError
from restsync_assets.runtime.http.session import ResourceTag, RestsyncSession
from restsync_assets.runtime.job_records import FOLDER
from restsync_assets.runtime.response_formats import FORMAT_READERS
from restsync_assets.specs.model.async_job import DownloadSpec

logger = logging.getLogger(__name__)

#: bytes read from the network at a time
CHUNK_BYTES = 1 << 20
#: what a body cut short raises while it streams
_CUT_SHORT = (requests.ConnectionError, requests.exceptions.ChunkedEncodingError)


class AsyncJobError(RestsyncError, RuntimeError):
    """A job failed, timed out or could not be downloaded; the message is one line."""

    kind = "api"


@dataclass(frozen=True)
class Downloads:
    """Reads the files of one resource's jobs."""

    #: the resource whose requests these are (the session's retry policy for them)
    resource: str
    session: RestsyncSession
    base_url: str
    auth: Any
    headers: Mapping[str, Any]
    #: `<source>: resource <name>`, for messages
    where: str
    attempts: int
    spec: DownloadSpec
    selector: Any
    #: CSV field name -> declared dlt type
    types: Mapping[str, str]

    def records(self, url: str, job: str) -> Iterator[Any]:
        """Every record of the file at `url` (`job` names the job in messages)."""
        with self._fetched(url, job) as path:
            try:
                for stream in members(path, self.spec.compression):
                    yield from self._parsed(stream)
            except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
                raise AsyncJobError(
                    f"{self.where}: file {self.session.mask_url(url)} of {job} is not"
                    f" {self.spec.response_format} ({self.spec.compression}):"
                    f" {str(error).splitlines()[0]}; check async_job.download.response_format"
                    " and compression"
                ) from None

    @contextmanager
    def _fetched(self, url: str, job: str) -> Iterator[Path]:
        """`url` streamed into a temporary file, deleted afterwards."""
        folder = settings.pipelines_dir() / FOLDER / "downloads"
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=folder) as scratch:
            path = Path(scratch) / "download"
            for attempt in range(1, self.attempts + 1):
                try:
                    self._stream_to(url, path)
                    break
                except _CUT_SHORT as error:
                    masked = self.session.mask_url(url)
                    if attempt == self.attempts:
                        raise AsyncJobError(
                            f"{self.where}: download of {masked} ({job}) failed after"
                            f" {self.attempts} attempts: {type(error).__name__}; the job is"
                            " kept: materialize again to download it again"
                        ) from None
                    logger.warning(
                        "%s: download of %s cut short (%s); downloading it again",
                        self.where,
                        masked,
                        type(error).__name__,
                    )
            yield path

    def _stream_to(self, url: str, path: Path) -> None:
        same_host = urlsplit(url).netloc == urlsplit(self.base_url).netloc
        response = self.session.get(
            url,
            stream=True,
            auth=self.auth if same_host else None,
            headers=(dict(self.headers) or None) if same_host else None,
            hooks={"response": [ResourceTag(self.resource), raise_for_status(()), _streamed]},
        )
        with response, open(path, "wb") as out:
            for chunk in response.iter_content(CHUNK_BYTES):
                out.write(chunk)

    def _parsed(self, stream: IO[bytes]) -> Iterator[Any]:
        reader = FORMAT_READERS[self.spec.response_format]
        if reader.stream is not None:
            yield from reader.stream(stream, self.types)
            return
        data = reader.body(stream.read(), self.types)
        if self.selector is not None:
            found = jsonpath.find_values(self.selector, data)
            data = found[0] if len(found) == 1 and isinstance(found[0], list) else found
        yield from data if isinstance(data, list) else [data]


def members(path: Path, compression: str) -> Iterator[IO[bytes]]:
    """The readable streams of a downloaded file: itself, gunzipped, or each zip member
    (`auto`: told by the file's first bytes)."""
    if compression == "auto":
        with open(path, "rb") as probe:
            magic = probe.read(4)
        compression = (
            "gzip" if magic[:2] == b"\x1f\x8b" else "zip" if magic == b"PK\x03\x04" else "none"
        )
    if compression == "zip":
        with zipfile.ZipFile(path) as archive:
            for member in sorted(archive.infolist(), key=lambda m: m.filename):
                if not member.is_dir():
                    with archive.open(member) as stream:
                        yield stream
        return
    opener: Callable[..., IO[bytes]] = gzip.open if compression == "gzip" else open
    with opener(path, "rb") as stream:
        yield stream


def raise_for_status(allowed: tuple[int, ...]) -> Callable[..., requests.Response]:
    """A response hook raising requests' HTTP error (the session makes it one line) but for
    the `allowed` statuses."""

    def hook(response: requests.Response, **_kwargs: Any) -> requests.Response:
        if response.status_code not in allowed:
            response.raise_for_status()
        return response

    return hook


def _streamed(response: requests.Response, **_kwargs: Any) -> requests.Response:
    """Mark a download's body as read by its caller: the session then leaves it unparsed
    (it parses what is not yet `response.json`), so it streams to disk."""
    response.json = lambda **_kw: None  # type: ignore[method-assign]
    return response
