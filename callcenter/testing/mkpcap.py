"""Write pcap files of one RTP stream (G.711 audio and RFC 4733 DTMF events) for SIPp's play_pcap_audio.

Pure Python: Ethernet/IPv4/UDP/RTP, 20 ms packets, one SSRC with one sequence and timestamp space for
audio and events (SIPp replays packets byte for byte, so the payload types must be the ones the SDP of
the call uses: 8 PCMA or 0 PCMU, and the telephone-event PT of the far end, 101 or pjsua2's 120).

Command line: `python -m callcenter.testing.mkpcap out.pcap [--codec PCMU] [--dtmf-pt 120] SEGMENT...`
with segments `tone:HZ:SECONDS`, `speech:SECONDS`, `noise:SECONDS`, `sil:SECONDS`, `dtmf:DIGIT[:MS]`.
"""

from __future__ import annotations

import argparse
import math
import random
import struct
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

RATE = 8000
PTIME_MS = 20
SAMPLES_PER_PACKET = RATE * PTIME_MS // 1000
CODEC_PT = {"PCMU": 0, "PCMA": 8}
DTMF_EVENTS = {**{str(d): d for d in range(10)}, "*": 10, "#": 11, "A": 12, "B": 13, "C": 14, "D": 15}
END_REPEATS = 3  # RFC 4733 2.5.1.4: the end packet is sent three times
PCAP_MAGIC = 0xA1B2C3D4
LINKTYPE_ETHERNET = 1


# --- G.711 -----------------------------------------------------------------------------------------
# Encoders after the reference G.711 code (Sun's g711.c, the same as CPython's audioop had).
def _segment(value: int, ends: tuple[int, ...]) -> int:
    return next((seg for seg, end in enumerate(ends) if value <= end), len(ends))


_ULAW_ENDS = (0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF)
_ALAW_ENDS = (0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF)


def _ulaw(sample: int) -> int:
    value = sample >> 2  # 14-bit
    mask = 0xFF if value >= 0 else 0x7F
    magnitude = min(abs(value), 8159) + 0x21
    seg = _segment(magnitude, _ULAW_ENDS)
    if seg >= 8:
        return 0x7F ^ mask
    return ((seg << 4) | ((magnitude >> (seg + 1)) & 0x0F)) ^ mask


def _alaw(sample: int) -> int:
    value = sample >> 3  # 13-bit
    mask, magnitude = (0xD5, value) if value >= 0 else (0x55, -value - 1)
    seg = _segment(magnitude, _ALAW_ENDS)
    if seg >= 8:
        return 0x7F ^ mask
    shift = 1 if seg < 2 else seg
    return ((seg << 4) | ((magnitude >> shift) & 0x0F)) ^ mask


def _table(encode: Callable[[int], int]) -> bytes:
    # index = sample + 32768: one table lookup per sample instead of bit fiddling in the loop
    return bytes(encode(s) for s in range(-32768, 32768))


_TABLES: dict[str, bytes] = {}


def encode_g711(samples: Sequence[int], codec: str) -> bytes:
    if codec not in _TABLES:
        _TABLES[codec] = _table({"PCMU": _ulaw, "PCMA": _alaw}[codec])
    table = _TABLES[codec]
    return bytes(table[s + 32768] for s in samples)


def decode_g711(data: bytes, codec: str) -> list[int]:
    """Inverse of encode_g711 (nearest codeword value), for tests and level checks."""
    return [_DECODE[codec][b] for b in data]


def _decode_ulaw(code: int) -> int:
    code = ~code & 0xFF
    magnitude = (((code & 0x0F) << 3) + 0x84) << ((code >> 4) & 0x07)
    return -(magnitude - 0x84) if code & 0x80 else magnitude - 0x84


def _decode_alaw(code: int) -> int:
    code ^= 0x55
    exponent, mantissa = (code >> 4) & 0x07, code & 0x0F
    magnitude = (mantissa << 4) + 8 if exponent == 0 else ((mantissa << 4) + 0x108) << (exponent - 1)
    return magnitude if code & 0x80 else -magnitude


