"""One RTP media session, sans-IO: SDP state, latching, playback, bridging, DTMF, RTCP.

Theory of operation
-------------------
A `MediaSession` is driven by three inputs and never reads a clock or touches a socket:

* ``receive_rtp(data, addr, now)`` and ``receive_rtcp(data, addr, now)`` when datagrams arrive;
* ``tick(now)`` once per 20 ms from the engine's single media clock. It returns the one RTP
  packet due in this slot (or None) for the engine to send to ``remote_rtp``;
* commands: ``apply_remote_description``, ``play``, ``insert``, ``stop_playback``,
  ``send_dtmf``, bridging through ``peer``.

What it reports goes into ``events`` (typed dataclasses from `media.events`) for the engine to
drain, and into ``stats`` (counters, never reset).

Symmetric RTP (RFC 4961 in spirit, "latching" in SBC parlance): until the first valid packet
arrives we send to the address in the peer's SDP. The first packet that parses and carries a
negotiated payload type latches the session to its source address; from then on we send there
and packets from any other address are counted as ``foreign_source`` and dropped. A new remote
SDP with a different c=/m= unlatches.

A bridged session forwards each received audio payload (transcoded PCMU⇄PCMA when the two legs
differ) into its peer's `FrameQueue`; the peer sends one queued frame per tick, so both legs
stay on the media clock. A session may also mix PCM from other sessions into what it sends
(``mix_in``: a supervisor listening to a call, whispering to the agent or barging in; the
wiring is `media.monitor`'s). Telephone-events are relayed as RFC 4733 on the other leg with its own
payload type, sequence numbers and timestamps.

Playback has one current player, pulled once per tick. ``play`` replaces everything that plays.
``insert`` plays a short source *over* the current one: the current playback is parked as it
stands (its player simply is not pulled, so a hold program keeps its music position, its
announcement/ad rotation and its time to the next insert), the insert plays, and the parked
playback resumes in the tick the insert ends, with no event of its own. Inserts arriving while
one plays queue behind it, first come first played. Every insert reports `PlaybackFinished`
when it ends; a stop (or close, or ``play``) ends the running insert, the queued ones and the
parked playback, each with its own event.
"""

from __future__ import annotations

import enum
import random
import struct
from collections import deque
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from media import codecs, g711, rtcp
from media.codecs import G722, G722State
from media.dtmf import (
    DIGITS,
    InBandDetector,
    TelephoneEvent,
    TelephoneEventReceiver,
    TelephoneEventSender,
    dtmf_tone,
)
from media.events import (
    DtmfDetected,
    DtmfMethod,
    MediaEvent,
    PlaybackEnd,
    PlaybackFinished,
    RtpStarted,
    RtpTimedOut,
)
from media.mixer import FrameQueue, mix
from media.rtp import ReceptionStatistics, RtpPacket, RtpStream
from media.sdp import (
    Direction,
    NegotiatedMedia,
    SessionDescription,
    accept_answer,
    create_answer,
    create_offer,
    parse_sdp,
)
from media.sources import Player

SAMPLE_RATE: Final = 8000
FRAME_SAMPLES: Final = 160
TICK_S: Final = 0.02
_PLAIN_HEADER: Final = struct.Struct("!BBHII")
_STATIC_AUDIO: Final = {0: g711.PCMU, 8: g711.PCMA}
_INTER_DIGIT_TICKS: Final = 3  # 60 ms between generated digits

Int16Array = npt.NDArray[np.int16]
Address = tuple[str, int]


class InbandDtmf(enum.Enum):
    """When to run the Goertzel detector on received audio."""

    AUTO = "auto"  # only when the peer did not negotiate telephone-event
    ALWAYS = "always"
    NEVER = "never"


class SdpState(enum.Enum):
    IDLE = "idle"  # nothing exchanged yet
    OFFER_SENT = "offer_sent"  # we offered, waiting for the answer
    NEGOTIATED = "negotiated"


@dataclass(frozen=True, slots=True)
class SessionSettings:
    codecs: tuple[str, ...] = (g711.PCMU, g711.PCMA)
    telephone_event_pt: int = 101
    rtp_timeout_s: float = 30.0  # 0 disables the inactivity timeout
    rtcp_interval_s: float = 5.0  # RFC 3550 §6.2 minimum
    inband_dtmf: InbandDtmf = InbandDtmf.AUTO
    send_silence_when_idle: bool = True
    bridge_buffer_frames: int = 3
    cname: str = "pbx-media"


