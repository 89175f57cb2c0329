#!/usr/bin/env bash
# Makes sure Debian's chromium is installed, for the browser test of the
# web view (cmd/riffle TestWebViewInBrowser, driven headless with chromedp).
#
# Installs it with apt-get when it is missing and this runs as root. When it
# cannot (not root, no apt-get, the install failed) it says so and exits 1
# under CI (CI set), so the test cannot be skipped there; elsewhere it exits
# 0 with a message and the test skips, saying how to install it.
#
# Prints nothing on stdout; scripts/test.sh exports RIFFLE_REQUIRE_BROWSER=1
# when chromium is there (or under CI), so the test then fails, never skips.
#
# Usage: scripts/browser.sh
set -euo pipefail

have() { command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; }

if have; then
	echo "browser: $(chromium --version 2>/dev/null || chromium-browser --version)" >&2
	exit 0
fi

why=""
if [[ "$(id -u)" != 0 ]]; then
	why="not root"
elif ! command -v apt-get >/dev/null 2>&1; then
	why="no apt-get (not Debian)"
else
	echo "browser: installing Debian's chromium with apt-get" >&2
	export DEBIAN_FRONTEND=noninteractive
	if apt-get install -y --no-install-recommends chromium >&2 ||
		{ apt-get update >&2 && apt-get install -y --no-install-recommends chromium >&2; }; then
		have && exit 0
	fi
	why="apt-get install chromium failed"
fi

msg="browser: chromium is missing and cannot be installed here ($why): the browser test of the web view will skip; install Debian's chromium (apt-get install chromium) to run it"
if [[ -n "${CI:-}" ]]; then
	echo "$msg; under CI that is an error" >&2
	exit 1
fi
echo "$msg" >&2
