"""What a user-agent string says: uap-core's browser, OS and device, a device type, a bot flag.

Parsing uses ua-parser with the precompiled uap-core rules (ua-parser-builtins) and, where it
installs, the Rust resolver (ua-parser-rs); the crawler-user-agents list adds the bots uap-core
does not call Spider. Whole answers are kept in an LRU cache keyed on the string, since the
same few thousand user agents make most of the traffic.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable, Mapping
from typing import Any

import ua_parser
from ua_parser import Domain

from thrad_events.fields import USER_AGENT_FIELDS

log = logging.getLogger(__name__)

CACHE_SIZE = 8192
# Real user agents are a few hundred characters; a longer string is parsed by its beginning.
MAX_PARSED_CHARS = 1024
UA_COLUMNS = USER_AGENT_FIELDS
DEVICE_TYPES = ("desktop", "mobile", "tablet", "bot", "other")

UserAgentColumns = Mapping[str, Any]
NO_USER_AGENT: UserAgentColumns = dict.fromkeys(UA_COLUMNS)

_TV_OR_CONSOLE = re.compile(
    r"SmartTV|SMART-TV|Smart TV|GoogleTV|Android TV|AppleTV|CrKey|Roku|HbbTV|BRAVIA|"
    r"AFT[A-Z]|Tizen[^)]*TV|Web0S|webOS[^)]*TV|PlayStation|Xbox|Nintendo|Oculus|Quest [0-9P]"
)
_TABLET = re.compile(r"iPad|Tablet|tablet|Kindle|KF[A-Z]{2,4}\b|Silk/|PlayBook|Nexus (?:7|9|10)\b")
_MOBILE = re.compile(
    r"Mobi|iPhone|iPod|Windows Phone|IEMobile|BlackBerry|BB10|Opera Mini|Symbian|Series ?60|"
    r"J2ME|MIDP|Fennec|KaiOS"
)
_DESKTOP_OS = frozenset(
    {
        "Windows",
        "Mac OS X",
        "Linux",
        "Ubuntu",
        "Debian",
        "Fedora",
        "Red Hat",
        "SUSE",
        "Mint",
        "Arch Linux",
        "Gentoo",
        "Chrome OS",
        "FreeBSD",
        "OpenBSD",
        "NetBSD",
        "Solaris",
    }
)
_MOBILE_OS = frozenset({"iOS", "Android", "Windows Phone", "BlackBerry OS", "KaiOS"})


class UserAgentParser:
    """ua_* columns for a user-agent string, remembered per string."""

    def __init__(self, cache_size: int = CACHE_SIZE) -> None:
        fast = ua_parser.RegexResolver is not None or ua_parser.Re2Resolver is not None
        matchers = ua_parser.load_lazy_builtins() if fast else ua_parser.load_builtins()
        self._resolve = ua_parser.BestAvailableResolver(matchers)
        self.resolver_name = type(self._resolve).__module__
        self._is_crawler = crawler_matcher()
        self.columns: Callable[[str], UserAgentColumns] = functools.lru_cache(cache_size)(
            self._columns
        )

    def _columns(self, user_agent: str) -> UserAgentColumns:
        text = user_agent[:MAX_PARSED_CHARS]
        result = self._resolve(text, Domain.ALL)
        agent, os, device = result.user_agent, result.os, result.device
        browser = agent.family if agent else "Other"
        os_family = os.family if os else "Other"
        device_family = device.family if device else "Other"
        is_bot = device_family == "Spider" or self._is_crawler(text)
        return {
            "ua_browser": browser,
            "ua_os": os_family,
            "ua_device": device_family,
            "ua_browser_version": _version(agent.major, agent.minor, agent.patch, agent.patch_minor)
            if agent
            else None,
            "ua_os_version": _version(os.major, os.minor, os.patch, os.patch_minor) if os else None,
            "ua_device_type": device_type(text, os_family, is_bot),
            "ua_is_bot": int(is_bot),
        }


def device_type(user_agent: str, os_family: str, is_bot: bool) -> str:
    """desktop, mobile, tablet, bot or other (TVs, consoles, headsets, unknown clients)."""
    if is_bot:
        return "bot"
    if _TV_OR_CONSOLE.search(user_agent):
        return "other"
    if _TABLET.search(user_agent):
        return "tablet"
    if _MOBILE.search(user_agent):
        return "mobile"
    if os_family == "Android":
        # Android browsers on phones say "Mobile"; on tablets they do not.
        return "tablet"
    if os_family in _MOBILE_OS:
        return "mobile"
    if os_family in _DESKTOP_OS:
        return "desktop"
    return "other"


def crawler_matcher() -> Callable[[str], bool]:
    """Whether a user agent matches the crawler-user-agents list.

    The list's ~1,500 patterns run in one Rust regex set when ua-parser-rs is there, dozens of
    times faster than Python's re, which runs them otherwise, in chunks, as the package itself
    does (docs/enrichment.md has the measurement).
    """
    import crawleruseragents

    patterns = [entry["pattern"] for entry in crawleruseragents.CRAWLER_USER_AGENTS_DATA]
    try:
        import ua_parser_rs

        extractor = ua_parser_rs.DeviceExtractor(
            [(pattern, None, "Spider", None, None) for pattern in patterns]
        )
    except (ImportError, ValueError) as exc:
        log.info("crawler list runs on Python's re (%s)", exc)
        is_crawler: Callable[[str], bool] = crawleruseragents.is_crawler
        return is_crawler

    def matches(user_agent: str) -> bool:
        return extractor.extract(user_agent) is not None

    return matches


def _version(*parts: str | None) -> str | None:
    """major.minor.patch.patch_minor, as far as the parts go."""
    present: list[str] = []
    for part in parts:
        if not part:
            break
        present.append(part)
    return ".".join(present) or None
