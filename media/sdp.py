"""SDP for one audio stream and the RFC 3264 offer/answer rules the engine needs.

`parse_sdp` reads a session description into `SessionDescription` (raising `ValueError` that
names the line), `SessionDescription.serialize` writes it back with CRLF line ends. The offer
and answer helpers know G.711 (PCMU/PCMA), G.722, telephone-event/8000 (RFC 4733), ptime 20 and the
direction attributes used for hold (RFC 3264 §5.1, §6.1, §8.4). The outcome of a negotiation
is a `NegotiatedMedia`: what to send, where to, and whether to send or receive at all.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from typing import Final

from media.codecs import ALL_CODECS, G722, PAYLOAD_TYPES
from media.g711 import PCMA, PCMU

TELEPHONE_EVENT: Final = "telephone-event"
DEFAULT_TELEPHONE_EVENT_PT: Final = 101
DEFAULT_PTIME: Final = 20
# G.722 is 16 kHz audio but its RTP clock (and rtpmap) says 8000 (RFC 3551 §4.5.2)
STATIC_PAYLOAD_TYPES: Final = {0: (PCMU, 8000), 8: (PCMA, 8000), 9: (G722, 8000)}


class Direction(enum.Enum):
    """RFC 3264 §5.1 stream directions, from the point of view of the SDP's author."""

    SENDRECV = "sendrecv"
    SENDONLY = "sendonly"
    RECVONLY = "recvonly"
    INACTIVE = "inactive"

    @property
    def sends(self) -> bool:
        return self in (Direction.SENDRECV, Direction.SENDONLY)

    @property
    def receives(self) -> bool:
        return self in (Direction.SENDRECV, Direction.RECVONLY)

    @classmethod
    def of(cls, sends: bool, receives: bool) -> Direction:
        if sends and receives:
            return cls.SENDRECV
        if sends:
            return cls.SENDONLY
        return cls.RECVONLY if receives else cls.INACTIVE

    def reversed(self) -> Direction:
        """The direction the answerer mirrors (RFC 3264 §6.1)."""
        return Direction.of(sends=self.receives, receives=self.sends)


@dataclass(frozen=True, slots=True)
class PayloadFormat:
    payload_type: int
    encoding: str
    clock_rate: int = 8000
    channels: int = 1
    fmtp: str | None = None

    def rtpmap(self) -> str:
        suffix = f"/{self.channels}" if self.channels != 1 else ""
        return f"{self.payload_type} {self.encoding}/{self.clock_rate}{suffix}"


@dataclass(frozen=True, slots=True)
class MediaDescription:
    """One m= section. ``connection`` is the section's c= address, if it has one."""

    media: str
    port: int
    protocol: str
    formats: tuple[PayloadFormat, ...]
    connection: str | None = None
    direction: Direction = Direction.SENDRECV
    ptime: int | None = None
    rtcp_port: int | None = None
    attributes: tuple[str, ...] = ()

    def format(self, payload_type: int) -> PayloadFormat | None:
        for payload_format in self.formats:
            if payload_format.payload_type == payload_type:
                return payload_format
        return None


@dataclass(frozen=True, slots=True)
class SessionDescription:
    origin_username: str
    session_id: int
    session_version: int
    origin_address: str
    connection: str | None
    media: tuple[MediaDescription, ...]
    session_name: str = "-"
    direction: Direction | None = None  # a session-level direction attribute, if any

    def audio(self) -> MediaDescription:
        """The first audio m= section; ValueError when there is none."""
        for description in self.media:
            if description.media == "audio":
                return description
        raise ValueError("SDP has no m=audio section")

    def serialize(self) -> str:
        lines = [
            "v=0",
            f"o={self.origin_username} {self.session_id} {self.session_version} IN "
            f"{_address_type(self.origin_address)} {self.origin_address}",
            f"s={self.session_name}",
        ]
        if self.connection is not None:
            lines.append(f"c=IN {_address_type(self.connection)} {self.connection}")
        lines.append("t=0 0")
        if self.direction is not None:
            lines.append(f"a={self.direction.value}")
        for description in self.media:
            lines.extend(_serialize_media(description))
        return "\r\n".join(lines) + "\r\n"


