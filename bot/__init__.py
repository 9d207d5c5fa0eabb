"""The running program: settings, channel adapters, dispatcher, delivery, scheduler, web, CLI."""