@dataclass(slots=True)
class SessionStats:
    """Counters of one session (cumulative). Engine-wide stats are their sums."""

    packets_in: int = 0
    octets_in: int = 0
    packets_out: int = 0
    octets_out: int = 0
    malformed: int = 0
    foreign_source: int = 0
    unknown_payload_type: int = 0
    duplicates: int = 0
    ssrc_changes: int = 0
    packets_lost: int = 0
    rtcp_in: int = 0
    rtcp_out: int = 0
    rtcp_malformed: int = 0
    rtcp_foreign_source: int = 0
    bridge_dropped: int = 0
    bridge_underruns: int = 0
    ticks_skipped: int = 0
    dtmf_received: int = 0
    dtmf_sent: int = 0
    timeouts: int = 0
    jitter_ms: float = 0.0
    round_trip_ms: float | None = None


@dataclass(slots=True)
class _Playback:
    player: Player
    playback_id: str
    barge_in: bool
    insert: bool = False  # started by `insert`: a later insert queues behind it


@dataclass(slots=True)
class _OutgoingEvent:
    payload: bytes
    marker: bool
    timestamp: int


@dataclass(slots=True)
class _RelayedEvent:
    # maps the source leg's event timestamp onto ours, so updates keep one event together
    source_timestamp: int
    timestamp: int


