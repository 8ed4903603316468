"""Who hears whom on a worker's conference bridge, for every combination of legs (pure function,
no pjsua2): the rules that make listen, whisper and barge, three-way calls and the recorders right."""

from __future__ import annotations

from callcenter.worker import PLAYER, REC_CITIZEN, REC_HOTLINE, sip_user, wanted_edges


def hears(edges: set[tuple[str, str]], listener: str) -> set[str]:
    return {src for src, sink in edges if sink == listener}


def test_a_queued_citizen_hears_the_prompts_and_both_sides_are_recorded() -> None:
    edges = wanted_edges({"citizen"}, None, playing=True)
    assert hears(edges, "citizen") == {PLAYER}
    assert hears(edges, REC_CITIZEN) == {"citizen"}
    assert hears(edges, REC_HOTLINE) == {PLAYER}


def test_prompts_stop_reaching_the_citizen_once_a_seat_is_on_the_line() -> None:
    edges = wanted_edges({"citizen", "seat"}, None, playing=True)
    assert hears(edges, "citizen") == {"seat"} and hears(edges, "seat") == {"citizen"}
    assert hears(edges, REC_HOTLINE) == {"seat"}


def test_a_three_way_call_joins_everyone() -> None:
    edges = wanted_edges({"citizen", "seat", "conference"}, None, playing=False)
    for leg in ("citizen", "seat", "conference"):
        assert hears(edges, leg) == {"citizen", "seat", "conference"} - {leg}
    assert hears(edges, REC_HOTLINE) == {"seat", "conference"}


def test_a_listening_supervisor_hears_all_and_is_heard_by_nobody() -> None:
    edges = wanted_edges({"citizen", "seat", "supervisor"}, "listen", playing=False)
    assert hears(edges, "supervisor") == {"citizen", "seat"}
    assert not any(src == "supervisor" for src, _ in edges)


def test_a_whispering_supervisor_is_heard_by_the_operator_only() -> None:
    edges = wanted_edges({"citizen", "seat", "supervisor"}, "whisper", playing=False)
    assert hears(edges, "seat") == {"citizen", "supervisor"}
    assert hears(edges, "citizen") == {"seat"}
    assert "supervisor" not in hears(edges, REC_HOTLINE)  # the recording is what the citizen heard


def test_a_barging_supervisor_joins_the_call() -> None:
    edges = wanted_edges({"citizen", "seat", "supervisor"}, "barge", playing=False)
    assert hears(edges, "citizen") == {"seat", "supervisor"}
    assert hears(edges, "seat") == {"citizen", "supervisor"}
    assert hears(edges, REC_HOTLINE) == {"seat", "supervisor"}


def test_after_a_transfer_the_citizen_talks_to_the_emergency_centre_alone() -> None:
    edges = wanted_edges({"citizen", "transfer"}, None, playing=False)
    assert hears(edges, "citizen") == {"transfer"} and hears(edges, "transfer") == {"citizen"}


def test_nothing_is_wired_for_legs_that_are_gone() -> None:
    assert wanted_edges(set(), "barge", playing=True) == set()


def test_the_caller_number_is_taken_from_the_sip_uri() -> None:
    assert sip_user('"Zhang" <sip:13800138000@10.0.0.1:5060>;tag=ab') == "13800138000"
    assert sip_user("sip:1001@127.0.0.1") == "1001"
    assert sip_user("<tel:+8613800138000>") == "+8613800138000"