def _address_type(address: str) -> str:
    return "IP6" if ":" in address else "IP4"


def _serialize_media(description: MediaDescription) -> list[str]:
    pts = " ".join(str(f.payload_type) for f in description.formats)
    lines = [f"m={description.media} {description.port} {description.protocol} {pts}"]
    if description.connection is not None:
        lines.append(f"c=IN {_address_type(description.connection)} {description.connection}")
    for payload_format in description.formats:
        lines.append(f"a=rtpmap:{payload_format.rtpmap()}")
        if payload_format.fmtp is not None:
            lines.append(f"a=fmtp:{payload_format.payload_type} {payload_format.fmtp}")
    if description.ptime is not None:
        lines.append(f"a=ptime:{description.ptime}")
    if description.rtcp_port is not None:
        lines.append(f"a=rtcp:{description.rtcp_port}")
    lines.extend(f"a={attribute}" for attribute in description.attributes)
    lines.append(f"a={description.direction.value}")
    return lines


@dataclass(slots=True)
class _MediaBuilder:
    media: str
    port: int
    protocol: str
    payload_types: list[int]
    connection: str | None = None
    direction: Direction | None = None
    ptime: int | None = None
    rtcp_port: int | None = None
    rtpmaps: dict[int, tuple[str, int, int]] = field(default_factory=dict)
    fmtps: dict[int, str] = field(default_factory=dict)
    attributes: list[str] = field(default_factory=list)

    def build(self, session_direction: Direction | None) -> MediaDescription:
        formats = []
        for pt in self.payload_types:
            if pt in self.rtpmaps:
                encoding, rate, channels = self.rtpmaps[pt]
            elif pt in STATIC_PAYLOAD_TYPES:
                encoding, rate = STATIC_PAYLOAD_TYPES[pt]
                channels = 1
            else:
                encoding, rate, channels = "", 0, 1  # dynamic type without rtpmap: unusable
            formats.append(PayloadFormat(pt, encoding, rate, channels, self.fmtps.get(pt)))
        direction = self.direction or session_direction or Direction.SENDRECV
        return MediaDescription(
            self.media, self.port, self.protocol, tuple(formats), self.connection, direction,
            self.ptime, self.rtcp_port, tuple(self.attributes),
        )


def _parse_connection(value: str, number: int) -> str:
    parts = value.split()
    if len(parts) != 3 or parts[0] != "IN" or parts[1] not in ("IP4", "IP6"):
        raise ValueError(f"SDP line {number}: c= must be 'IN IP4|IP6 <address>', got {value!r}")
    return parts[2].split("/")[0]


def _parse_int(text: str, what: str, number: int) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"SDP line {number}: {what} must be an integer, got {text!r}") from None


def _parse_media_line(value: str, number: int) -> _MediaBuilder:
    parts = value.split()
    if len(parts) < 3:
        raise ValueError(f"SDP line {number}: m= needs media, port, proto, formats: {value!r}")
    port_text = parts[1].split("/")[0]
    port = _parse_int(port_text, "m= port", number)
    if not 0 <= port <= 65535:
        raise ValueError(f"SDP line {number}: m= port {port} out of range 0..65535")
    payload_types = []
    if parts[2].startswith("RTP/"):
        for text in parts[3:]:
            pt = _parse_int(text, "m= payload type", number)
            if not 0 <= pt <= 127:
                raise ValueError(f"SDP line {number}: payload type {pt} out of range 0..127")
            payload_types.append(pt)
    return _MediaBuilder(parts[0], port, parts[2], payload_types)


