"""Fetching URL sources safely: the SSRF guard, a guarded downloader, yt-dlp extraction."""
