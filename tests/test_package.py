import re

import skvidsage


def test_version_is_pep440():
    assert re.fullmatch(r"\d+\.\d+\.\d+([.-]?(dev|a|b|rc)\d+)?", skvidsage.__version__)


def test_all_names_exist_and_are_sorted():
    for name in skvidsage.__all__:
        assert hasattr(skvidsage, name), name
    assert skvidsage.__all__ == sorted(skvidsage.__all__)
