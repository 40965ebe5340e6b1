"""The `reports` vendor: an ad-reporting API whose data come from asynchronous report jobs.

Served beside the seed APIs under ``/reports`` behind a bearer token (``REPORTS_TOKEN``,
`TOKEN`), for `endpoint.async_job`:

* ``POST /v1/reports`` with ``{"level": "campaign" | "ad", "from": <day>, "to": <day>}``
  creates a job over the days ``[from, to)`` and answers ``{"id": ..., "status": "pending"}``;
* ``GET /v1/reports/{id}`` answers ``{"id", "status", "files"?, "message"?}``: ``pending``,
  then ``running``, then after `Reports.polls_to_finish` polls ``completed`` with the URLs of
  its files, ``empty`` when the window has no rows, or ``failed`` with a ``message``; an id it
  does not know (never created, or forgotten: `Reports.forget`) is a 404;
* ``POST /v1/reports/{id}/cancel`` aborts a job (``cancelled``);
* ``GET /v1/accounts`` lists the advertiser accounts (``{"data": [{"id": ...}]}``), and
  ``POST /v1/accounts/{account_id}/reports`` creates a job over one account's campaigns (a
  campaign ``c`` belongs to account ``(c - 1) % ACCOUNTS + 1``): one job per parent;
* the files: a ``campaign`` job is two gzipped CSV files (``/v1/files/{id}/part-<n>.csv.gz``),
  an ``ad`` job one zip of two JSON Lines members (``/v1/files/{id}/export.zip``).

The rows (`truth`) are daily campaign and ad statistics from `FIRST_DAY` for `DAYS` days.
Knobs for tests and the demo, on the `Reports` object (``sandbox.reports``): jobs of a window
that fail (`fail`), never finish (`stall`), are forgotten at their first poll (`forget_first`),
polls held until an event is set (`hold_polls`), downloads held likewise (`hold_downloads`).
downloads cut short after their headers (`break_downloads`: how many). `created` counts the
jobs created per ``(level, from, to)`` (``(level, from, to, account)`` for an account's), and
`most_running` the most jobs running at once.
"""

from __future__ import annotations

import gzip
import io
import json
import re
import threading
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta

from .data import _rng
from .exports import serialize
from .models import ApiError, IncomingRequest, Response

NAME = "reports"
TOKEN = "sandbox-reports-token-5f1c0b7e"
FIRST_DAY = date(2026, 1, 1)
DAYS = 59  # 2026-01-01 .. 2026-02-28: two monthly windows
CAMPAIGNS = 4
ACCOUNTS = 3
ADS_PER_CAMPAIGN = 3
CAMPAIGN_FIELDS = ("campaign_id", "day", "impressions", "clicks", "spend")
AD_FIELDS = ("ad_id", "campaign_id", "day", "impressions", "clicks")
#: what a campaign report's spec declares (its CSV values are typed by it)
CAMPAIGN_SCHEMA = {
    "campaign_id": "integer",
    "impressions": "integer",
    "clicks": "integer",
    "spend": "number",
}
#: the resources of the seed spec (`source_specs/reports.yaml`) and of the tests: their level
LEVELS = {"campaign_report": "campaign", "ad_report": "ad"}
#: how long a held poll or download waits at most for its event (seconds)
HOLD_SECONDS = 120.0

_ACCOUNT_REPORTS = re.compile(r"^/v1/accounts/(?P<account>[^/]+)/reports$")
_JOB = re.compile(r"^/v1/reports/(?P<id>[^/]+)(?P<cancel>/cancel)?$")
_FILE = re.compile(r"^/v1/files/(?P<id>[^/]+)/(?P<name>part-(?P<part>[12])\.csv\.gz|export\.zip)$")


def _days() -> list[str]:
    return [(FIRST_DAY + timedelta(days=d)).isoformat() for d in range(DAYS)]


