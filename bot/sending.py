"""Turn one Outgoing into the platform calls it needs: a long text becomes several parts (split at
paragraphs, in order), a photo carries the text as caption only when it fits; buttons go on the last
part, where the reader ends up. Lengths are measured as the platform measures them."""

from __future__ import annotations

from dataclasses import replace

from handlers.chat import Channel, Outgoing
from handlers.textsplit import Measure, split_text


def measure(channel: Channel) -> Measure:
    """The channel's own count of a text's length; code points unless it declares otherwise."""
    return getattr(channel, "text_length", len)


def parts(out: Outgoing, channel: Channel) -> list[Outgoing]:
    length = measure(channel)
    if out.has_file:
        if length(out.text) <= channel.caption_limit:
            return [out]
        head = [replace(out, text="", buttons=())]
        out = replace(out, attachment=None, upload=None)
    else:
        head = []
    texts = split_text(out.text, channel.text_limit, length) or [""]
    body = [replace(out, text=t, buttons=()) for t in texts[:-1]] + [replace(out, text=texts[-1])]
    return head + body
