"""The SIPp test kit itself: the pcap writer, the raw sender, and SIPp scenarios talking to each other."""

from __future__ import annotations

import itertools
import math
import shutil
import socket
import struct
import threading
import time
from pathlib import Path

import pytest

from callcenter.testing.mkpcap import (
    Dtmf,
    Silence,
    Tone,
    decode_g711,
    encode_g711,
    make_pcap,
    parse_segment,
    read_pcap,
    rtp_stream,
)
from callcenter.testing.sipkit import (
    HOST,
    Sipp,
    citizen,
    dtmf_pcap,
    free_udp_port,
    pcap,
    run,
    running,
    send_raw_udp,
)

needs_sipp = pytest.mark.skipif(
    shutil.which("sipp") is None, reason="sipp not installed (apt-get install sip-tester)"
)


# --- mkpcap ----------------------------------------------------------------------------------------
def test_pcap_packets_timestamps_and_payload_types(tmp_path: Path) -> None:
    path = tmp_path / "call.pcap"
    count = make_pcap(path, ["tone:1000:1", "dtmf:5:160", "sil:0.2"], codec="PCMA", dtmf_pt=120)
    packets = read_pcap(path)
    audio = [p for p in packets if p.payload_type == 8]
    events = [p for p in packets if p.payload_type == 120]
    # 1 s tone = 50 packets, the 100 ms gap after the digit = 5, 0.2 s silence = 10
    assert len(audio) == 65
    # 160 ms event = 8 packets, the end packet sent three times
    assert len(events) == 10 and count == len(packets) == 75
    assert all(len(p.payload) == 160 for p in audio)
    assert [b.seq - a.seq for a, b in itertools.pairwise(packets)] == [1] * 74
    assert [p.timestamp for p in audio[:3]] == [0, 160, 320]
    assert {p.timestamp for p in events} == {8000}  # an event keeps its start timestamp
    assert [p.dtmf_event() for p in events[-3:]] == [("5", True, 1280)] * 3
    assert events[0].marker and not events[1].marker and audio[0].marker
    assert audio[50].timestamp == 8000 + 1280  # audio resumes after the event's duration
    assert packets[1].time - packets[0].time == pytest.approx(0.02)
    assert packets[-1].time == pytest.approx(1.0 + 0.16 + 0.1 + 0.2 - 0.02, abs=1e-6)


def test_pcap_frames_are_valid_ipv4_udp(tmp_path: Path) -> None:
    path = tmp_path / "u.pcap"
    make_pcap(path, ["tone:440:0.1"], codec="PCMU")
    data = path.read_bytes()
    frame = data[24 + 16 : 24 + 16 + struct.unpack("<I", data[24 + 8 : 24 + 12])[0]]
    ip = frame[14:34]
    assert struct.unpack("!H", frame[12:14])[0] == 0x0800 and ip[9] == 17  # IPv4, UDP
    words = struct.unpack("!10H", ip)
    total = sum(words)
    assert (total & 0xFFFF) + (total >> 16) == 0xFFFF  # header checksum verifies
    assert {p.payload_type for p in read_pcap(path)} == {0}


@pytest.mark.parametrize("codec", ["PCMA", "PCMU"])
def test_g711_round_trip_keeps_the_tone_level(codec: str) -> None:
    samples = Tone(1000, 0.1, dbfs=-13).samples(0)
    decoded = decode_g711(encode_g711(samples, codec), codec)
    rms = math.sqrt(sum(s * s for s in decoded) / len(decoded)) / 32768
    assert 20 * math.log10(rms * math.sqrt(2)) == pytest.approx(-13, abs=0.3)
    assert max(abs(a - b) for a, b in zip(samples, decoded, strict=True)) < 0.04 * 32768