_DECODE = {"PCMU": [_decode_ulaw(c) for c in range(256)], "PCMA": [_decode_alaw(c) for c in range(256)]}


# --- audio segments --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Tone:
    hz: float
    seconds: float
    dbfs: float = -13.0

    def samples(self, start: int) -> list[int]:
        amp = 32767 * 10 ** (self.dbfs / 20)
        return [
            round(amp * math.sin(2 * math.pi * self.hz * (start + n) / RATE)) for n in _range(self.seconds)
        ]


@dataclass(frozen=True)
class Speech:
    """Speech-like sound: voiced syllables (a buzz with moving formant-ish harmonics) and short pauses."""

    seconds: float
    seed: int = 1
    dbfs: float = -16.0

    def samples(self, start: int) -> list[int]:
        rnd = random.Random(self.seed)
        amp = 32767 * 10 ** (self.dbfs / 20)
        out: list[int] = []
        total = len(_range(self.seconds))
        while len(out) < total:
            syllable = int(RATE * rnd.uniform(0.12, 0.3))
            pitch, formant = rnd.uniform(110, 220), rnd.uniform(500, 1500)
            for n in range(syllable):
                envelope = math.sin(math.pi * n / syllable)
                t = n / RATE
                value = math.sin(2 * math.pi * pitch * t) + 0.6 * math.sin(2 * math.pi * formant * t)
                out.append(round(amp * 0.6 * envelope * (value + 0.2 * rnd.uniform(-1, 1))))
            out.extend([0] * int(RATE * rnd.uniform(0.03, 0.12)))
        return out[:total]


@dataclass(frozen=True)
class Noise:
    seconds: float
    seed: int = 2
    dbfs: float = -20.0

    def samples(self, start: int) -> list[int]:
        rnd = random.Random(self.seed)
        amp = 32767 * 10 ** (self.dbfs / 20)
        return [round(amp * rnd.uniform(-1.0, 1.0)) for _ in _range(self.seconds)]


@dataclass(frozen=True)
class Silence:
    seconds: float

    def samples(self, start: int) -> list[int]:
        return [0] * len(_range(self.seconds))


@dataclass(frozen=True)
class Dtmf:
    """One RFC 4733 key press, followed by `gap_ms` of silence (receivers need a gap between digits)."""

    digit: str
    ms: int = 160
    gap_ms: int = 100
    volume: int = 10

    def __post_init__(self) -> None:
        if self.digit not in DTMF_EVENTS:
            raise ValueError(f"not a DTMF digit: {self.digit!r}")
        if self.ms < PTIME_MS:
            raise ValueError("a DTMF event lasts at least one packet (20 ms)")


@dataclass(frozen=True)
class Recording:
    """A recorded voice (a WAV file) as a telephone carries it: 8 kHz, 300-3 400 Hz."""

    path: str

    def samples(self, start: int) -> list[int]:
        from callcenter.asr.bench import phone_channel
        from callcenter.asr.transcriber import read_channel

        rate, audio, _ = read_channel(Path(self.path))
        phone = phone_channel(audio, rate)[0].tolist()
        frames = len(_range(len(phone) / RATE))
        return (phone + [0] * frames)[:frames]


Segment = Tone | Speech | Noise | Silence | Dtmf | Recording


def _range(seconds: float) -> range:
    # whole packets only: a segment always fills complete 20 ms frames
    packets = max(1, round(seconds * 1000 / PTIME_MS))
    return range(packets * SAMPLES_PER_PACKET)


