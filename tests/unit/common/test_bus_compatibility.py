"""The rules for changing bus messages across one release (docs/operations.md, "Upgrades"):
a field added with a default is read by the previous release and missed by nothing; a new
message version is a new tag, which an older consumer cannot read."""

from __future__ import annotations

import json

import msgspec
import pytest

from acmegate.common.bus import codec
from acmegate.common.messages import Identifier, OrderFinalized, VerifyChallenge
from acmegate.common.vocabulary import ChallengeType


def test_a_field_added_by_the_next_release_is_ignored_by_this_one() -> None:
    sent = json.loads(
        codec.encode(OrderFinalized(correlation_id="c", order_id="o", certificate_serial="1f"))
    )
    sent["added_in_the_next_release"] = {"anything": [1, 2]}
    decoded = codec.decode(json.dumps(sent).encode())
    assert decoded == OrderFinalized(correlation_id="c", order_id="o", certificate_serial="1f")


def test_a_field_this_release_added_with_a_default_may_be_missing() -> None:
    # What the previous release sent had none of the fields added since, all with defaults.
    message = VerifyChallenge(
        correlation_id="c",
        challenge_id="ch",
        authz_id="a",
        order_id="o",
        account_id="acct",
        challenge_type=ChallengeType.DEVICE_ATTEST_01,
        identifier=Identifier("permanent-identifier", "C02"),
        token="t",
        payload=b"{}",
        platform="jamf",
    )
    fields = VerifyChallenge.__struct_fields__
    optional = fields[len(fields) - len(VerifyChallenge.__struct_defaults__) :]
    assert optional, "VerifyChallenge has optional fields to leave out"
    sent = json.loads(codec.encode(message))
    for name in optional:
        del sent[name]
    decoded = codec.decode(json.dumps(sent).encode())
    assert isinstance(decoded, VerifyChallenge)
    assert all(getattr(decoded, name) is None for name in optional)


def test_an_unknown_message_version_is_poison_for_an_older_consumer() -> None:
    sent = json.loads(codec.encode(OrderFinalized(correlation_id="c", order_id="o")))
    sent["type"] = "order.result.v2"
    with pytest.raises(msgspec.ValidationError):
        codec.decode(json.dumps(sent).encode())