class MediaSession:
    """One RTP/RTCP endpoint pair (sans-IO). See the module docstring.

    Raises ValueError from `apply_remote_description` for an SDP that can't be used (the call
    layer answers 488); never raises for bad packets, which are counted and dropped.
    """

    def __init__(
        self, session_id: str, local_address: str, rtp_port: int, *, ssrc: int,
        sequence_number: int, timestamp: int, now: float, rng: random.Random,
        settings: SessionSettings | None = None, sdp_session_id: int = 0,
    ) -> None:
        self.session_id = session_id
        self.local_address = local_address
        self.rtp_port = rtp_port
        self.settings = settings or SessionSettings()
        self.stats = SessionStats()
        self.events: list[MediaEvent] = []
        self.stream = RtpStream(ssrc, sequence_number, timestamp)
        self.peer: MediaSession | None = None
        self.rx_taps: list[FrameQueue[Int16Array]] = []
        self.tx_taps: list[FrameQueue[Int16Array]] = []
        # PCM frames summed into what this session sends (a supervisor listening, whispering
        # or barging in: `media.monitor`); one frame popped from each per tick
        self.mix_in: list[FrameQueue[Int16Array]] = []
        self.sdp_state = SdpState.IDLE
        self.negotiated: NegotiatedMedia | None = None
        self.closed = False
        self._rng = rng
        self._sdp_session_id = sdp_session_id or rng.randrange(1, 1 << 31)
        self._sdp_version = 0
        self._local_offer: SessionDescription | None = None
        self._local_description = ""
        self._audio_pts: dict[int, str] = dict(_STATIC_AUDIO)
        self._event_pt: int | None = self.settings.telephone_event_pt
        self._latched: Address | None = None
        self._rtcp_latched: Address | None = None
        self._remote_ssrc: int | None = None
        self._reception: ReceptionStatistics | None = None
        self._last_rx = now
        self._timed_out = False
        self._was_sending_audio = False
        self._playback: _Playback | None = None
        self._queued_inserts: deque[_Playback] = deque()
        self._paused: _Playback | None = None  # parked by an insert, resumes after it
        self._bridge_in: FrameQueue[bytes] = FrameQueue(self.settings.bridge_buffer_frames)
        self._receiver = TelephoneEventReceiver()
        self._detector: InBandDetector | None = None
        self._digits_to_send: deque[str] = deque()
        self._dtmf_duration_ms = 100
        self._sender: TelephoneEventSender | None = None
        self._sender_timestamp = 0
        self._gap_ticks = 0
        self._outgoing_events: deque[_OutgoingEvent] = deque()
        self._relayed: _RelayedEvent | None = None
        self._tone_frames: deque[bytes] = deque()
        self._next_rtcp = now + self._rtcp_interval()
        self._timeout_s = self.settings.rtp_timeout_s or float("inf")
        self._silence = codecs.silence_frame(self.settings.codecs[0])
        self._g722: G722State | None = None  # created when G.722 is first coded
        self._sr_sent: dict[int, float] = {}
        self._last_sr: tuple[int, float] | None = None  # (LSR middle 32 bits, received at)
        self._packets_at_last_report = 0

    # ------------------------------------------------------------------ SDP

    @property
    def codec(self) -> str:
        return self.negotiated.codec if self.negotiated else self.settings.codecs[0]

    @property
    def local_description(self) -> str:
        return self._local_description

    def create_offer(self, direction: Direction = Direction.SENDRECV) -> str:
        """Our SDP offer (initial, or a re-offer e.g. for hold); the answer goes to
        `apply_remote_description`."""
        self._sdp_version += 1
        offer = create_offer(
            self.local_address, self.rtp_port, session_id=self._sdp_session_id,
            version=self._sdp_version, codecs=self.settings.codecs,
            telephone_event_pt=self.settings.telephone_event_pt, direction=direction,
        )
        self._local_offer = offer
        self.sdp_state = SdpState.OFFER_SENT
        self._local_description = offer.serialize()
        return self._local_description

    def apply_remote_description(self, text: str, now: float) -> str:
        """Take the peer's SDP: an answer to our offer, or a new offer (returns our answer).

        Returns the local SDP now in force. Raises ValueError for unusable SDP, leaving the
        session as it was.
        """
        remote = parse_sdp(text)
        if self.sdp_state is SdpState.OFFER_SENT and self._local_offer is not None:
            negotiated = accept_answer(self._local_offer, remote)
        else:
            self._sdp_version += 1
            answer, negotiated = create_answer(
                remote, self.local_address, self.rtp_port, session_id=self._sdp_session_id,
                version=self._sdp_version, codecs=self.settings.codecs,
            )
            self._local_description = answer.serialize()
        self._apply_negotiated(negotiated, now)
        self.sdp_state = SdpState.NEGOTIATED
        self._local_offer = None
        return self._local_description

    def _apply_negotiated(self, negotiated: NegotiatedMedia, now: float) -> None:
        previous = self.negotiated
        self.negotiated = negotiated
        self._audio_pts = {negotiated.payload_type: negotiated.codec}
        self._silence = codecs.silence_frame(negotiated.codec)
        self._audio_pts.update(_STATIC_AUDIO)
        self._event_pt = negotiated.telephone_event_pt
        if previous is None or (previous.remote_address, previous.remote_port) != (
            negotiated.remote_address, negotiated.remote_port,
        ):
            # RFC 3264 §8.3.1: new c=/m= means a new source may appear; latch afresh
            self._latched = None
            self._rtcp_latched = None
            self._last_rx = now
            self._timed_out = False
        mode = self.settings.inband_dtmf
        wants_detector = mode is InbandDtmf.ALWAYS or (
            mode is InbandDtmf.AUTO and negotiated.telephone_event_pt is None
        )
        if wants_detector and self._detector is None:
            self._detector = InBandDetector()
        elif not wants_detector:
            self._detector = None
        if previous is not None and previous.codec != negotiated.codec and self.peer:
            self._bridge_in.clear()

    @property
    def remote_rtp(self) -> Address | None:
        if self._latched is not None:
            return self._latched
        if self.negotiated is None or self.negotiated.remote_address is None:
            return None
        return (self.negotiated.remote_address, self.negotiated.remote_port)

    @property
    def remote_rtcp(self) -> Address | None:
        if self._rtcp_latched is not None:
            return self._rtcp_latched
        if self.negotiated is None or self.negotiated.remote_address is None:
            return None
        host = self._latched[0] if self._latched else self.negotiated.remote_address
        return (host, self.negotiated.remote_rtcp_port)

    @property
    def sending(self) -> bool:
        return self.negotiated is not None and self.negotiated.send and not self.closed

    # ------------------------------------------------------------------ commands

    def play(self, player: Player, playback_id: str, barge_in: bool = False) -> None:
        """Start a playback; what plays (an insert, the inserts queued behind it and the
        playback it paused) ends with ``REPLACED``."""
        self._finish_all(PlaybackEnd.REPLACED)
        self._playback = _Playback(player, playback_id, barge_in)

    def insert(self, player: Player, playback_id: str, barge_in: bool = False) -> None:
        """Play ``player`` over the running playback, which pauses where it stands and
        resumes when the insert ends (see the module docstring). With nothing playing this is
        `play`; while an insert plays, this one queues behind it. ``barge_in``: a digit ends
        this insert (``BARGE_IN``) and what waits behind it goes on."""
        playback = _Playback(player, playback_id, barge_in, insert=True)
        current = self._playback
        if current is None:
            self._playback = playback
        elif current.insert:
            self._queued_inserts.append(playback)
        else:
            self._paused = current
            self._playback = playback

    def stop_playback(self, reason: PlaybackEnd = PlaybackEnd.STOPPED) -> bool:
        """End the running playback, the inserts queued behind it and the playback it paused,
        reporting each; True when anything was playing."""
        return self._finish_all(reason)

    @property
    def playing(self) -> str | None:
        """The playback id whose frames are sent now (an insert while one plays)."""
        return self._playback.playback_id if self._playback else None

    @property
    def paused(self) -> str | None:
        """The playback id an insert paused, which resumes after the inserts."""
        return self._paused.playback_id if self._paused else None

    def send_dtmf(self, digits: str, duration_ms: int = 100) -> None:
        """Queue digits to send as RFC 4733 events (in-band tones if the peer has none)."""
        for digit in digits:
            if digit.upper() not in DIGITS:
                raise ValueError(f"not a DTMF digit: {digit!r}, expected one of {DIGITS}")
        if duration_ms < 40:
            raise ValueError(f"DTMF duration {duration_ms} ms: at least 40 ms are needed")
        self._dtmf_duration_ms = duration_ms
        self._digits_to_send.extend(digits.upper())

    def close(self) -> None:
        if self.closed:
            return
        self.stop_playback(PlaybackEnd.CLOSED)
        self.closed = True
        self.peer = None

    def _finish_playback(self, reason: PlaybackEnd) -> None:
        # ends the current playback; the next queued insert, else the paused one, takes over
        playback = self._playback
        if playback is None:
            return
        self.events.append(PlaybackFinished(self.session_id, playback.playback_id, reason))
        if self._queued_inserts:
            self._playback = self._queued_inserts.popleft()
        else:
            self._playback = self._paused
            self._paused = None

    def _finish_all(self, reason: PlaybackEnd) -> bool:
        # the insert first, then the queued ones in order, the paused playback last
        if self._playback is None:
            return False
        while self._playback is not None:
            self._finish_playback(reason)
        return True

    def _complete_playback(self) -> bytes | None:
        # the current player ran out: it completes, and the one behind it (queued insert or
        # resumed playback) supplies this tick's frame, so no gap is heard between them
        frame = None
        while frame is None:
            self._finish_playback(PlaybackEnd.COMPLETED)
            playback = self._playback
            if playback is None:
                return None
            frame = playback.player.next_frame()
        return frame

    # ------------------------------------------------------------------ receiving

    def receive_rtp(self, data: bytes, addr: Address, now: float) -> None:
        """Take one datagram from the RTP socket; bad ones are counted and dropped."""
        stats = self.stats
        stats.packets_in += 1
        stats.octets_in += len(data)
        if self.closed:
            return
        if len(data) >= 12 and data[0] == 0x80:
            # fast path: plain header, no CSRC, extension or padding
            _, second, seq, timestamp, ssrc = _PLAIN_HEADER.unpack_from(data)
            payload_type = second & 0x7F
            payload = data[12:]
            if 72 <= payload_type <= 76 and second & 0x80:
                stats.malformed += 1  # RTCP on the RTP port
                return
        else:
            try:
                packet = RtpPacket.parse(data)
            except ValueError:
                stats.malformed += 1
                return
            payload_type, seq, timestamp, ssrc = (
                packet.payload_type, packet.sequence_number, packet.timestamp, packet.ssrc,
            )
            payload = packet.payload
        codec = self._audio_pts.get(payload_type)
        is_event = payload_type == self._event_pt and payload_type is not None
        if codec is None and not is_event:
            stats.unknown_payload_type += 1
            return
        if self._latched != addr:
            if self._latched is not None:
                stats.foreign_source += 1
                return
            self._latched = addr
            self.events.append(RtpStarted(self.session_id, addr[0], addr[1]))
        elif self._timed_out:
            self.events.append(RtpStarted(self.session_id, addr[0], addr[1]))
        self._timed_out = False
        if ssrc != self._remote_ssrc:
            if self._remote_ssrc is not None:
                stats.ssrc_changes += 1
            self._remote_ssrc = ssrc
            self._reception = ReceptionStatistics(ssrc)
        reception = self._reception
        assert reception is not None
        if not reception.update(seq, timestamp, int(now * SAMPLE_RATE)):
            stats.duplicates += 1
            return
        self._last_rx = now
        if is_event:
            self._receive_event(payload, timestamp)
        elif codec is not None:
            peer = self.peer
            if peer is not None and not self.rx_taps and self._detector is None:
                # the bridge's common case, inline: hand the payload to the other leg
                negotiated = peer.negotiated
                if negotiated is not None and negotiated.codec == codec:
                    peer._bridge_in.push(payload)
                    return
            self._receive_audio(payload, codec)

    def _receive_audio(self, payload: bytes, codec: str) -> None:
        peer = self.peer
        pcm: Int16Array | None = None
        if peer is not None:
            peer_codec = peer.codec
            if codec == peer_codec:
                frame = payload
            elif G722 not in (codec, peer_codec):
                frame = g711.transcode(payload, codec, peer_codec)
            else:  # G.722 on one side: through 8 kHz PCM
                pcm = self._decode(codec, payload)
                frame = peer._encode(pcm)
            peer._bridge_in.push(frame)
        if self.rx_taps or self._detector is not None:
            if pcm is None:
                pcm = self._decode(codec, payload)
            for tap in self.rx_taps:
                tap.push(pcm)
            if self._detector is not None:
                for digit in self._detector.feed(pcm):
                    self._digit_detected(digit, DtmfMethod.INBAND)

    def _receive_event(self, payload: bytes, timestamp: int) -> None:
        try:
            event = TelephoneEvent.parse(payload)
        except ValueError:
            self.stats.malformed += 1
            return
        digit = self._receiver.receive(event, timestamp)
        if digit is not None:
            self._digit_detected(digit, DtmfMethod.RFC4733)
        if self.peer is not None:
            self.peer._relay_event(event, timestamp, digit is not None)

    def _digit_detected(self, digit: str, method: DtmfMethod) -> None:
        self.stats.dtmf_received += 1
        self.events.append(DtmfDetected(self.session_id, digit, method))
        if self._playback is not None and self._playback.barge_in:
            self._finish_playback(PlaybackEnd.BARGE_IN)

    def _relay_event(self, event: TelephoneEvent, source_timestamp: int, new: bool) -> None:
        # RFC 4733 on the other leg: same event, our payload type, our clock
        if self._event_pt is None:
            if new:
                self._queue_tone(DIGITS[event.event], 100)
            return
        relayed = self._relayed
        marker = False
        if relayed is None or relayed.source_timestamp != source_timestamp:
            if not new:
                return  # the tail of an event we never started (e.g. bridged mid-press)
            relayed = _RelayedEvent(source_timestamp, self.stream.timestamp)
            self._relayed = relayed
            marker = True
        self._outgoing_events.append(_OutgoingEvent(event.serialize(), marker, relayed.timestamp))

    def receive_rtcp(self, data: bytes, addr: Address, now: float) -> None:
        """Take one datagram from the RTCP socket; bad ones are counted and dropped."""
        self.stats.rtcp_in += 1
        try:
            packets = rtcp.parse_compound(data)
        except ValueError:
            self.stats.rtcp_malformed += 1
            return
        if self._rtcp_latched is None:
            if self._latched is not None and addr[0] != self._latched[0]:
                self.stats.rtcp_foreign_source += 1
                return
            self._rtcp_latched = addr
        elif addr != self._rtcp_latched:
            self.stats.rtcp_foreign_source += 1
            return
        for packet in packets:
            if isinstance(packet, rtcp.SenderReport):
                self._last_sr = (rtcp.ntp_middle_32(packet.ntp_timestamp), now)
            if isinstance(packet, rtcp.SenderReport | rtcp.ReceiverReport):
                for block in packet.reports:
                    if block.ssrc == self.stream.ssrc:
                        self._update_round_trip(block, now)

    def _update_round_trip(self, block: rtcp.ReportBlock, now: float) -> None:
        # RFC 3550 §6.4.1: RTT = A - LSR - DLSR, with A measured on our own clock
        sent_at = self._sr_sent.get(block.last_sr)
        if block.last_sr and sent_at is not None:
            rtt = now - sent_at - block.delay_since_last_sr / 65536
            self.stats.round_trip_ms = max(0.0, rtt * 1000)

    # ------------------------------------------------------------------ the media clock

    def tick(self, now: float) -> bytes | None:
        """The RTP packet due in this 20 ms slot, or None; advances the media timestamp."""
        if self.closed:
            return None
        if now - self._last_rx >= self._timeout_s:
            self._check_timeout(now)
        negotiated = self.negotiated
        if (
            self._playback is None
            and negotiated is not None
            and negotiated.send
            and not (self._outgoing_events or self._tone_frames or self.tx_taps or self.mix_in)
            and self._sender is None
            and not (self._digits_to_send or self._gap_ticks)
        ):
            # the common case, inline: a bridged frame, or silence, or nothing
            frame = self._bridge_in.pop() if self.peer is not None else None
            if frame is None:
                if not self.settings.send_silence_when_idle:
                    self._was_sending_audio = False
                    self.stream.advance(FRAME_SAMPLES)
                    return None
                frame = self._silence
            marker = not self._was_sending_audio
            self._was_sending_audio = True
            stats = self.stats
            stats.packets_out += 1
            stats.octets_out += len(frame)
            return self.stream.next_frame(negotiated.payload_type, frame, marker, FRAME_SAMPLES)
        return self._tick_general(now)

    def _tick_general(self, now: float) -> bytes | None:
        packet = self._next_event_packet()
        if packet is None:
            packet = self._next_audio_packet()
        else:
            self._was_sending_audio = False
        self.stream.advance(FRAME_SAMPLES)
        if packet is not None and self.sending:
            self.stats.packets_out += 1
            self.stats.octets_out += len(packet) - 12
            return packet
        return None

    def skip_ticks(self, count: int) -> None:
        """The clock fell too far behind: account for ``count`` slots sent nothing."""
        self.stats.ticks_skipped += count
        self.stream.advance(FRAME_SAMPLES * count)
        for _ in range(count):
            if self._playback is not None and self._playback.player.next_frame() is None:
                self._complete_playback()
        self._was_sending_audio = False

    def _next_event_packet(self) -> bytes | None:
        if self._outgoing_events:
            event = self._outgoing_events.popleft()
            return self.stream.next_packet(
                self._event_pt or 0, event.payload, event.marker, event.timestamp
            )
        if self._sender is None:
            if self._gap_ticks > 0:
                self._gap_ticks -= 1
                return None
            if not self._digits_to_send:
                return None
            digit = self._digits_to_send.popleft()
            self.stats.dtmf_sent += 1
            if self._event_pt is None:
                self._queue_tone(digit, self._dtmf_duration_ms)
                self._gap_ticks = _INTER_DIGIT_TICKS + len(self._tone_frames)
                return None
            self._sender = TelephoneEventSender(digit, self._dtmf_duration_ms)
            self._sender_timestamp = self.stream.timestamp
        next_event = self._sender.next_packet()
        if next_event is None:
            self._sender = None
            self._gap_ticks = _INTER_DIGIT_TICKS
            return None
        return self.stream.next_packet(
            self._event_pt or 0, next_event.payload, next_event.marker, self._sender_timestamp
        )

    def _queue_tone(self, digit: str, duration_ms: int) -> None:
        samples = dtmf_tone(digit, duration_ms / 1000, amplitude=5000.0)
        samples = np.concatenate((samples, np.zeros(-len(samples) % FRAME_SAMPLES)))
        frames = self._encode(samples)
        for start in range(0, len(frames), FRAME_SAMPLES):
            self._tone_frames.append(frames[start : start + FRAME_SAMPLES])

    def _next_audio_packet(self) -> bytes | None:
        frame: bytes | None = None
        if self._tone_frames:
            frame = self._tone_frames.popleft()
        playback = self._playback
        if playback is not None:
            played = playback.player.next_frame()
            if played is None:
                played = self._complete_playback()
            if frame is None:
                frame = played
        if frame is None and self.peer is not None:
            frame = self._bridge_in.pop()
        if self.mix_in:
            frame = self._mix_into(frame)
        if frame is None:
            if not self.settings.send_silence_when_idle:
                self._was_sending_audio = False
                return None
            frame = self._silence
        elif self.tx_taps:
            pcm = self._decode_sent(frame)
            for tap in self.tx_taps:
                tap.push(pcm)
        marker = not self._was_sending_audio
        self._was_sending_audio = True
        payload_type = self.negotiated.payload_type if self.negotiated else 0
        return self.stream.next_packet(payload_type, frame, marker)

    def _mix_into(self, frame: bytes | None) -> bytes | None:
        # one frame from each mixed-in source, summed (saturating) with what we send anyway
        extra = [queue.pop() for queue in self.mix_in]
        if all(pcm is None for pcm in extra):
            return frame
        own = self._decode_sent(frame) if frame is not None else None
        return self._encode(mix(own, *extra))

    # ------------------------------------------------------------------ codecs

    def _g722_state(self) -> G722State:
        if self._g722 is None:
            self._g722 = G722State()
        return self._g722

    def _decode(self, codec: str, payload: bytes) -> Int16Array:
        """A received payload → 8 kHz PCM."""
        if codec == G722:
            return self._g722_state().decode(payload)
        return g711.decode(codec, payload)

    def _decode_sent(self, payload: bytes) -> Int16Array:
        """A payload we send → 8 kHz PCM (recordings of the sent side)."""
        codec = self.codec
        if codec == G722:
            return self._g722_state().decode_sent(payload)
        return g711.decode(codec, payload)

    def _encode(self, pcm: npt.ArrayLike) -> bytes:
        """8 kHz PCM → payload in the codec we send."""
        codec = self.codec
        if codec == G722:
            return self._g722_state().encode(pcm)
        return g711.encode(codec, pcm)

    def _check_timeout(self, now: float) -> None:
        timeout = self.settings.rtp_timeout_s
        if (
            timeout > 0
            and not self._timed_out
            and self.negotiated is not None
            and self.negotiated.receive
            and now - self._last_rx >= timeout
        ):
            self._timed_out = True
            self.stats.timeouts += 1
            self.events.append(RtpTimedOut(self.session_id, round(now - self._last_rx, 3)))

    # ------------------------------------------------------------------ RTCP

    def _rtcp_interval(self) -> float:
        # RFC 3550 §6.3.1: randomise over [0.5, 1.5] × interval so senders don't synchronise
        return self.settings.rtcp_interval_s * (0.5 + self._rng.random())

    @property
    def next_rtcp_at(self) -> float:
        """When the next RTCP report is due (loop time); see `rtcp_due`."""
        return self._next_rtcp

    def rtcp_due(self, now: float) -> bool:
        return now >= self._next_rtcp and self.negotiated is not None and not self.closed

    def build_rtcp(self, now: float, wallclock: float) -> bytes:
        """A compound SR (or RR when we sent nothing lately) + SDES; schedules the next one."""
        self._next_rtcp = now + self._rtcp_interval()
        blocks: tuple[rtcp.ReportBlock, ...] = ()
        reception = self._reception
        if reception is not None and reception.received:
            fraction, cumulative = reception.interval_report()
            self.stats.packets_lost = max(0, cumulative)
            self.stats.jitter_ms = reception.jitter / SAMPLE_RATE * 1000
            last_sr, delay = 0, 0
            if self._last_sr is not None:
                last_sr = self._last_sr[0]
                delay = int((now - self._last_sr[1]) * 65536)
            blocks = (
                rtcp.ReportBlock(
                    reception.ssrc, fraction, cumulative, reception.extended_max_seq & 0xFFFFFFFF,
                    int(reception.jitter), last_sr, delay,
                ),
            )
        report: rtcp.SenderReport | rtcp.ReceiverReport
        if self.stream.packets_sent > self._packets_at_last_report:
            ntp = rtcp.ntp_timestamp(wallclock)
            self._sr_sent[rtcp.ntp_middle_32(ntp)] = now
            if len(self._sr_sent) > 8:
                del self._sr_sent[next(iter(self._sr_sent))]
            report = rtcp.SenderReport(
                self.stream.ssrc, ntp, self.stream.timestamp, self.stream.packets_sent,
                self.stream.octets_sent, blocks,
            )
        else:
            report = rtcp.ReceiverReport(self.stream.ssrc, blocks)
        self._packets_at_last_report = self.stream.packets_sent
        self.stats.rtcp_out += 1
        sdes = rtcp.SourceDescription(((self.stream.ssrc, self.settings.cname),))
        return rtcp.serialize_compound([report, sdes])

    def build_bye(self, reason: str = "") -> bytes:
        report = rtcp.ReceiverReport(self.stream.ssrc)
        return rtcp.serialize_compound([report, rtcp.Goodbye((self.stream.ssrc,), reason)])

    def take_events(self) -> list[MediaEvent]:
        events = self.events
        self.events = []
        return events