# --- RTP -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RtpPacket:
    time: float  # seconds since the start of the stream
    payload_type: int
    marker: bool
    seq: int
    timestamp: int
    ssrc: int
    payload: bytes

    def to_bytes(self) -> bytes:
        header = struct.pack(
            "!BBHII",
            0x80,
            (0x80 if self.marker else 0) | self.payload_type,
            self.seq & 0xFFFF,
            self.timestamp & 0xFFFFFFFF,
            self.ssrc,
        )
        return header + self.payload

    @classmethod
    def parse(cls, time: float, data: bytes) -> RtpPacket:
        if len(data) < 12 or data[0] >> 6 != 2:
            raise ValueError("not an RTP packet")
        _, second, seq, timestamp, ssrc = struct.unpack("!BBHII", data[:12])
        return cls(time, second & 0x7F, bool(second & 0x80), seq, timestamp, ssrc, data[12:])

    def dtmf_event(self) -> tuple[str, bool, int]:
        """(digit, end bit, duration in timestamp units) of an RFC 4733 event packet."""
        event, flags, duration = struct.unpack("!BBH", self.payload[:4])
        digit = next(d for d, code in DTMF_EVENTS.items() if code == event)
        return digit, bool(flags & 0x80), duration


class _Stream:
    """Numbers one RTP stream: sequence, RTP timestamp and send slot (20 ms each) advance together."""

    def __init__(self, codec: str, dtmf_pt: int, ssrc: int) -> None:
        if codec not in CODEC_PT:
            raise ValueError(f"codec must be PCMA or PCMU, not {codec!r}")
        self.codec, self.dtmf_pt, self.ssrc = codec, dtmf_pt, ssrc
        self.seq = random.Random(ssrc).randrange(1 << 15)
        self.ts = 0
        self.slot = 0
        self.talk_spurt_start = True

    def _packet(self, pt: int, marker: bool, timestamp: int, payload: bytes, same_slot: bool) -> RtpPacket:
        if same_slot:
            self.slot -= 1  # repeated end packets go out together with the first one
        pkt = RtpPacket(
            self.slot * PTIME_MS / 1000, pt, marker, self.seq & 0xFFFF, timestamp, self.ssrc, payload
        )
        self.seq += 1
        self.slot += 1
        return pkt

    def audio(self, samples: list[int]) -> Iterator[RtpPacket]:
        for offset in range(0, len(samples), SAMPLES_PER_PACKET):
            frame = samples[offset : offset + SAMPLES_PER_PACKET]
            payload = encode_g711(frame, self.codec)
            yield self._packet(CODEC_PT[self.codec], self.talk_spurt_start, self.ts, payload, False)
            self.talk_spurt_start = False
            self.ts += SAMPLES_PER_PACKET

    def event(self, dtmf: Dtmf) -> Iterator[RtpPacket]:
        # RFC 4733: every packet of one event carries the event's start timestamp and a growing duration.
        steps = dtmf.ms // PTIME_MS
        for step in range(1, steps + 1):
            last = step == steps
            flags = (0x80 if last else 0) | dtmf.volume
            payload = struct.pack("!BBH", DTMF_EVENTS[dtmf.digit], flags, step * SAMPLES_PER_PACKET)
            for repeat in range(END_REPEATS if last else 1):
                yield self._packet(self.dtmf_pt, step == 1, self.ts, payload, repeat > 0)
        self.ts += steps * SAMPLES_PER_PACKET
        self.talk_spurt_start = True
        if dtmf.gap_ms:
            yield from self.audio(Silence(dtmf.gap_ms / 1000).samples(0))


def rtp_stream(
    segments: Iterable[Segment], codec: str = "PCMA", dtmf_pt: int = 101, ssrc: int = 0x1234ABCD
) -> Iterator[RtpPacket]:
    """20 ms RTP packets for the segments, events and audio sharing one seq/timestamp space."""
    stream = _Stream(codec, dtmf_pt, ssrc)
    for segment in segments:
        if isinstance(segment, Dtmf):
            yield from stream.event(segment)
        else:
            yield from stream.audio(segment.samples(stream.ts))


# --- pcap ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Endpoints:
    """Addresses written into the frames; SIPp replaces them with the call's media addresses."""

    src: tuple[str, int] = ("127.0.0.1", 40000)
    dst: tuple[str, int] = ("127.0.0.1", 40002)


