"""Deterministic dataset served by the sandbox.

Everything here is generated from fixed seeds, so two calls to
:func:`build_dataset` return identical data. Row counts are chosen so that
every paginated resource spans at least three pages at the page size the
seed clients use (offset ``limit=100`` -> more than 200 rows, ledger
``limit=5`` -> 23 rows, marketing cursor pages of 5 -> 13 organizations),
with a short last page. Every child endpoint has parents with zero children,
with exactly one page of children and with several pages of children.
"""

from __future__ import annotations

import random
import uuid
from datetime import date, datetime, timedelta, timezone

SANDBOX_SPECS: tuple[str, ...] = (
    "ad_analytics",
    "marketing_api",
    "native_ads",
    "ledger",
    "workspace_docs",
)

RESOURCES: dict[str, tuple[str, ...]] = {
    "ad_analytics": ("accounts", "account_users", "ad_campaign_analytics"),
    "marketing_api": ("organizations", "adaccounts", "creatives", "ads"),
    "native_ads": (
        "accounts",
        "audiences",
        "campaigns",
        "audience_rules",
        "conversion_rules",
        "motion_ads",
        "campaign_items",
    ),
    "ledger": ("resource_name",),
    "workspace_docs": ("blocks", "databases", "pages", "users"),
}

# Resources kept sorted (also after upserts); others keep insertion order.
SORT_KEYS: dict[tuple[str, str], tuple[str, ...]] = {
    ("ad_analytics", "ad_campaign_analytics"): ("date", "campaign_id"),
    ("ledger", "resource_name"): ("updated_at", "id"),
}

# Children per parent. Patterns repeat over parents where noted ("cycle").
ADACCOUNTS_PER_ORG = (12, 0, 3, 5, 7, 1, 0, 2, 11, 4, 6, 0, 3)
CREATIVES_CYCLE = (0, 2, 5, 11, 1, 7, 3)
ADS_CYCLE = (4, 0, 13, 1, 6, 0)
AUDIENCES_PER_ACCOUNT = (5, 0, 1, 8, 3, 0)
CAMPAIGNS_PER_ACCOUNT = (6, 1, 0, 4, 9, 2)
AUDIENCE_RULES_PER_ACCOUNT = (2, 0, 1, 4, 0, 3)
CONVERSION_RULES_PER_ACCOUNT = (3, 1, 0, 5, 2, 0)
MOTION_ADS_CYCLE = (0, 3, 1, 0, 6, 2)
CAMPAIGN_ITEMS_CYCLE = (4, 1, 0, 7, 2, 0, 3)

ANALYTICS_START = date(2026, 1, 1)
ANALYTICS_DAYS = 31
ANALYTICS_CAMPAIGNS = 10

_EPOCH = datetime(2025, 6, 1, 8, 0, tzinfo=timezone.utc)
_COUNTRIES = ("US", "GB", "DE", "FR", "CA", "AU", "IL", "JP")
_CURRENCIES = ("USD", "GBP", "EUR", "EUR", "CAD", "AUD", "ILS", "JPY")