def _parse_media_attribute(builder: _MediaBuilder, name: str, value: str, number: int) -> None:
    if name == "rtpmap":
        pt_text, _, mapping = value.partition(" ")
        pieces = mapping.strip().split("/")
        if len(pieces) < 2:
            raise ValueError(f"SDP line {number}: rtpmap needs 'pt name/rate': {value!r}")
        channels = _parse_int(pieces[2], "rtpmap channels", number) if len(pieces) > 2 else 1
        builder.rtpmaps[_parse_int(pt_text, "rtpmap payload type", number)] = (
            pieces[0], _parse_int(pieces[1], "rtpmap clock rate", number), channels,
        )
    elif name == "fmtp":
        pt_text, _, parameters = value.partition(" ")
        builder.fmtps[_parse_int(pt_text, "fmtp payload type", number)] = parameters.strip()
    elif name == "ptime":
        builder.ptime = _parse_int(value.strip(), "ptime", number)
    elif name == "rtcp":
        builder.rtcp_port = _parse_int(value.split()[0] if value else "", "rtcp port", number)
    elif name in {d.value for d in Direction}:
        builder.direction = Direction(name)
    else:
        builder.attributes.append(f"{name}:{value}" if value else name)


def parse_sdp(text: str) -> SessionDescription:
    """Parse an SDP body; raise ValueError naming the line that is wrong."""
    origin: tuple[str, int, int, str] | None = None
    session_name = "-"
    connection: str | None = None
    session_direction: Direction | None = None
    builders: list[_MediaBuilder] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if len(line) < 2 or line[1] != "=":
            raise ValueError(f"SDP line {number}: expected '<type>=<value>', got {line!r}")
        kind, value = line[0], line[2:]
        if kind == "o":
            parts = value.split()
            if len(parts) != 6:
                raise ValueError(f"SDP line {number}: o= needs 6 fields, got {value!r}")
            origin = (
                parts[0], _parse_int(parts[1], "o= session id", number),
                _parse_int(parts[2], "o= session version", number), parts[5],
            )
        elif kind == "s":
            session_name = value
        elif kind == "c":
            address = _parse_connection(value, number)
            if builders:
                builders[-1].connection = address
            else:
                connection = address
        elif kind == "m":
            builders.append(_parse_media_line(value, number))
        elif kind == "a":
            name, _, attribute_value = value.partition(":")
            if builders:
                _parse_media_attribute(builders[-1], name, attribute_value, number)
            elif name in {d.value for d in Direction}:
                session_direction = Direction(name)
    if origin is None:
        raise ValueError("SDP has no o= line")
    media = tuple(builder.build(session_direction) for builder in builders)
    for index, description in enumerate(media):
        if description.connection is None and connection is None and description.port:
            raise ValueError(f"SDP m= section {index + 1} has no c= line and no session c=")
    return SessionDescription(
        origin[0], origin[1], origin[2], origin[3], connection, media, session_name,
        session_direction,
    )


@dataclass(frozen=True, slots=True)
class NegotiatedMedia:
    """What an offer/answer exchange settled for the audio stream, from our side."""

    codec: str
    payload_type: int
    telephone_event_pt: int | None
    remote_address: str | None
    remote_port: int
    remote_rtcp_port: int
    send: bool
    receive: bool
    ptime: int = DEFAULT_PTIME

    @property
    def on_hold(self) -> bool:
        return not self.send


def _local_formats(codecs: tuple[str, ...], telephone_event_pt: int | None) -> list[PayloadFormat]:
    formats = []
    for codec in codecs:
        if codec not in PAYLOAD_TYPES:
            raise ValueError(f"unsupported codec {codec!r}: expected one of {ALL_CODECS}")
        formats.append(PayloadFormat(PAYLOAD_TYPES[codec], codec))
    if telephone_event_pt is not None:
        formats.append(PayloadFormat(telephone_event_pt, TELEPHONE_EVENT, fmtp="0-16"))
    return formats


def create_offer(
    address: str, port: int, *, session_id: int, version: int = 1,
    codecs: tuple[str, ...] = (PCMU, PCMA),
    telephone_event_pt: int | None = DEFAULT_TELEPHONE_EVENT_PT,
    direction: Direction = Direction.SENDRECV,
) -> SessionDescription:
    """Our offer for one audio stream (RFC 3264 §5)."""
    media = MediaDescription(
        "audio", port, "RTP/AVP", tuple(_local_formats(codecs, telephone_event_pt)),
        direction=direction, ptime=DEFAULT_PTIME,
    )
    return SessionDescription("-", session_id, version, address, address, (media,))


