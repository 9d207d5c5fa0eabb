"""Turn one Outgoing into the platform calls it needs: a long text becomes several parts (split at
paragraphs, in order), a photo carries the text as caption only when it fits; buttons go on the last
part, where the reader ends up."""

from __future__ import annotations

from dataclasses import replace

from handlers.chat import Channel, Outgoing
from handlers.textsplit import split_text


def parts(out: Outgoing, channel: Channel) -> list[Outgoing]:
    if out.has_file:
        if len(out.text) <= channel.caption_limit:
            return [out]
        head = [replace(out, text="", buttons=())]
        out = replace(out, attachment=None, upload=None)
    else:
        head = []
    texts = split_text(out.text, channel.text_limit) or [""]
    body = [replace(out, text=t, buttons=()) for t in texts[:-1]] + [replace(out, text=texts[-1])]
    return head + body