def iso(moment: datetime) -> str:
    """Format an aware datetime as ``YYYY-MM-DDTHH:MM:SSZ``."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _rng(spec: str, resource: str) -> random.Random:
    return random.Random(f"restsync-sandbox/{spec}/{resource}")


def _stamp(index: int, step_hours: int = 7) -> str:
    return iso(_EPOCH + timedelta(hours=index * step_hours))


def _cycle(pattern: tuple[int, ...], index: int) -> int:
    return pattern[index % len(pattern)]


# --------------------------------------------------------------------------- ad_analytics


def _ad_analytics() -> dict[str, list[dict]]:
    rng = _rng("ad_analytics", "accounts")
    accounts = [
        {
            "id": 507000 + i,
            "name": f"Account {i + 1:03d}",
            "status": ("ACTIVE", "PAUSED", "CANCELED")[i % 3],
            "type": "ENTERPRISE" if i % 5 == 0 else "BUSINESS",
            "currency": _CURRENCIES[i % len(_CURRENCIES)],
            "test": i % 17 == 0,
            "total_budget": None if i % 4 == 0 else round(rng.uniform(1_000, 50_000), 2),
            "reference": None if i % 3 else f"org:{9000 + i}",
            "created_at": _stamp(i),
        }
        for i in range(233)
    ]
    rng = _rng("ad_analytics", "account_users")
    roles = ("ACCOUNT_MANAGER", "CAMPAIGN_MANAGER", "CREATIVE_MANAGER", "VIEWER")
    account_users = [
        {
            "id": 880000 + i,
            "account_id": 507000 + (i * 7) % 233,
            "user_email": f"user{i + 1:03d}@example.com",
            "role": rng.choice(roles),
            "notifications_enabled": rng.random() < 0.6,
            "last_login_at": None if i % 6 == 0 else _stamp(i, 5),
        }
        for i in range(257)
    ]
    rng = _rng("ad_analytics", "ad_campaign_analytics")
    analytics = []
    for day in range(ANALYTICS_DAYS):
        day_str = (ANALYTICS_START + timedelta(days=day)).isoformat()
        for c in range(1, ANALYTICS_CAMPAIGNS + 1):
            impressions = rng.randint(500, 20_000)
            clicks = rng.randint(0, impressions // 20)
            analytics.append(
                {
                    "id": f"cmp-{c:03d}:{day_str}",
                    "campaign_id": f"cmp-{c:03d}",
                    "date": day_str,
                    "impressions": impressions,
                    "clicks": clicks,
                    "spend": round(clicks * rng.uniform(0.4, 3.5), 2),
                }
            )
    return {
        "accounts": accounts,
        "account_users": account_users,
        "ad_campaign_analytics": analytics,
    }


# --------------------------------------------------------------------------- marketing_api


def _marketing_api() -> dict[str, list[dict]]:
    rng = _rng("marketing_api", "all")
    orgs, adaccounts, creatives, ads = [], [], [], []
    for o, n_accounts in enumerate(ADACCOUNTS_PER_ORG):
        org_id = f"org-{o + 1:03d}"
        orgs.append(
            {
                "id": org_id,
                "name": f"Organization {o + 1}",
                "type": "PARTNER" if o % 4 == 3 else "ENTERPRISE",
                "country": _COUNTRIES[o % len(_COUNTRIES)],
                "address": {"city": f"City {o % 5}", "postal_code": f"{10000 + o * 37}"},
                "accepted_terms_version": None if o % 3 == 2 else 8 + o % 2,
                "created_at": _stamp(o, 31),
                "updated_at": _stamp(o + 40, 31),
            }
        )
        for _ in range(n_accounts):
            a = len(adaccounts)
            acct_id = f"adacct-{a + 1:04d}"
            adaccounts.append(
                {
                    "id": acct_id,
                    "organization_id": org_id,
                    "name": f"Ad account {a + 1}",
                    "type": "PARTNER" if a % 5 == 0 else "DIRECT",
                    "status": "ACTIVE" if a % 6 else "DISABLED",
                    "currency": _CURRENCIES[a % len(_CURRENCIES)],
                    "timezone": ("UTC", "America/New_York", "Europe/Berlin")[a % 3],
                    "lifetime_spend_cap_micro": None if a % 2 else (a + 1) * 5_000_000,
                    "created_at": _stamp(a, 13),
                }
            )
            for _ in range(_cycle(CREATIVES_CYCLE, a)):
                k = len(creatives)
                creatives.append(
                    {
                        "id": f"creative-{k + 1:05d}",
                        "adaccount_id": acct_id,
                        "name": f"Creative {k + 1}",
                        "type": ("SNAP_AD", "APP_INSTALL", "WEB_VIEW")[k % 3],
                        "headline": f"Headline {k + 1}",
                        "brand_name": None if k % 4 == 0 else f"Brand {k % 9}",
                        "shareable": k % 2 == 0,
                        "created_at": _stamp(k, 3),
                    }
                )
            for _ in range(_cycle(ADS_CYCLE, a)):
                k = len(ads)
                ads.append(
                    {
                        "id": f"ad-{k + 1:05d}",
                        "adaccount_id": acct_id,
                        "name": f"Ad {k + 1}",
                        "status": "ACTIVE" if k % 3 else "PAUSED",
                        "review_status": ("APPROVED", "PENDING", "REJECTED")[k % 3],
                        "bid_micro": rng.randint(100, 5_000) * 1_000,
                        "paying_advertiser_name": None if k % 5 else f"Advertiser {k % 7}",
                        "created_at": _stamp(k, 4),
                    }
                )
    return {"organizations": orgs, "adaccounts": adaccounts, "creatives": creatives, "ads": ads}


# --------------------------------------------------------------------------- native_ads


def _native_ads() -> dict[str, list[dict]]:
    rng = _rng("native_ads", "all")
    out: dict[str, list[dict]] = {name: [] for name in RESOURCES["native_ads"]}
    for i in range(len(CAMPAIGNS_PER_ACCOUNT)):
        account_id = f"acct-{i + 1:03d}"
        out["accounts"].append(
            {
                "id": account_id,
                "name": f"Publisher account {i + 1}",
                "country": _COUNTRIES[i],
                "currency": _CURRENCIES[i],
                "type": "ADVERTISER" if i % 3 else "PARTNER",
                "is_active": i != 4,
            }
        )
        for _ in range(AUDIENCES_PER_ACCOUNT[i]):
            k = len(out["audiences"])
            out["audiences"].append(
                {
                    "id": f"aud-{k + 1:04d}",
                    "account_id": account_id,
                    "name": f"Audience {k + 1}",
                    "audience_type": ("LOOKALIKE", "CRM", "PIXEL")[k % 3],
                    "size": None if k % 4 == 1 else rng.randint(1_000, 900_000),
                    "status": "ACTIVE" if k % 5 else "ARCHIVED",
                }
            )
        for _ in range(AUDIENCE_RULES_PER_ACCOUNT[i]):
            k = len(out["audience_rules"])
            out["audience_rules"].append(
                {
                    "id": f"arule-{k + 1:04d}",
                    "account_id": account_id,
                    "display_name": f"Audience rule {k + 1}",
                    "ttl_in_hours": (24, 168, 720)[k % 3],
                    "description": None if k % 2 else f"Visitors segment {k + 1}",
                }
            )
        for _ in range(CONVERSION_RULES_PER_ACCOUNT[i]):
            k = len(out["conversion_rules"])
            out["conversion_rules"].append(
                {
                    "id": f"crule-{k + 1:04d}",
                    "account_id": account_id,
                    "display_name": f"Conversion rule {k + 1}",
                    "category": ("PURCHASE", "LEAD", "SIGNUP")[k % 3],
                    "revenue": None if k % 3 == 1 else round(rng.uniform(1, 250), 2),
                    "include_in_total_conversions": k % 2 == 0,
                }
            )
        for _ in range(CAMPAIGNS_PER_ACCOUNT[i]):
            c = len(out["campaigns"])
            campaign_id = 70001 + c
            out["campaigns"].append(
                {
                    "id": campaign_id,
                    "account_id": account_id,
                    "name": f"Campaign {c + 1}",
                    "status": ("RUNNING", "PAUSED", "PENDING_APPROVAL")[c % 3],
                    "cpc": round(rng.uniform(0.05, 1.5), 3),
                    "daily_cap": None if c % 3 == 0 else float(rng.randint(50, 2_000)),
                    "start_date": (ANALYTICS_START + timedelta(days=c)).isoformat(),
                    "end_date": None if c % 2 else "2026-12-31",
                    "targeting": {"country": _COUNTRIES[c % 8], "platform": "DESKTOP,MOBILE"},
                }
            )
            for _ in range(_cycle(MOTION_ADS_CYCLE, c)):
                k = len(out["motion_ads"])
                out["motion_ads"].append(
                    {
                        "id": f"video-{k + 1:05d}",
                        "campaign_id": campaign_id,
                        "account_id": account_id,
                        "title": f"Video {k + 1}",
                        "duration_seconds": 6 + k % 25,
                        "cta_type": None if k % 3 == 0 else "LEARN_MORE",
                        "is_active": k % 4 != 2,
                    }
                )
            for _ in range(_cycle(CAMPAIGN_ITEMS_CYCLE, c)):
                k = len(out["campaign_items"])
                out["campaign_items"].append(
                    {
                        "id": f"item-{k + 1:05d}",
                        "campaign_id": campaign_id,
                        "account_id": account_id,
                        "url": f"https://news.example.com/story/{k + 1}",
                        "title": f"Story {k + 1}",
                        "approval_state": ("APPROVED", "PENDING", "REJECTED")[k % 3],
                        "cpc_boost": None if k % 2 else round(rng.uniform(-0.5, 0.5), 2),
                    }
                )
    return out


# --------------------------------------------------------------------------- ledger


def _ledger() -> dict[str, list[dict]]:
    rng = _rng("ledger", "resource_name")
    base = datetime(2026, 1, 5, 10, 0, tzinfo=timezone.utc)
    rows = []
    for i in range(23):
        updated = base + timedelta(hours=6 * ((i * 7) % 20))  # three ties on updated_at
        rows.append(
            {
                "id": f"rec-{i + 1:03d}",
                "name": f"Ledger record {i + 1}",
                "active": i % 4 != 0,
                "balance": round(rng.uniform(-500, 5_000), 2),
                "memo": None if i % 3 else f"memo {i + 1}",
                "created_at": iso(updated - timedelta(days=3 + i % 5)),
                "updated_at": iso(updated),
            }
        )
    return {"resource_name": sorted(rows, key=lambda r: (r["updated_at"], r["id"]))}


# --------------------------------------------------------------------------- workspace_docs


def _doc_id(kind: str, index: int) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"restsync-sandbox/workspace_docs/{kind}/{index}"))


def _workspace_docs() -> dict[str, list[dict]]:
    rng = _rng("workspace_docs", "all")
    users = [
        {
            "id": _doc_id("users", i),
            "object": "user",
            "type": "bot" if i % 10 == 9 else "person",
            "name": f"User {i + 1}",
            "avatar_url": None if i % 4 else f"https://avatars.example.com/{i + 1}.png",
            "person": {"email": None if i % 10 == 9 else f"person{i + 1}@example.com"},
        }
        for i in range(203)
    ]
    databases = [
        {
            "id": _doc_id("databases", i),
            "object": "database",
            "title": f"Database {i + 1}",
            "created_by_id": users[(i * 3) % len(users)]["id"],
            "created_time": _stamp(i, 9),
            "last_edited_time": _stamp(i + 50, 9),
            "archived": i % 13 == 0,
            "is_inline": i % 2 == 1,
            "icon": None if i % 3 else "📘",
        }
        for i in range(211)
    ]
    pages = [
        {
            "id": _doc_id("pages", i),
            "object": "page",
            "title": f"Page {i + 1}",
            "database_id": None if i % 5 == 0 else databases[(i * 7) % len(databases)]["id"],
            "created_by_id": users[(i * 11) % len(users)]["id"],
            "created_time": _stamp(i, 5),
            "last_edited_time": _stamp(i + 30, 5),
            "archived": i % 17 == 0,
            "url": f"https://docs.example.com/page-{i + 1}",
            "properties": {
                "status": ("Todo", "In progress", "Done")[i % 3],
                "priority": 1 + i % 4,
                "estimate": None if i % 2 else round(rng.uniform(0.5, 13), 1),
            },
        }
        for i in range(247)
    ]
    blocks = [
        {
            "id": _doc_id("blocks", i),
            "object": "block",
            "page_id": pages[(i * 5) % len(pages)]["id"],
            "type": ("paragraph", "heading_1", "to_do", "image", "divider")[i % 5],
            "position": i % 40,
            "has_children": i % 6 == 0,
            "text": None if i % 5 in (3, 4) else f"Block text {i + 1}",
            "created_time": _stamp(i, 2),
        }
        for i in range(389)
    ]
    return {"blocks": blocks, "databases": databases, "pages": pages, "users": users}


_BUILDERS = {
    "ad_analytics": _ad_analytics,
    "marketing_api": _marketing_api,
    "native_ads": _native_ads,
    "ledger": _ledger,
    "workspace_docs": _workspace_docs,
}


def build_dataset() -> dict[str, dict[str, list[dict]]]:
    """Return a fresh copy of the full dataset: ``{spec: {resource: [row, ...]}}``."""
    return {spec: _BUILDERS[spec]() for spec in SANDBOX_SPECS}