def _remote_endpoint(
    session: SessionDescription, media: MediaDescription
) -> tuple[str | None, int]:
    address = media.connection or session.connection
    # RFC 3264 §8.4: the old-style hold address means "do not send"
    if address in ("0.0.0.0", "::") or media.port == 0:
        return None, media.port
    return address, media.port


def _pick_codec(offered: MediaDescription, supported: tuple[str, ...]) -> PayloadFormat | None:
    for payload_format in offered.formats:
        if payload_format.encoding.upper() in supported and payload_format.clock_rate == 8000:
            return payload_format
    return None


def _pick_telephone_event(description: MediaDescription) -> PayloadFormat | None:
    for payload_format in description.formats:
        if payload_format.encoding.lower() == TELEPHONE_EVENT and payload_format.clock_rate == 8000:
            return payload_format
    return None


def create_answer(
    offer: SessionDescription, address: str, port: int, *, session_id: int, version: int = 1,
    codecs: tuple[str, ...] = (PCMU, PCMA), direction: Direction = Direction.SENDRECV,
) -> tuple[SessionDescription, NegotiatedMedia]:
    """Answer an offer (RFC 3264 §6): first offered codec we support, mirrored direction.

    Raises ValueError when the offer has no audio stream or no codec in common (the caller
    answers 488 Not Acceptable Here).
    """
    offered = offer.audio()
    chosen = _pick_codec(offered, codecs)
    if chosen is None:
        names = ", ".join(f.encoding or str(f.payload_type) for f in offered.formats)
        raise ValueError(f"no common audio codec: offer has {names}, we support {codecs}")
    event = _pick_telephone_event(offered)
    answer_direction = Direction.of(
        sends=direction.sends and offered.direction.receives,
        receives=direction.receives and offered.direction.sends,
    )
    remote_address, remote_port = _remote_endpoint(offer, offered)
    formats = [PayloadFormat(chosen.payload_type, chosen.encoding.upper())]
    if event is not None:
        formats.append(replace(event, fmtp=event.fmtp or "0-16"))
    media = MediaDescription(
        "audio", port, offered.protocol, tuple(formats), direction=answer_direction,
        ptime=offered.ptime or DEFAULT_PTIME,
    )
    answer = SessionDescription("-", session_id, version, address, address, (media,))
    negotiated = NegotiatedMedia(
        codec=chosen.encoding.upper(),
        payload_type=chosen.payload_type,
        telephone_event_pt=event.payload_type if event else None,
        remote_address=remote_address,
        remote_port=remote_port,
        remote_rtcp_port=offered.rtcp_port or remote_port + 1,
        send=answer_direction.sends and remote_address is not None,
        receive=answer_direction.receives,
        ptime=offered.ptime or DEFAULT_PTIME,
    )
    return answer, negotiated


def accept_answer(offer: SessionDescription, answer: SessionDescription) -> NegotiatedMedia:
    """What our offer and the peer's answer settle (RFC 3264 §7); ValueError if unusable."""
    answered = answer.audio()
    if answered.port == 0:
        raise ValueError("the answer rejected the audio stream (port 0)")
    ours = offer.audio()
    offered_codecs = tuple(f.encoding for f in ours.formats if f.encoding in ALL_CODECS)
    chosen = _pick_codec(answered, offered_codecs)
    if chosen is None:
        raise ValueError("the answer selected no codec from our offer")
    event = _pick_telephone_event(answered)
    remote_address, remote_port = _remote_endpoint(answer, answered)
    return NegotiatedMedia(
        codec=chosen.encoding.upper(),
        payload_type=chosen.payload_type,
        telephone_event_pt=event.payload_type if event else None,
        remote_address=remote_address,
        remote_port=remote_port,
        remote_rtcp_port=answered.rtcp_port or remote_port + 1,
        send=ours.direction.sends and answered.direction.receives and remote_address is not None,
        receive=ours.direction.receives and answered.direction.sends,
        ptime=answered.ptime or DEFAULT_PTIME,
    )
