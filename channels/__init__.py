"""Typed, bounded async channels: the transport under streamnet. Knows no dataframes.

What runtimes build on (parking lots, traffic counters) is in `channels.lowlevel`.
"""

from channels._channel import Channel, ChannelState, ChannelStatistics
from channels._errors import (
    ChannelAborted,
    ChannelBroken,
    ChannelClosed,
    ChannelError,
    SequenceError,
    StreamnetError,
)
from channels._exports import publish
from channels._lineariser import linearise
from channels._mailbox import Mailbox, MailboxClosed, MailboxFull, MailboxStatistics, OverflowPolicy
from channels._message import Message
from channels._observer import TrafficCounter, current_counter, observe
from channels._select import recv_any

__all__ = [
    "Channel",
    "ChannelAborted",
    "ChannelBroken",
    "ChannelClosed",
    "ChannelError",
    "ChannelState",
    "ChannelStatistics",
    "Mailbox",
    "MailboxClosed",
    "MailboxFull",
    "MailboxStatistics",
    "Message",
    "OverflowPolicy",
    "SequenceError",
    "StreamnetError",
    "TrafficCounter",
    "current_counter",
    "linearise",
    "observe",
    "recv_any",
]

publish(globals(), "channels", __all__)
