"""What the bot does, platform-agnostic: handlers read an Incoming, use storage and messages,
and leave replies (direct) or deliveries (outbox) behind. Nothing here imports a platform library."""
