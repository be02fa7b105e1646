"""The drift job's `--window-url` handling (issue 15, item 4): one spelling per window URL, IPv6
addresses kept usable, and anything else refused naming the flag."""

from __future__ import annotations

import pytest

from modelpilot import errors
from modelpilot.driftjob import collect


def test_spellings_of_one_url_are_one_source_and_ipv6_keeps_its_brackets() -> None:
    unique, repeated = collect.unique_urls(
        [
            "http://10.0.0.5:8080",
            "HTTP://10.0.0.5:8080/",
            "http://[FD00::1]:8080",
            "http://[fd00::1]:8080/",
        ]
    )
    assert unique == ["http://10.0.0.5:8080", "http://[FD00::1]:8080"]
    assert repeated == {
        "HTTP://10.0.0.5:8080/": "http://10.0.0.5:8080",
        "http://[fd00::1]:8080/": "http://[FD00::1]:8080",
    }
    assert collect.check_url("http://[FD00::1]:8080/") == "http://[fd00::1]:8080"


@pytest.mark.parametrize(
    "url", ["ftp://10.0.0.1", "10.0.0.1:8080", "http://", "http://[::1", "http://h:99999", ""]
)
def test_a_url_the_job_cannot_fetch_is_refused_naming_the_flag(url: str) -> None:
    with pytest.raises(errors.InputError, match="--window-url"):
        collect.check_url(url)
