"""Browser tests: Playwright driving Debian's Chromium against served Panel apps."""