def test_segments_parse_and_bad_specs_are_refused() -> None:
    assert parse_segment("tone:600:2") == Tone(600, 2)
    assert parse_segment("sil:0.5") == Silence(0.5)
    assert parse_segment("dtmf:#:200") == Dtmf("#", 200)
    for bad in ("dtmf:X", "tone:600", "beep:1"):
        with pytest.raises(ValueError):
            parse_segment(bad)
    with pytest.raises(ValueError):
        list(rtp_stream([Silence(0.1)], codec="G729"))


def test_pcap_cache_reuses_the_file(tmp_path: Path) -> None:
    first = pcap("tone:700:0.2", cache=tmp_path)
    mtime = first.stat().st_mtime_ns
    assert pcap("tone:700:0.2", cache=tmp_path) == first and first.stat().st_mtime_ns == mtime
    assert pcap("tone:700:0.2", dtmf_pt=120, cache=tmp_path) != first


# --- raw sender ------------------------------------------------------------------------------------
def test_send_raw_udp_returns_the_reply_or_none() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as echo:
        echo.bind((HOST, 0))
        echo.settimeout(2)
        port = echo.getsockname()[1]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as quiet:
            quiet.bind((HOST, 0))
            assert send_raw_udp(HOST, quiet.getsockname()[1], b"x", timeout=0.2) is None

        def answer() -> None:
            data, peer = echo.recvfrom(100)
            echo.sendto(data.upper(), peer)

        thread = threading.Thread(target=answer)
        thread.start()
        assert send_raw_udp(HOST, port, b"garbage", timeout=2) == b"GARBAGE"
        thread.join()


# --- SIPp scenarios against each other -------------------------------------------------------------
def _uas(scenario: str, calls: int = 1, **kwargs: object) -> Sipp:
    return Sipp(scenario, service="1003", calls=calls, timeout=15, **kwargs)  # type: ignore[arg-type]


def _uac(scenario: str, uas: Sipp, **kwargs: object):
    args: dict[str, object] = {"service": "1003", "timeout": 15, "hold_ms": 400, **kwargs}
    return run(citizen(f"{HOST}:{uas.port}", scenario=scenario, **args))  # type: ignore[arg-type]


@needs_sipp
def test_citizen_calls_an_answering_phone_directly() -> None:
    uas = _uas("uas_answer", calls=2, hold_ms=100, rtp_echo=True)
    with running(uas):
        started = time.monotonic()
        result = _uac("citizen", uas, calls=2, pcaps={"audio": pcap("speech:0.5")})
        assert result.ok and result.successful == 2, result
        assert uas.wait(10).successful == 2
        assert time.monotonic() - started < 5


@needs_sipp
def test_dtmf_caller_and_info_callee_complete() -> None:
    phone = _uas("uas_answer")
    keys = _uas("uas_info", keys={"info_digit": "3", "info_delay_ms": "200"})
    with running(phone, keys):
        dtmf = dtmf_pcap("12#", lead_in=0.1)
        pressing = _uac("citizen_dtmf", phone, pcaps={"dtmf": dtmf}, keys={"info_delay_ms": "700"})
        assert pressing.ok, pressing
        assert _uac("citizen", keys).ok  # the caller answers the callee's INFO with 200
        assert phone.wait(10).ok and keys.wait(10).ok


@needs_sipp
def test_cancel_while_ringing_and_busy_phone() -> None:
    ringing, busy = _uas("uas_ringing"), _uas("uas_busy")
    with running(ringing, busy):
        assert _uac("citizen_cancel", ringing, hold_ms=200).ok  # CANCEL 200 ms after the 180
        assert ringing.wait(10).ok
        refused = _uac("citizen", busy)
        assert refused.failed == 1 and "SIP/2.0 486" in refused.errors
        assert busy.wait(10).ok


@needs_sipp
def test_stop_ends_a_waiting_uas() -> None:
    uas = _uas("uas_answer", port=free_udp_port())
    with uas:
        uas.wait_until_listening()
        assert uas.process is not None and uas.process.poll() is None
    assert uas.process.poll() is not None
    assert uas.result is not None and uas.result.successful == 0