def _checksum(header: bytes) -> int:
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _frame(payload: bytes, ends: Endpoints, ident: int) -> bytes:
    udp = struct.pack("!HHHH", ends.src[1], ends.dst[1], 8 + len(payload), 0) + payload  # checksum 0: none
    src, dst = (bytes(int(p) for p in host.split(".")) for host in (ends.src[0], ends.dst[0]))
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0xB8, 20 + len(udp), ident & 0xFFFF, 0x4000, 64, 17, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
    ethernet = bytes.fromhex("020000000002020000000001") + struct.pack("!H", 0x0800)
    return ethernet + ip + udp


def write_pcap(path: Path, packets: Iterable[RtpPacket], ends: Endpoints = Endpoints()) -> int:
    """Write the packets as a pcap (Ethernet link type); returns how many were written."""
    count = 0
    with Path(path).open("wb") as out:
        out.write(struct.pack("<IHHiIII", PCAP_MAGIC, 2, 4, 0, 0, 65535, LINKTYPE_ETHERNET))
        for count, pkt in enumerate(packets, start=1):
            frame = _frame(pkt.to_bytes(), ends, count)
            micros = round(pkt.time * 1_000_000)
            out.write(struct.pack("<IIII", micros // 1_000_000, micros % 1_000_000, len(frame), len(frame)))
            out.write(frame)
    return count


def read_pcap(path: Path) -> list[RtpPacket]:
    """The RTP packets of a pcap written by write_pcap (Ethernet/IPv4/UDP), times relative to the first."""
    data = Path(path).read_bytes()
    magic, _, _, _, _, _, linktype = struct.unpack("<IHHiIII", data[:24])
    if magic != PCAP_MAGIC or linktype != LINKTYPE_ETHERNET:
        raise ValueError(f"{path}: not a little-endian Ethernet pcap")
    packets, offset, first = [], 24, None
    while offset < len(data):
        sec, usec, length, _ = struct.unpack("<IIII", data[offset : offset + 16])
        frame = data[offset + 16 : offset + 16 + length]
        offset += 16 + length
        when = sec + usec / 1_000_000
        first = when if first is None else first
        header_len = (frame[14] & 0x0F) * 4
        packets.append(RtpPacket.parse(when - first, frame[14 + header_len + 8 :]))
    return packets


# --- segment specs (command line and caches) -------------------------------------------------------
def parse_segment(spec: str) -> Segment:
    """`tone:HZ:SECONDS`, `speech:SECONDS`, `noise:SECONDS`, `sil:SECONDS`, `dtmf:DIGIT[:MS]`, `wav:PATH`."""
    kind, *args = spec.split(":")
    try:
        if kind == "tone":
            return Tone(float(args[0]), float(args[1]))
        if kind in ("speech", "noise", "sil"):
            return {"speech": Speech, "noise": Noise, "sil": Silence}[kind](float(args[0]))
        if kind == "wav":
            return Recording(spec.split(":", 1)[1])
        if kind == "dtmf":
            return Dtmf(args[0], int(args[1])) if len(args) > 1 else Dtmf(args[0])
    except (IndexError, ValueError) as exc:
        raise ValueError(f"bad segment {spec!r}: {exc}") from exc
    raise ValueError(f"unknown segment kind in {spec!r}")


def make_pcap(path: Path, specs: Sequence[str], codec: str = "PCMA", dtmf_pt: int = 101) -> int:
    return write_pcap(path, rtp_stream([parse_segment(s) for s in specs], codec, dtmf_pt))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write an RTP (G.711 + RFC 4733) pcap for SIPp")
    parser.add_argument("output", type=Path)
    parser.add_argument("segments", nargs="+", help="tone:HZ:S speech:S noise:S sil:S dtmf:D[:MS] wav:PATH")
    parser.add_argument("--codec", choices=sorted(CODEC_PT), default="PCMA")
    parser.add_argument("--dtmf-pt", type=int, default=101)
    args = parser.parse_args(argv)
    count = make_pcap(args.output, args.segments, args.codec, args.dtmf_pt)
    print(f"{args.output}: {count} packets")


if __name__ == "__main__":
    main()
