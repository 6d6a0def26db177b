"""The formatting layer's words for ports and actors, used by the checks' titles."""

from __future__ import annotations

import pytest

from auditor import formatting as fmt


@pytest.mark.parametrize(("args", "words"), [
    ((6, 3389, 3389), "RDP (tcp/3389)"),
    ((17, 53, 53), "DNS (udp/53)"),
    ((6, 4444, 4444), "tcp/4444"),
    ((6, 1000, 2000), "tcp/1000-2000"),
    ((6, None, None), "all tcp ports"),
    ((6, 0, 65535), "all tcp ports"),
    ((-1, None, None), "all traffic"),
    ((1, None, None), "icmp"),
    ((47, None, None), "gre"),
    ((99, None, None), "protocol 99"),
])
def test_port_range_in_words(args, words):
    assert fmt.ports(*args) == words


@pytest.mark.parametrize(("actor", "short"), [
    ("arn:aws:sts::111122223333:assumed-role/AdminRole/alice@example.com", "alice@example.com (AdminRole)"),
    ("arn:aws:iam::111122223333:user/legacy-ops", "legacy-ops"),
    ("arn:aws:iam::111122223333:user/division/ops/bob", "bob"),
    ("arn:aws:iam::111122223333:role/aws-service-role/config.amazonaws.com/AWSServiceRoleForConfig",
     "role AWSServiceRoleForConfig"),
    ("arn:aws:iam::111122223333:root", "the root user of 111122223333"),
    ("config.amazonaws.com", "config.amazonaws.com"),
    (None, "an unknown principal"),
])
def test_short_actor(actor, short):
    assert fmt.actor(actor) == short