def campaign_rows() -> list[dict]:
    rng = _rng(NAME, "campaign")
    return [
        {
            "campaign_id": c + 1,
            "day": day,
            "impressions": rng.randint(100, 50_000),
            "clicks": rng.randint(0, 900),
            "spend": round(rng.uniform(5, 800), 2),
        }
        for day in _days()
        for c in range(CAMPAIGNS)
    ]


def ad_rows() -> list[dict]:
    rng = _rng(NAME, "ad")
    return [
        {
            "ad_id": c * 100 + a + 1,
            "campaign_id": c + 1,
            "day": day,
            "impressions": rng.randint(10, 9_000),
            "clicks": rng.randint(0, 300),
        }
        for day in _days()
        for c in range(CAMPAIGNS)
        for a in range(ADS_PER_CAMPAIGN)
    ]


@dataclass
class Job:
    id: str
    level: str
    start: str
    end: str
    account: int | None = None
    polls: int = 0
    status: str = "pending"

    @property
    def running(self) -> bool:
        return self.status in ("pending", "running")


@dataclass
class Reports:
    """The vendor's jobs and knobs (thread-safe)."""

    polls_to_finish: int = 2
    #: window start day -> the message its jobs fail with
    fail: dict[str, str] = field(default_factory=dict)
    #: window start days whose jobs never finish
    stall: set[str] = field(default_factory=set)
    #: how many jobs (the next ones polled) are forgotten at their first poll, as if expired
    forget_first: int = 0
    #: while set to an unset event, polls of running jobs wait for it (kill while polling)
    hold_polls: threading.Event | None = None
    #: likewise for downloads (kill while downloading)
    hold_downloads: threading.Event | None = None
    created: Counter = field(default_factory=Counter)
    cancelled: list[str] = field(default_factory=list)
    #: how many of the next downloads are reset after their headers
    break_downloads: int = 0
    most_running: int = 0
    jobs: dict[str, Job] = field(default_factory=dict)
    #: every job id ever created, in order
    ever: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def truth(
        self,
        level: str = "campaign",
        start: str | None = None,
        end: str | None = None,
        account: int | None = None,
    ) -> list[dict]:
        """The rows a job over `[start, end)` (of one account) reports (all without bounds)."""
        rows = campaign_rows() if level == "campaign" else ad_rows()
        return [
            r
            for r in rows
            if (start or "") <= r["day"] < (end or "9999")
            and (account is None or account_of(r["campaign_id"]) == account)
        ]

    def forget(self) -> None:
        """Forget every job (their ids expired)."""
        with self._lock:
            self.jobs.clear()

    def jobs_created(self) -> int:
        return sum(self.created.values())

    # ------------------------------------------------------------------ requests

    def render(self, request: IncomingRequest, subpath: str) -> Response:
        """Answer a request under ``/reports``."""
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            raise ApiError(401, "invalid_token", "send Authorization: Bearer <REPORTS_TOKEN>")
        if subpath == "/v1/accounts":
            request.resource = "accounts"
            return Response(200, {"data": [{"id": a + 1} for a in range(ACCOUNTS)]})
        account = _ACCOUNT_REPORTS.match(subpath)
        if subpath == "/v1/reports" or account:
            request.resource = "create"
            return self._create(request, int(account["account"]) if account else None)
        if found := _JOB.match(subpath):
            request.resource = "cancel" if found["cancel"] else "poll"
            if found["cancel"]:
                return self._cancel(found["id"])
            return self._poll(found["id"], request)
        if found := _FILE.match(subpath):
            request.resource = "download"
            return self._file(found["id"], found["name"], found["part"])
        raise ApiError(404, "not_found", f"no route for {request.path}")

    def _create(self, request: IncomingRequest, account: int | None) -> Response:
        if request.method != "POST":
            raise ApiError(405, "method_not_allowed", "use POST", {"Allow": "POST"})
        try:
            body = json.loads(request.body or b"{}")
            level, start, end = body.get("level", "campaign"), str(body["from"]), str(body["to"])
        except (ValueError, KeyError, AttributeError):
            raise ApiError(400, "bad_request", "send JSON {level, from, to}") from None
        if level not in ("campaign", "ad"):
            raise ApiError(400, "bad_request", "level is campaign or ad")
        with self._lock:
            job = Job(f"job-{len(self.ever) + 1}", level, start, end, account)
            self.jobs[job.id] = job
            self.ever.append(job.id)
            self.created[(level, start, end, *([account] if account else []))] += 1
            running = sum(j.running for j in self.jobs.values())
            self.most_running = max(self.most_running, running)
        return Response(201, {"id": job.id, "status": job.status})

    def _poll(self, job_id: str, request: IncomingRequest) -> Response:
        with self._lock:
            job = self.jobs.get(job_id)
            if job is not None and job.polls == 0 and self.forget_first > 0:
                self.forget_first -= 1
                del self.jobs[job_id]
                job = None
            if job is None:
                raise ApiError(404, "not_found", f"no report job {job_id}")
            job.polls += 1
            self._advance(job)
            body: dict = {"id": job.id, "status": job.status}
            if job.status == "failed":
                body["message"] = self.fail[job.start]
            if job.status == "completed":
                body["files"] = _files(job, request.headers.get("host", "127.0.0.1"))
            hold = self.hold_polls if job.status in ("pending", "running") else None
        if hold is not None and not hold.is_set():
            return Response(200, body, delay=HOLD_SECONDS, hold=hold)
        return Response(200, body)

    def _advance(self, job: Job) -> None:
        if job.status in ("completed", "failed", "empty", "cancelled"):
            return
        if job.start in self.stall or job.polls < self.polls_to_finish:
            job.status = "running" if job.polls else "pending"
        elif job.start in self.fail:
            job.status = "failed"
        elif not self.truth(job.level, job.start, job.end, job.account):
            job.status = "empty"
        else:
            job.status = "completed"

    def _cancel(self, job_id: str) -> Response:
        with self._lock:
            job = self.jobs.get(job_id)
            if job is None:
                raise ApiError(404, "not_found", f"no report job {job_id}")
            job.status = "cancelled"
            self.cancelled.append(job_id)
        return Response(200, {"id": job_id, "status": "cancelled"})

    def _file(self, job_id: str, name: str, part: str | None) -> Response:
        with self._lock:
            job = self.jobs.get(job_id)
            hold = self.hold_downloads
            if job is None or job.status != "completed":
                raise ApiError(404, "not_found", f"no file {name} of job {job_id}")
            broken = self.break_downloads > 0
            self.break_downloads = max(0, self.break_downloads - 1)
        rows = self.truth(job.level, job.start, job.end, job.account)
        if part is not None:
            half = (len(rows) + 1) // 2
            rows = rows[:half] if part == "1" else rows[half:]
            raw = gzip.compress(serialize(rows, "csv", CAMPAIGN_FIELDS))
            content_type = "application/gzip"
        else:
            raw, content_type = _zip_jsonl(rows), "application/zip"
        response = Response(200, None, raw=raw, content_type=content_type)
        if broken:
            response.reset_after = 16
        if hold is not None and not hold.is_set():
            response.delay, response.hold = HOLD_SECONDS, hold
        return response


def account_of(campaign_id: int) -> int:
    """The account a campaign belongs to."""
    return (campaign_id - 1) % ACCOUNTS + 1


def _files(job: Job, host: str) -> list[str]:
    base = f"http://{host}/{NAME}/v1/files/{job.id}"
    if job.level == "campaign":
        return [f"{base}/part-1.csv.gz", f"{base}/part-2.csv.gz"]
    return [f"{base}/export.zip"]


def _zip_jsonl(rows: list[dict]) -> bytes:
    half = (len(rows) + 1) // 2
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("part-1.jsonl", serialize(rows[:half], "jsonl"))
        archive.writestr("part-2.jsonl", serialize(rows[half:], "jsonl"))
    return out.getvalue()
